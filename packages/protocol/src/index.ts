export * from './codec.ts';
export * from './errors.ts';
export * from './events.ts';
export * from './messages.ts';
export * from './obis.ts';
export * from './signing.ts';
export * from './topics.ts';
export * from './time.ts';

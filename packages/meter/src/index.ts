export * from './load.ts';
export * from './state.ts';
export * from './store.ts';
export * from './meter.ts';
export * from './client.ts';
export * from './fleet.ts';
export * from './history.ts';

/**
 * The HTTP contract of the Kilowire API: zod schemas for every request and response. The
 * server's routes validate and serialise with them (and the OpenAPI document comes from
 * them); the portal uses the inferred types, so both sides change together or not at all.
 * Query and body types are the parsed form (`z.infer`, defaults applied): the exact fields a
 * client may send, which the portal writes into URLs and JSON bodies.
 */
export * from './enums.ts';
export * from './common.ts';
export * from './session.ts';
export * from './me.ts';
export * from './meters.ts';
export * from './readings.ts';
export * from './consumer.ts';
export * from './alerts.ts';
export * from './tariffs.ts';
export * from './health.ts';
export * from './payments.ts';
export * from './bills.ts';
export * from './admin.ts';
export * from './supply.ts';
export * from './cases.ts';
export * from './fleet.ts';
export * from './collection.ts';
export * from './netbilling.ts';
export * from './outages.ts';
export * from './firmware.ts';

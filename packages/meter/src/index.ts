export * from './load.ts';
export * from './state.ts';
export * from './store.ts';
export * from './meter.ts';
export * from './client.ts';
export * from './fleet.ts';
export * from './history.ts';
export * from './firmware-sim.ts';
export {
  FW_DEFAULT_CONFIRM_S,
  FW_MAX_BAD_COPIES,
  FW_PACE_MAX_UNACKED,
  type FirmwarePacing,
  type FirmwareTickAction,
} from './firmware.ts';

/** OBIS register names used on the wire (IEC 62056-61). Values are always Wh as integers. */
export const OBIS = {
  importTotal: '1.0.1.8.0',
  importRate1: '1.0.1.8.1',
  importRate2: '1.0.1.8.2',
  /** Band 3 (peak). Optional on the wire: only meters that have had a three-band tariff report it. */
  importRate3: '1.0.1.8.3',
  exportTotal: '1.0.2.8.0',
} as const;

export type ObisCode = (typeof OBIS)[keyof typeof OBIS];
export const OBIS_CODES: readonly ObisCode[] = Object.values(OBIS);

/** Tariff band number -> the import register it accumulates into. */
export function rateRegister(band: 1 | 2 | 3): ObisCode {
  return band === 1 ? OBIS.importRate1 : band === 2 ? OBIS.importRate2 : OBIS.importRate3;
}

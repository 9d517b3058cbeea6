/** A meter's tamper cases on the meter page. The tamper-case work fills this in. */
export function MeterCases(_props: { serial: string }) {
  return null;
}

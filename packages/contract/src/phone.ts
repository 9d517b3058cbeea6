// Mobile numbers: people type them the way they say them ("07700 900123"); alerts are sent to
// E.164 (+447700900123). One pure function (no zod), shared by the API's profile schema and
// the portal's form, so both accept and store exactly the same thing.

/** E.164: "+" then 7 to 15 digits, the first not 0. */
export const E164 = /^\+[1-9]\d{6,14}$/;

/**
 * A typed mobile number as E.164, or null when it is not one. Spaces, dashes, dots and
 * brackets are ignored; "00" is the international prefix; a UK national number (0 then 10
 * digits, e.g. "07700 900123") gets +44 — the households are UK households; and the
 * "+44 (0)7700…" habit drops its (0).
 */
export function normaliseMobile(text: string): string | null {
  let t = text.trim().replace(/^\+44\s*\(0\)/, '+44');
  t = t.replace(/[\s\-().]/g, '');
  if (t.startsWith('00')) t = `+${t.slice(2)}`;
  else if (/^0\d{10}$/.test(t)) t = `+44${t.slice(1)}`;
  return E164.test(t) ? t : null;
}

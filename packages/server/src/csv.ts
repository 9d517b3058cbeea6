/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled.
 * Text that a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading
 * apostrophe: names and notes are typed by people, and exports are opened in Excel. Numbers
 * and booleans are written as they are (a negative number is data, not a formula). Every CSV
 * the server writes (fleet, audit, collection files, network invoices) goes through here.
 */
export function csvField(v: string | number | boolean | null): string {
  if (v === null) return '';
  if (typeof v !== 'string') return String(v);
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

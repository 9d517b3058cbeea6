import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import { money, minorPrice } from '../alerts/format.ts';
import { csvField } from '../csv.ts';
import { longDay } from '../money/bills.ts';
import type { InvoiceLine } from './invoices.ts';
import type { InvoiceRow } from './queries.ts';

/**
 * A network invoice's documents, rendered on request from its immutable rows (so a document
 * downloaded twice says the same): the PDF (pdfkit, DejaVu Sans embedded as for household
 * bills, money/pdf.ts) and the CSV of its lines (formula-defused fields, RFC 4180).
 */
const require = createRequire(import.meta.url);
const FONT = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');
const FONT_BOLD = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
/** "2026-03" -> "March 2026". */
export function monthName(m: string): string {
  return `${MONTHS[Number(m.slice(5, 7)) - 1]} ${m.slice(0, 4)}`;
}
/** Wh as kWh with every digit (exact, no float). */
export function kwh3(wh: number): string {
  const sign = wh < 0 ? '-' : '';
  const a = Math.abs(wh);
  return `${sign}${Math.floor(a / 1000).toLocaleString('en-GB')}.${String(a % 1000).padStart(3, '0')} kWh`;
}
const KIND_TITLE = { invoice: 'Network-use invoice', credit_note: 'Credit note', debit_note: 'Debit note' };

function lineText(l: InvoiceLine, cur: string): string {
  const span = l.fromDay && l.toDay ? `${longDay(l.fromDay)} – ${longDay(l.toDay)}` : '';
  if (l.kind === 'energy')
    return `Area ${l.areaId}, ${l.bandName} band, ${span}: ${kwh3(l.wh!)} × ${minorPrice(l.rateMilli!, cur)}/kWh (${l.tariffCode} v${l.version})`;
  if (l.kind === 'fixed')
    return `Area ${l.areaId}, fixed charge ${span}: ${l.meterDays!.toLocaleString('en-GB')} meter-days × ${minorPrice(l.rateMilli!, cur)} a day (${l.tariffCode} v${l.version})`;
  return `VAT at ${l.vatBp! / 100}% on ${money(l.netMinor!, cur)}`;
}

export function renderInvoicePdf(inv: InvoiceRow, lines: readonly InvoiceLine[]): Promise<Buffer> {
  const cur = inv.currency;
  const m = (v: number) => money(v, cur);
  const title = `${KIND_TITLE[inv.kind]} ${inv.id}`;
  const doc = new PDFDocument({
    size: 'A4',
    margin: 48,
    font: FONT,
    info: { Title: `${title} — ${monthName(inv.month)}`, Author: inv.operator },
  });
  doc.registerFont('body', FONT);
  doc.registerFont('bold', FONT_BOLD);
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const left = 48;
  const width = doc.page.width - 96;
  const row = (label: string, value: string, bold = false) => {
    if (doc.y > doc.page.height - 80) doc.addPage();
    const y = doc.y;
    doc.font(bold ? 'bold' : 'body').fontSize(10);
    doc.text(label, left, y, { width: width - 120 });
    const h = doc.y;
    doc.text(value, left + width - 120, y, { width: 120, align: 'right' });
    doc.y = Math.max(h, doc.y) + 2;
  };
  doc.font('bold').fontSize(18).text(inv.operator, left);
  doc.font('body').fontSize(10).fillColor('#555').text(KIND_TITLE[inv.kind]).fillColor('#000');
  doc.moveDown();
  const top = doc.y;
  doc.font('bold').text(`To ${inv.supplier}`, left, top);
  doc.font('body').text(`Network use in ${monthName(inv.month)}`);
  doc.text(`${inv.meterDays.toLocaleString('en-GB')} meter-days, ${kwh3(inv.wh)}`);
  const after = doc.y;
  doc.text(`${title}`, left + width / 2, top, { width: width / 2, align: 'right' });
  doc.text(`Issued ${longDay(inv.issuedAt.toISOString().slice(0, 10))}`, {
    width: width / 2,
    align: 'right',
  });
  if (inv.correctsId !== null)
    doc.text(`Corrects invoice ${inv.correctsId}`, { width: width / 2, align: 'right' });
  doc.y = Math.max(after, doc.y);
  doc.x = left;
  doc.moveDown();
  doc.rect(left, doc.y, width, 36).fill('#eef3fb').fillColor('#000');
  const boxY = doc.y + 10;
  doc
    .font('bold')
    .fontSize(14)
    .text(
      inv.kind === 'credit_note' ? `Credit ${m(-inv.grossMinor)}` : `Total ${m(inv.grossMinor)}`,
      left + 12,
      boxY,
    );
  doc.y = boxY + 36;
  doc.x = left;
  doc
    .moveDown(0.5)
    .font('bold')
    .fontSize(12)
    .text(inv.kind === 'invoice' ? 'Charges' : 'The month as recomputed', left);
  doc.moveDown(0.3);
  for (const l of lines) if (l.kind !== 'vat') row(lineText(l, cur), m(l.amountMinor));
  for (const l of lines) if (l.kind === 'vat') row(lineText(l, cur), m(l.amountMinor));
  doc.moveDown(0.5);
  if (inv.kind !== 'invoice') {
    doc.font('body').fontSize(9).fillColor('#555');
    doc.text(
      'This note is the difference between the month as recomputed above and as invoiced before.',
      left,
      doc.y,
      {
        width,
      },
    );
    doc.fillColor('#000').moveDown(0.5);
  }
  row('Net', m(inv.netMinor), true);
  row('VAT', m(inv.vatMinor), true);
  row(inv.kind === 'invoice' ? 'Total due' : 'Total of this note', m(inv.grossMinor), true);
  doc.moveDown();
  doc.font('body').fontSize(8).fillColor('#555');
  doc.text(
    'Priced from the daily collection (latest version of each local day). Energy lines: kWh × rate, each line rounded once to the penny, half up; fixed charge: meter-days collected × daily charge; VAT per rate on the sum of its lines.',
    left,
    doc.y,
    { width },
  );
  doc.end();
  return done;
}

const CSV_HEADER = [
  'invoice_id',
  'kind',
  'month',
  'supplier',
  'line',
  'area',
  'tariff',
  'version',
  'from_day',
  'to_day',
  'band',
  'wh',
  'meter_days',
  'rate_milli',
  'vat_bp',
  'net_minor',
  'amount_minor',
];

export function invoiceCsv(inv: InvoiceRow, lines: readonly InvoiceLine[]): string {
  let out = `${CSV_HEADER.join(',')}\r\n`;
  lines.forEach((l) => {
    out += `${[
      inv.id,
      inv.kind,
      inv.month,
      inv.supplier,
      l.kind,
      l.areaId,
      l.tariffCode,
      l.version,
      l.fromDay,
      l.toDay,
      l.bandName ?? l.band,
      l.wh,
      l.meterDays,
      l.rateMilli,
      l.vatBp,
      l.netMinor,
      l.amountMinor,
    ]
      .map((v) => csvField(v ?? null))
      .join(',')}\r\n`;
  });
  return out;
}

import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import { addDays, addMonths } from '@kilowire/protocol';
import { money } from '../alerts/format.ts';
import type { Q } from '../db/pool.ts';
import { longDay, type BillLine, type BoundaryRead } from './bills.ts';

/**
 * The PDF of a bill, rendered on request from the bill's immutable row (every money figure
 * comes from it, so a bill downloaded twice says the same) plus the 12-month usage chart
 * from the daily rollups. Rendered lazily rather than stored at issue: a run issues
 * thousands of bills a second and most PDFs are never opened; rendering one takes tens of
 * milliseconds. DejaVu Sans is embedded (subset) so the text is the same in every viewer.
 */
const require = createRequire(import.meta.url);
const FONT = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');
const FONT_BOLD = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Wh as kWh with every digit: 150100 -> "150.100 kWh" (exact, no float). */
function kwh3(wh: number): string {
  const sign = wh < 0 ? '-' : '';
  const a = Math.abs(wh);
  return `${sign}${Math.floor(a / 1000).toLocaleString('en-GB')}.${String(a % 1000).padStart(3, '0')} kWh`;
}
/** Thousandths of a minor unit: 24500 -> "24.500p". */
function milli(v: number, currency: string): string {
  const unit = currency === 'GBP' ? 'p' : currency === 'EUR' ? 'c' : ` ${currency}/100`;
  return `${Math.floor(v / 1000)}.${String(v % 1000).padStart(3, '0')}${unit}`;
}
const BAND_NAMES: Record<string, string> = { all: 'All day', day: 'Day', night: 'Night', peak: 'Peak' };

interface PdfBill {
  id: string;
  account_id: string;
  customer: string;
  email: string | null;
  login_id: string;
  supplier: string;
  serial: string;
  tz: string;
  meter_id: number;
  period_start: string;
  period_end: string;
  currency: string;
  reads: BoundaryRead[];
  lines: BillLine[];
  energy_minor: string;
  standing_minor: string;
  vat_minor: string;
  total_minor: string;
  previous_balance_minor: string;
  payments_minor: string;
  other_minor: string;
  amount_due_minor: string;
  due_date: string;
  issued: string;
}

/** The bill's PDF (null: no such bill; the caller has already checked the scope). */
export async function renderBillPdf(q: Q, billId: number): Promise<Buffer | null> {
  const { rows } = await q.query<PdfBill>(
    `SELECT b.id, b.account_id, cu.name AS customer, cu.email, u.login_id, o.name AS supplier, m.serial, m.tz, b.meter_id,
            to_char(b.period_start, 'YYYY-MM-DD') AS period_start, to_char(b.period_end, 'YYYY-MM-DD') AS period_end,
            b.currency, b.reads, b.lines, b.energy_minor, b.standing_minor, b.vat_minor, b.total_minor,
            b.previous_balance_minor, b.payments_minor, b.other_minor, b.amount_due_minor,
            to_char(b.due_date, 'YYYY-MM-DD') AS due_date, to_char(b.issued_at AT TIME ZONE m.tz, 'YYYY-MM-DD') AS issued
       FROM bills b JOIN accounts a ON a.id = b.account_id JOIN consumers cu ON cu.id = a.consumer_id
       JOIN users u ON u.id = cu.user_id JOIN organisations o ON o.id = b.supplier_id JOIN meters m ON m.id = b.meter_id
      WHERE b.id = $1`,
    [billId],
  );
  const b = rows[0];
  if (!b) return null;
  // Twelve months of usage up to the bill's last day, by local calendar month.
  const lastDay = addDays(b.period_end, -1);
  const firstMonth = addMonths(lastDay, -11);
  const usage = await q.query<{ month: string; wh: string }>(
    `SELECT to_char(date_trunc('month', day), 'YYYY-MM') AS month, sum(wh)::bigint AS wh FROM daily_rollups
      WHERE meter_id = $1 AND day >= $2 AND day <= $3 GROUP BY 1 ORDER BY 1`,
    [b.meter_id, firstMonth, lastDay],
  );
  const byMonth = new Map(usage.rows.map((r) => [r.month, Number(r.wh)]));
  const months = Array.from({ length: 12 }, (_, i) => addMonths(firstMonth, i).slice(0, 7));
  return draw(
    b,
    months.map((m) => ({ month: m, wh: byMonth.get(m) ?? null })),
  );
}

function draw(b: PdfBill, chart: { month: string; wh: number | null }[]): Promise<Buffer> {
  const cur = b.currency.trim();
  const m = (v: string | number) => money(Number(v), cur);
  const doc = new PDFDocument({
    size: 'A4',
    margin: 48,
    font: FONT,
    info: {
      Title: `Bill ${b.id} — ${longDay(b.period_start)} to ${longDay(addDays(b.period_end, -1))}`,
      Author: b.supplier,
    },
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
  const row = (label: string, value: string, o: { bold?: boolean; size?: number } = {}) => {
    const y = doc.y;
    doc.font(o.bold ? 'bold' : 'body').fontSize(o.size ?? 10);
    doc.text(label, left, y, { width: width - 130 });
    const h = doc.y;
    doc.text(value, left + width - 130, y, { width: 130, align: 'right' });
    doc.y = Math.max(h, doc.y);
  };
  const heading = (t: string) => {
    doc.moveDown(0.8).font('bold').fontSize(12).text(t, left).moveDown(0.3);
  };

  // Supplier, household, bill.
  doc.font('bold').fontSize(18).text(b.supplier, left);
  doc.font('body').fontSize(10).fillColor('#555').text('Electricity bill').fillColor('#000');
  doc.moveDown();
  const top = doc.y;
  doc.font('bold').text(b.customer, left, top);
  doc.font('body').text(`Account ${b.account_id} · Consumer ID ${b.login_id}`);
  if (b.email) doc.text(b.email);
  doc.text(`Meter ${b.serial} (${b.tz})`);
  const after = doc.y;
  doc.text(`Bill number ${b.id}`, left + width / 2, top, { width: width / 2, align: 'right' });
  doc.text(`Issued ${longDay(b.issued)}`, { width: width / 2, align: 'right' });
  doc.text(`Period ${longDay(b.period_start)} to ${longDay(addDays(b.period_end, -1))}`, {
    width: width / 2,
    align: 'right',
  });
  doc.y = Math.max(after, doc.y);
  doc.x = left;

  // The figure that matters first.
  doc.moveDown();
  const due = Number(b.amount_due_minor);
  doc.rect(left, doc.y, width, 44).fill('#eef3fb').fillColor('#000');
  const boxY = doc.y + 8;
  doc.font('bold').fontSize(14);
  doc.text(
    due > 0 ? `Amount due ${m(due)}` : due < 0 ? `In credit ${m(-due)}` : 'Nothing to pay',
    left + 12,
    boxY,
  );
  doc
    .font('body')
    .fontSize(10)
    .text(due > 0 ? `Please pay by ${longDay(b.due_date)}` : 'No payment needed', left + 12);
  doc.y = boxY + 44;
  doc.x = left;

  heading('Your account');
  row('Balance after your previous bill', m(b.previous_balance_minor));
  row('Payments received', m(b.payments_minor));
  if (Number(b.other_minor) !== 0) row('Notes and adjustments', m(b.other_minor));
  row('This bill (charges for the period, VAT included)', m(b.total_minor));
  row('Amount due', m(b.amount_due_minor), { bold: true });

  heading('Meter reads');
  for (const r of b.reads) {
    row(`${longDay(r.day)} 00:00 — ${r.estimated ? `estimated: ${r.method}` : 'actual'}`, kwh3(r.importWh));
  }

  heading('Charges');
  for (const l of b.lines) {
    if (l.kind === 'energy') {
      row(
        `${BAND_NAMES[l.band] ?? l.band} units ${longDay(l.fromDay)} – ${longDay(addDays(l.toDay, -1))}: ${kwh3(l.wh)} × ${milli(l.rateMilli, cur)} per kWh (${l.tariff} v${l.version})`,
        m(l.amountMinor),
      );
    } else if (l.kind === 'standing') {
      row(
        `Standing charge ${longDay(l.fromDay)} – ${longDay(addDays(l.toDay, -1))}: ${l.days} days × ${milli(l.rateMilliPerDay, cur)}`,
        m(l.amountMinor),
      );
    }
  }
  row('Energy', m(b.energy_minor), { bold: true });
  row('Standing charges', m(b.standing_minor), { bold: true });
  for (const l of b.lines) {
    if (l.kind === 'vat') row(`VAT at ${l.vatBp / 100}% on ${m(l.netMinor)}`, m(l.amountMinor));
  }
  row('Total for the period', m(b.total_minor), { bold: true });

  // Usage by band, summed over the period.
  const bands = new Map<string, number>();
  for (const l of b.lines) if (l.kind === 'energy') bands.set(l.band, (bands.get(l.band) ?? 0) + l.wh);
  heading('Usage by band');
  for (const [band, wh] of bands) row(BAND_NAMES[band] ?? band, kwh3(wh));

  // Twelve months of usage.
  if (doc.y > doc.page.height - 230) doc.addPage();
  heading('Your usage over 12 months (kWh)');
  const chartTop = doc.y + 4;
  const chartH = 110;
  const max = Math.max(1, ...chart.map((c) => c.wh ?? 0));
  const slot = width / 12;
  doc.fontSize(7);
  chart.forEach((c, i) => {
    const x = left + i * slot;
    const h = c.wh === null ? 0 : Math.max(1, Math.round((c.wh / max) * chartH));
    if (c.wh !== null)
      doc
        .rect(x + 4, chartTop + chartH - h, slot - 8, h)
        .fill('#2f6fce')
        .fillColor('#000');
    doc.text(c.wh === null ? 'no data' : String(Math.round(c.wh / 1000)), x, chartTop + chartH - h - 10, {
      width: slot,
      align: 'center',
    });
    doc.text(`${MONTHS[Number(c.month.slice(5, 7)) - 1]} ${c.month.slice(2, 4)}`, x, chartTop + chartH + 3, {
      width: slot,
      align: 'center',
    });
  });
  doc.y = chartTop + chartH + 20;
  doc.x = left;
  doc.fontSize(8).fillColor('#555');
  doc.text(
    'Estimated reads are marked above with the method used; when an actual read arrives we recompute the bill and send a credit or debit note for any difference.',
    left,
    doc.y,
    { width },
  );
  doc.end();
  return done;
}

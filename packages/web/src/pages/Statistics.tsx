import { useEffect, useId, useMemo, useState } from 'react';
import { isIsoDate, todayIn } from '@kilowire/protocol/calendar';
import type {
  DailyQuery,
  Daily,
  DayIntervals,
  IntervalsQuery,
  Meter,
  Monthly,
  MonthlyQuery,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../api.ts';
import { BarChart, ChartLegend, type ChartUnit } from '../BarChart.tsx';
import {
  compare,
  comparisonText,
  dailyBars,
  dayBars,
  hasReadings,
  monthlyBars,
  totalWh,
  type Bar,
  type Comparison,
} from '../chart.ts';
import { ErrorMessage, Loading, MeterPicker, PageHeading, useMeter } from '../common.tsx';
import { barsToCsv, csvFileName } from '../csv.ts';
import { formatKwh, formatMoney, kwhNumber } from '../format.ts';
import { contains, periodOf, previousPeriod, shiftDate, type Period, type View } from '../period.ts';
import { replaceSearch } from '../router.tsx';

const VIEWS: { view: View; label: string; unit: string }[] = [
  { view: 'day', label: 'Day', unit: 'half-hour' },
  { view: 'month', label: 'Month', unit: 'day' },
  { view: 'year', label: 'Year', unit: 'month' },
];

interface Loaded {
  bars: Bar[];
  previousBars: Bar[];
  comparison: Comparison;
  /** The comparison covers only the elapsed part of both periods. */
  soFar: boolean;
  /** Money for the period, when the meter had prices then. */
  cost: CostView | null;
}

/**
 * The Cost view: the same bars with money in place of energy (thousandths of a minor unit,
 * so half-hours of fractions of a penny still draw), and the period's money in lines.
 */
interface CostView {
  bars: Bar[];
  unit: ChartUnit;
  currency: string;
  energyMinor: number;
  standingMinor: number;
  vatMinor: number;
  totalMinor: number;
  vatBp: number | null;
  /** How the bars are priced, in words. */
  note: string;
}

const MINOR_SUFFIX: Record<string, string> = { GBP: 'p', EUR: 'c' };
const minorFmt = new Intl.NumberFormat('en-GB', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function minorUnit(currency: string): ChartUnit {
  const suffix = MINOR_SUFFIX[currency] ?? ` ${currency}/100`;
  return { axis: suffix.trim(), divisor: 1000, format: (v) => `${minorFmt.format(v / 1000)}${suffix}` };
}

function majorUnit(currency: string): ChartUnit {
  return {
    axis: formatMoney(0, currency).replace(/[\d.,\s]/g, '') || currency,
    divisor: 100_000,
    format: (v) => formatMoney(Math.round(v / 1000), currency),
  };
}

/** Bars with money from `byKey` (thousandths of a minor unit); keys without money have none. */
function moneyBars(bars: readonly Bar[], byKey: Map<string, number>): Bar[] {
  return bars.map((b) => {
    const v = byKey.get(b.key);
    return { ...b, wh: v === undefined ? null : v };
  });
}

const enc = encodeURIComponent;

/** Fetch the period and the one before it, and build the bars and the comparison. */
export async function loadPeriod(meter: Meter, p: Period, today: string, nowMs: number): Promise<Loaded> {
  const prev = previousPeriod(p);
  const base = `/api/meters/${enc(meter.serial)}`;
  const inProgress = contains(p, today);
  switch (p.view) {
    case 'day': {
      const [cur, before] = await Promise.all([
        api<DayIntervals>('GET', `${base}/intervals${qs<IntervalsQuery>({ date: p.from })}`),
        api<DayIntervals>('GET', `${base}/intervals${qs<IntervalsQuery>({ date: prev.from })}`),
      ]);
      const bars = dayBars(cur, nowMs);
      const previousBars = dayBars(before, nowMs);
      // Same point yesterday: intervals that started before the current local time of day.
      const cutoff = bars.filter((b) => b.status !== 'future').at(-1)?.label ?? '99:99';
      const prevCompared = inProgress ? previousBars.filter((b) => b.label <= cutoff) : previousBars;
      const prevWh = inProgress ? totalWh(prevCompared) : before.wh;
      const readings = { current: hasReadings(bars), previous: hasReadings(prevCompared) };
      const c = cur.cost;
      const cost: CostView | null = c
        ? {
            bars: moneyBars(
              bars,
              new Map(
                cur.intervals.flatMap((iv, i) => {
                  const micro = c.intervalsMicro[i];
                  return micro === null || micro === undefined
                    ? []
                    : [[iv.startUtc, Math.round(micro / 1000)] as const];
                }),
              ),
            ),
            unit: minorUnit(c.currency),
            currency: c.currency,
            energyMinor: c.energyMinor,
            standingMinor: c.standingMinor,
            vatMinor: c.vatMinor,
            totalMinor: c.totalMinor,
            vatBp: c.vatBp,
            note: `Each half-hour at the ${c.tariffName} rate then in force, before VAT. The day's standing charge and VAT are in the total.`,
          }
        : null;
      return { bars, previousBars, comparison: compare(cur.wh, prevWh, readings), soFar: inProgress, cost };
    }
    case 'month': {
      const d = await api<Daily>('GET', `${base}/daily${qs<DailyQuery>({ from: prev.from, to: p.to })}`);
      const bars = dailyBars(d, p.from, p.to, meter.tz, today);
      const previousBars = dailyBars(d, prev.from, prev.to, meter.tz, today);
      const dayNo = Number(today.slice(8));
      const prevCompared = inProgress
        ? previousBars.filter((b) => Number(b.key.slice(8)) <= dayNo)
        : previousBars;
      const prevWh = totalWh(prevCompared);
      const readings = { current: hasReadings(bars), previous: hasReadings(prevCompared) };
      const inMonth = d.cost?.days.filter((x) => x.day >= p.from && x.day <= p.to) ?? [];
      const cost: CostView | null =
        d.cost && inMonth.length
          ? {
              bars: moneyBars(bars, new Map(inMonth.map((x) => [x.day, x.totalMinor * 1000]))),
              unit: majorUnit(d.cost.currency),
              currency: d.cost.currency,
              ...sumMoney(inMonth),
              vatBp: null,
              note: 'Each day at the prices then in force, with its standing charge and VAT.',
            }
          : null;
      return {
        bars,
        previousBars,
        comparison: compare(totalWh(bars), prevWh, readings),
        soFar: inProgress,
        cost,
      };
    }
    case 'year': {
      const y = Number(p.from.slice(0, 4));
      const m = await api<Monthly>(
        'GET',
        `${base}/monthly${qs<MonthlyQuery>({ from: `${y - 1}-01`, to: `${y}-12` })}`,
      );
      const bars = monthlyBars(m, y, meter.tz, today);
      const previousBars = monthlyBars(m, y - 1, meter.tz, today);
      const monthNo = Number(today.slice(5, 7));
      const prevCompared = inProgress ? previousBars.slice(0, monthNo) : previousBars;
      const prevWh = totalWh(prevCompared);
      const readings = { current: hasReadings(bars), previous: hasReadings(prevCompared) };
      const inYear = m.cost?.months.filter((x) => x.month.startsWith(`${y}-`)) ?? [];
      const cost: CostView | null =
        m.cost && inYear.length
          ? {
              bars: moneyBars(bars, new Map(inYear.map((x) => [x.month, x.totalMinor * 1000]))),
              unit: majorUnit(m.cost.currency),
              currency: m.cost.currency,
              ...sumMoney(inYear),
              vatBp: null,
              note: 'Each month at the prices then in force, with its standing charges and VAT.',
            }
          : null;
      return {
        bars,
        previousBars,
        comparison: compare(totalWh(bars), prevWh, readings),
        soFar: inProgress,
        cost,
      };
    }
  }
}

/** Totals of rows each rounded on its own (what the bars show add up to the total shown). */
function sumMoney(
  rows: readonly { energyMinor: number; standingMinor: number; vatMinor: number; totalMinor: number }[],
) {
  return rows.reduce(
    (s, r) => ({
      energyMinor: s.energyMinor + r.energyMinor,
      standingMinor: s.standingMinor + r.standingMinor,
      vatMinor: s.vatMinor + r.vatMinor,
      totalMinor: s.totalMinor + r.totalMinor,
    }),
    { energyMinor: 0, standingMinor: 0, vatMinor: 0, totalMinor: 0 },
  );
}

function initialState(today: string): { view: View; date: string } {
  const q = new URLSearchParams(location.search);
  const v = q.get('view');
  const d = q.get('date') ?? '';
  return {
    view: v === 'month' || v === 'year' ? v : 'day',
    date: isIsoDate(d) && d <= today ? d : today,
  };
}

export default function StatisticsPage() {
  const meter = useMeter();
  return (
    <>
      <PageHeading title="Statistics">Your usage</PageHeading>
      <MeterPicker />
      {meter ? <Stats meter={meter} key={meter.serial} /> : <p>There is no meter on your account yet.</p>}
    </>
  );
}

function Stats({ meter }: { meter: Meter }) {
  const today = todayIn(meter.tz, Date.now() / 1000);
  const [{ view, date }, setState] = useState(() => initialState(today));
  const [data, setData] = useState<Loaded | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [asTable, setAsTable] = useState(false);
  const [showCost, setShowCost] = useState(false);
  const [n, setN] = useState(0);
  const ids = useId();
  const period = useMemo(() => periodOf(view, date), [view, date]);
  const atLatest = contains(period, today) || period.from > today;

  useEffect(() => {
    replaceSearch(qs({ view, date: date === today ? undefined : date }));
  }, [view, date, today]);

  useEffect(() => {
    let live = true;
    setData(null);
    setError(null);
    loadPeriod(meter, period, today, Date.now()).then(
      (d) => live && setData(d),
      (e: unknown) => live && setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
    return () => {
      live = false;
    };
  }, [meter, period, today, n]);

  const go = (dir: number): void => {
    if (dir > 0 && atLatest) return;
    const next = shiftDate(view, period.from, dir);
    setState({ view, date: next > today ? today : next });
  };

  const unit = VIEWS.find((v) => v.view === view)?.unit ?? '';
  const chartTitle = `Electricity use per ${unit}, ${period.label}`;
  const costTitle = `Electricity cost per ${unit}, ${period.label}`;

  return (
    <>
      <div className="toolbar">
        <div role="group" aria-label="Period" className="segmented">
          {VIEWS.map((v) => (
            <button
              key={v.view}
              type="button"
              aria-pressed={view === v.view}
              onClick={() => setState({ view: v.view, date })}
            >
              {v.label}
            </button>
          ))}
        </div>
        <fieldset className="units">
          <legend>Show</legend>
          <label>
            <input
              type="radio"
              name={`${ids}-unit`}
              value="kwh"
              checked={!showCost || !data?.cost}
              onChange={() => setShowCost(false)}
            />{' '}
            kWh
          </label>
          <label className={data && !data.cost ? 'disabled' : undefined}>
            <input
              type="radio"
              name={`${ids}-unit`}
              value="cost"
              checked={showCost && !!data?.cost}
              disabled={!!data && !data.cost}
              aria-describedby={data && !data.cost ? `${ids}-cost` : undefined}
              onChange={() => setShowCost(true)}
            />{' '}
            Cost
          </label>
          {data && !data.cost && (
            <span className="hint" id={`${ids}-cost`}>
              No prices for this period: your meter had no tariff then.
            </span>
          )}
        </fieldset>
      </div>

      <div className="period-nav">
        <button type="button" className="btn btn-secondary" onClick={() => go(-1)}>
          <span aria-hidden="true">← </span>Previous<span className="visually-hidden"> {view}</span>
        </button>
        <h2 className="period-label" aria-live="polite">
          {period.label}
        </h2>
        <button type="button" className="btn btn-secondary" onClick={() => go(1)} aria-disabled={atLatest}>
          Next<span className="visually-hidden"> {view}</span>
          <span aria-hidden="true"> →</span>
        </button>
        <div className="field field-inline">
          <label htmlFor={`${ids}-date`}>Go to date</label>
          <input
            id={`${ids}-date`}
            type="date"
            max={today}
            value={date}
            onChange={(e) => {
              const d = e.target.value;
              if (isIsoDate(d) && d <= today) setState({ view, date: d });
            }}
          />
        </div>
      </div>

      {error ? (
        <ErrorMessage error={error} retry={() => setN((x) => x + 1)} />
      ) : !data ? (
        <Loading what={period.label} />
      ) : (
        <>
          {showCost && data.cost ? (
            <CostBox cost={data.cost} soFar={data.soFar} />
          ) : (
            <ComparisonBox data={data} view={view} />
          )}
          <div className="chart-actions">
            <div className="check">
              <input
                id={`${ids}-table`}
                type="checkbox"
                checked={asTable}
                onChange={(e) => setAsTable(e.target.checked)}
              />
              <label htmlFor={`${ids}-table`}>Show as table</label>
            </div>
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => downloadCsv(data.bars, meter.serial, view, period.from)}
            >
              Download CSV
            </button>
          </div>
          {showCost && data.cost ? (
            asTable ? (
              <DataTable bars={data.cost.bars} caption={costTitle} view={view} unit={data.cost.unit} />
            ) : (
              <>
                <BarChart
                  bars={data.cost.bars}
                  title={costTitle}
                  summary={`${data.cost.note} Total ${formatMoney(data.cost.totalMinor, data.cost.currency)}. Choose "Show as table" for every value.`}
                  unit={data.cost.unit}
                />
                <ChartLegend />
              </>
            )
          ) : asTable ? (
            <DataTable bars={data.bars} caption={chartTitle} view={view} />
          ) : (
            <>
              <BarChart bars={data.bars} title={chartTitle} summary={summarise(data.bars)} />
              <ChartLegend />
            </>
          )}
        </>
      )}
    </>
  );
}

function summarise(bars: readonly Bar[]): string {
  const est = bars.filter((b) => b.status === 'estimated').length;
  const miss = bars.filter((b) => b.status === 'missing').length;
  const peak = bars.reduce<Bar | null>(
    (p, b) => (b.wh !== null && (p === null || b.wh > (p.wh ?? 0)) ? b : p),
    null,
  );
  return [
    `Total ${formatKwh(totalWh(bars))}.`,
    peak ? `Highest: ${peak.fullLabel}, ${formatKwh(peak.wh ?? 0, 2)}.` : '',
    est ? `${est} estimated.` : '',
    miss ? `${miss} missing.` : '',
    'Choose "Show as table" for every value.',
  ]
    .filter(Boolean)
    .join(' ');
}

function ComparisonBox({ data, view }: { data: Loaded; view: View }) {
  const c = data.comparison;
  const t = comparisonText(c, view, data.soFar);
  return (
    <section className="compare" aria-label="Comparison with the previous period">
      <p>
        <span className="compare-label">{data.soFar ? 'So far' : 'Total'}</span>{' '}
        <strong className="big-number">
          {c.currentMissing ? (data.soFar ? 'No readings yet' : 'No readings') : formatKwh(c.currentWh)}
        </strong>
      </p>
      <p>
        {t.previous}
        {t.change && (
          <>
            {' '}
            — <strong>{t.change}</strong>
            {t.direction && <span aria-hidden="true"> {t.direction === 'up' ? '▲' : '▼'}</span>}
          </>
        )}
      </p>
    </section>
  );
}

function CostBox({ cost, soFar }: { cost: CostView; soFar: boolean }) {
  const m = (x: number) => formatMoney(x, cost.currency);
  return (
    <section className="compare" aria-label="Cost of the period">
      <p>
        <span className="compare-label">{soFar ? 'Cost so far' : 'Cost'}</span>{' '}
        <strong className="big-number">{m(cost.totalMinor)}</strong>
      </p>
      <p>
        Energy {m(cost.energyMinor)} · Standing charge {m(cost.standingMinor)} · VAT
        {cost.vatBp !== null ? ` (${cost.vatBp / 100} %)` : ''} {m(cost.vatMinor)}
      </p>
      <p className="muted">{cost.note}</p>
    </section>
  );
}

const STATUS_TEXT: Record<Bar['status'], string> = {
  measured: 'Measured',
  estimated: 'Estimated',
  missing: 'Missing',
  future: 'Not yet',
};

function DataTable({
  bars,
  caption,
  view,
  unit,
}: {
  bars: readonly Bar[];
  caption: string;
  view: View;
  /** Money bars: shown in this unit instead of kWh. */
  unit?: ChartUnit;
}) {
  const head = view === 'day' ? 'Time' : view === 'month' ? 'Day' : 'Month';
  return (
    <div className="table-scroll" role="region" aria-label={caption} tabIndex={0}>
      <table className="data-table">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{head}</th>
            <th scope="col" className="num">
              {unit ? 'Cost' : 'kWh'}
            </th>
            <th scope="col">Data</th>
          </tr>
        </thead>
        <tbody>
          {bars
            .filter((b) => b.status !== 'future')
            .map((b) => (
              <tr key={b.key}>
                <th scope="row">
                  <time dateTime={b.start}>{b.fullLabel}</time>
                </th>
                <td className="num">
                  {b.wh === null ? '—' : unit ? unit.format(b.wh) : kwhNumber(b.wh, view === 'day' ? 2 : 1)}
                </td>
                <td>
                  {b.status === 'estimated' && b.intervals > 1
                    ? `Estimated (${b.estimatedIntervals} of ${b.intervals} intervals)`
                    : STATUS_TEXT[b.status]}
                </td>
              </tr>
            ))}
        </tbody>
      </table>
    </div>
  );
}

function downloadCsv(bars: readonly Bar[], serial: string, view: View, from: string): void {
  const blob = new Blob([barsToCsv(bars)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = csvFileName(serial, view, from);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

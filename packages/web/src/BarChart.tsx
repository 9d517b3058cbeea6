// A dependency-free SVG bar chart. Estimated bars are hatched and carry an "E"; missing bars
// are gaps with a "×"; the page always offers the same data as a table.
import { useEffect, useId, useRef, useState } from 'react';
import { barHeight, labelEvery, niceMax, ticks, type Bar } from './chart.ts';

const tickFmt = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 2 });

function useWidth(): [React.RefObject<HTMLDivElement | null>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [w, setW] = useState(640);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = (): void => setW(Math.max(200, Math.floor(el.clientWidth)));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, w];
}

const MIN_SLOT = 12;
// The y axis is drawn apart (AXIS_W wide) so it stays in view when the bars scroll sideways.
const AXIS_W = 46;
// Left and right margins hold half an axis label ("00:00" is ~30 px at 11 px): the first and
// last labels are centred under their bars and would otherwise be clipped (")0:00").
const M = { top: 18, right: 18, bottom: 30, left: 18 };
const HEIGHT = 240;

/**
 * What a bar's `wh` holds: energy (Wh, shown as kWh) by default; the Cost view puts money
 * in thousandths of a minor unit there and shows it in pence or pounds.
 */
export interface ChartUnit {
  axis: string;
  /** Bar value / divisor = the number on the axis. */
  divisor: number;
  /** Tooltip text of one value. */
  format: (value: number) => string;
}

export const KWH_UNIT: ChartUnit = {
  axis: 'kWh',
  divisor: 1000,
  format: (v) => `${tickFmt.format(v / 1000)} kWh`,
};

export function BarChart({
  bars,
  title,
  summary,
  unit = KWH_UNIT,
}: {
  bars: readonly Bar[];
  title: string;
  summary: string;
  unit?: ChartUnit;
}) {
  const id = useId();
  const [ref, containerW] = useWidth();
  const n = Math.max(1, bars.length);
  const width = Math.max(containerW, M.left + M.right + n * MIN_SLOT);
  const plotW = width - M.left - M.right;
  const plotH = HEIGHT - M.top - M.bottom;
  const max = Math.max(0, ...bars.map((b) => b.wh ?? 0));
  const top = niceMax(max / unit.divisor) * unit.divisor;
  const slot = plotW / n;
  const barW = Math.max(2, slot * 0.72);
  const every = labelEvery(n, Math.floor(plotW / 44));
  const scrolls = width > containerW + 1;
  // When the chart scrolls, start with the latest data in view (like a phone banking app).
  const lastData = bars.reduce((last, b, i) => (b.status === 'future' ? last : i), 0);
  useEffect(() => {
    const el = ref.current;
    if (!el || !scrolls) return;
    el.scrollLeft = Math.max(0, M.left + (lastData + 1) * slot + M.right - el.clientWidth);
  }, [scrolls, lastData, slot, ref]);

  const tickValues = ticks(top / unit.divisor);
  const yOf = (t: number): number => M.top + plotH - barHeight(t * unit.divisor, top, plotH);

  return (
    <div className={scrolls ? 'chart-wrap chart-wrap-scrolls' : 'chart-wrap'}>
      <div className="chart-frame">
        <svg width={AXIS_W} height={HEIGHT} aria-hidden="true" className="chart-axis">
          <text x={4} y={11} className="axis-text">
            {unit.axis}
          </text>
          {tickValues.map((t) => (
            <text key={t} x={AXIS_W - 6} y={yOf(t) + 4} textAnchor="end" className="axis-text">
              {tickFmt.format(t)}
            </text>
          ))}
        </svg>
        <div
          ref={ref}
          className="chart-scroll"
          {...(scrolls ? { tabIndex: 0, role: 'region', 'aria-label': `${title} (scrolls sideways)` } : {})}
        >
          <svg
            width={width}
            height={HEIGHT}
            viewBox={`0 0 ${width} ${HEIGHT}`}
            role="img"
            aria-labelledby={`${id}-t ${id}-d`}
            className="chart"
          >
            <title id={`${id}-t`}>{title}</title>
            <desc id={`${id}-d`}>{summary}</desc>
            <defs>
              <pattern
                id={`${id}-hatch`}
                width="6"
                height="6"
                patternUnits="userSpaceOnUse"
                patternTransform="rotate(45)"
              >
                <rect width="6" height="6" className="hatch-bg" />
                <line x1="0" y1="0" x2="0" y2="6" className="hatch-line" />
              </pattern>
            </defs>
            {tickValues.map((t) => (
              <line key={t} x1={0} x2={width} y1={yOf(t)} y2={yOf(t)} className="grid" />
            ))}
            {bars.map((b, i) => {
              const x = M.left + i * slot + (slot - barW) / 2;
              const cx = x + barW / 2;
              const h = b.wh === null ? 0 : Math.max(b.wh > 0 ? 1 : 0, barHeight(b.wh, top, plotH));
              const y = M.top + plotH - h;
              const showLabel = i % every === 0;
              return (
                <g key={b.key}>
                  {b.wh !== null && (
                    <rect
                      x={x}
                      y={y}
                      width={barW}
                      height={h}
                      className={b.status === 'estimated' ? 'bar bar-estimated' : 'bar'}
                      fill={b.status === 'estimated' ? `url(#${id}-hatch)` : undefined}
                    >
                      <title>{`${b.fullLabel}: ${unit.format(b.wh)}${b.status === 'estimated' ? ' (estimated)' : ''}`}</title>
                    </rect>
                  )}
                  {b.status === 'estimated' && (
                    <text x={cx} y={y - 4} textAnchor="middle" className="marker">
                      E
                    </text>
                  )}
                  {/* A day without readings can still have money (its standing charge): the bar shows it. */}
                  {b.status === 'missing' && b.wh === null && (
                    <text x={cx} y={M.top + plotH - 4} textAnchor="middle" className="marker marker-missing">
                      ×<title>{`${b.fullLabel}: no data`}</title>
                    </text>
                  )}
                  {showLabel && (
                    <text x={cx} y={HEIGHT - M.bottom + 16} textAnchor="middle" className="axis-text">
                      {b.label}
                    </text>
                  )}
                </g>
              );
            })}
            <line x1={0} x2={width} y1={M.top + plotH} y2={M.top + plotH} className="axis" />
          </svg>
        </div>
      </div>
      {/* A chart wider than the screen scrolls: say so, or the earlier bars look absent. */}
      {scrolls && (
        <p className="chart-scroll-hint">
          <span aria-hidden="true">⟷</span> Swipe or scroll the chart sideways to see all {bars.length} bars;
          it opens at the latest.
        </p>
      )}
    </div>
  );
}

export function ChartLegend() {
  return (
    <ul className="legend" aria-label="Chart key">
      <li>
        <svg width="16" height="16" aria-hidden="true">
          <rect x="1" y="1" width="14" height="14" className="bar" />
        </svg>
        Measured
      </li>
      <li>
        <svg width="16" height="16" aria-hidden="true">
          <defs>
            <pattern
              id="legend-hatch"
              width="6"
              height="6"
              patternUnits="userSpaceOnUse"
              patternTransform="rotate(45)"
            >
              <rect width="6" height="6" className="hatch-bg" />
              <line x1="0" y1="0" x2="0" y2="6" className="hatch-line" />
            </pattern>
          </defs>
          <rect x="1" y="1" width="14" height="14" className="bar bar-estimated" fill="url(#legend-hatch)" />
        </svg>
        <span>
          <strong className="marker-key">E</strong> Estimated (hatched)
        </span>
      </li>
      <li>
        <span className="marker-key" aria-hidden="true">
          ×
        </span>
        Missing (no data received)
      </li>
    </ul>
  );
}

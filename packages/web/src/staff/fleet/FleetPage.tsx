import { useEffect, useId, useMemo, useState } from 'react';
import type {
  FleetFilterQuery,
  FleetItem,
  FleetQuery,
  FleetResponse,
  FleetSort,
  MeterMode,
  RelayState,
} from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, PageHeading, useApi, useNow } from '../../common.tsx';
import { formatMoney, relativeTime } from '../../format.ts';
import { Link, replaceSearch } from '../../router.tsx';
import { Badge, DataTable, EmptyState, type ColumnDef, type SortingState } from '../../ui/index.ts';
import { BulkSupplyButton } from '../supply/BulkSupplyButton.tsx';
import './fleet.css';

const PAGE = 50;
const SORTABLE: readonly FleetSort[] = ['serial', 'name', 'postcode', 'lastSeen', 'credit'];
/** Query-string keys the page keeps in the address, so a search can be shared and survives reload. */
const FILTER_KEYS = [
  'q',
  'mode',
  'relay',
  'tariffId',
  'firmware',
  'staleHours',
  'openCase',
  'veeFindings',
  'vulnerable',
  'sort',
  'dir',
] as const;
type Filters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

function readFilters(): Filters {
  const p = new URLSearchParams(location.search);
  const out: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = p.get(k);
    if (v) out[k] = v;
  }
  return out;
}

/** The contract's query from the page's filter strings (the API validates them again). */
function toQuery(f: Filters): FleetFilterQuery {
  return {
    q: f.q || undefined,
    mode: f.mode as MeterMode | undefined,
    relay: f.relay as RelayState | undefined,
    tariffId: f.tariffId ? Number(f.tariffId) : undefined,
    firmware: f.firmware || undefined,
    staleHours: f.staleHours ? Number(f.staleHours) : undefined,
    openCase: f.openCase as 'true' | 'false' | undefined,
    veeFindings: f.veeFindings as 'true' | 'false' | undefined,
    vulnerable: f.vulnerable as 'true' | 'false' | undefined,
    sort: (f.sort as FleetSort | undefined) ?? 'serial',
    dir: f.dir === 'desc' ? 'desc' : 'asc',
  };
}

const n = (x: number) => x.toLocaleString('en-GB');
const RELAY_TONE = { connected: 'good', disconnected: 'bad', armed: 'warn' } as const;

/** Supplier staff's home: every meter of the supplier, searched, filtered, sorted and paged on the server. */
export function FleetPage() {
  const id = useId();
  const now = useNow();
  const [filters, setFilters] = useState<Filters>(readFilters);
  const [text, setText] = useState(filters.q ?? '');
  // Cursors of the pages before this one: "Previous" pops, "Next" pushes.
  const [cursors, setCursors] = useState<string[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [filtersOpen, setFiltersOpen] = useState(false);

  // Typing searches after a pause, not on every key.
  useEffect(() => {
    const t = setTimeout(() => update({ q: text.trim() || undefined }), 300);
    return () => clearTimeout(t);
  }, [text]);

  const query = toQuery(filters);
  const path = `/api/fleet${qs<FleetQuery>({ ...query, limit: PAGE, ...(cursor ? { cursor } : {}) })}`;
  const { data, error, loading, reload } = useApi<FleetResponse>(path);
  // Keep the last answer on screen (dimmed) while the next one loads.
  const [shown, setShown] = useState<FleetResponse | null>(null);
  useEffect(() => {
    if (data) setShown(data);
  }, [data]);

  function update(patch: Filters) {
    setFilters((cur) => {
      const next: Filters = { ...cur, ...patch };
      for (const k of FILTER_KEYS) if (!next[k]) delete next[k];
      if (FILTER_KEYS.every((k) => next[k] === cur[k])) return cur;
      const s = new URLSearchParams(next).toString();
      replaceSearch(s ? `?${s}` : '');
      return next;
    });
    setCursors([]);
    setCursor(null);
  }

  const sorting: SortingState = [{ id: query.sort, desc: query.dir === 'desc' }];
  const onSortingChange = (u: SortingState | ((old: SortingState) => SortingState)) => {
    const next = typeof u === 'function' ? u(sorting) : u;
    const s = next[0];
    if (s) update({ sort: s.id, dir: s.desc ? 'desc' : 'asc' });
  };

  const rows = useMemo(() => shown?.items ?? [], [shown]);
  const allOnPage = rows.length > 0 && rows.every((r) => selected.has(r.serial));
  const toggle = (serial: string) =>
    setSelected((cur) => {
      const next = new Set(cur);
      if (next.has(serial)) next.delete(serial);
      else next.add(serial);
      return next;
    });

  const columns = useMemo<ColumnDef<FleetItem>[]>(
    () => [
      {
        id: 'select',
        enableSorting: false,
        header: () => (
          <input
            type="checkbox"
            aria-label="Select every meter on this page"
            checked={allOnPage}
            onChange={() =>
              setSelected((cur) => {
                const next = new Set(cur);
                for (const r of rows) {
                  if (allOnPage) next.delete(r.serial);
                  else next.add(r.serial);
                }
                return next;
              })
            }
          />
        ),
        cell: ({ row }) => (
          <input
            type="checkbox"
            aria-label={`Select ${row.original.serial}`}
            checked={selected.has(row.original.serial)}
            onChange={() => toggle(row.original.serial)}
          />
        ),
      },
      {
        id: 'serial',
        header: 'Serial',
        accessorFn: (r) => r.serial,
        cell: ({ row }) => (
          <Link href={`/meters/${encodeURIComponent(row.original.serial)}`}>{row.original.serial}</Link>
        ),
      },
      {
        id: 'name',
        header: 'Household',
        accessorFn: (r) => r.consumer?.name ?? '',
        cell: ({ row }) => {
          const c = row.original.consumer;
          if (!c) return <span className="muted">No account</span>;
          return (
            <span className="fleet-household">
              <span className="fleet-name">{c.name}</span>
              {c.consumerId && <span className="muted fleet-sub">{c.consumerId}</span>}
              {row.original.vulnerable && <Badge tone="warn">Vulnerable</Badge>}
            </span>
          );
        },
      },
      {
        id: 'postcode',
        header: 'Postcode',
        accessorFn: (r) => r.postcode ?? '',
        cell: ({ row }) => row.original.postcode ?? '—',
      },
      {
        id: 'state',
        header: 'Supply',
        enableSorting: false,
        cell: ({ row }) => {
          const r = row.original;
          return (
            <span className="fleet-badges">
              {r.relay ? (
                <Badge tone={RELAY_TONE[r.relay]}>{r.relay}</Badge>
              ) : (
                <span className="muted">unknown</span>
              )}
              {r.openCase && <Badge tone="bad">Open case</Badge>}
              {r.reviewFindings > 0 && <Badge tone="info">{r.reviewFindings} to review</Badge>}
            </span>
          );
        },
      },
      {
        id: 'tariff',
        header: 'Mode and tariff',
        enableSorting: false,
        cell: ({ row }) => (
          <span className="fleet-household">
            <span>
              {row.original.mode === 'prepayment'
                ? 'Prepayment'
                : row.original.mode === 'credit'
                  ? 'Credit'
                  : '—'}
            </span>
            <span className="muted fleet-sub">{row.original.tariff?.name ?? 'No tariff'}</span>
          </span>
        ),
      },
      {
        id: 'firmware',
        header: 'Firmware',
        enableSorting: false,
        cell: ({ row }) => row.original.firmwareVersion ?? '—',
      },
      {
        id: 'lastSeen',
        header: 'Last seen',
        accessorFn: (r) => r.lastSeenAt ?? '',
        cell: ({ row }) =>
          row.original.lastSeenAt ? (
            <time dateTime={row.original.lastSeenAt}>{relativeTime(row.original.lastSeenAt, now)}</time>
          ) : (
            <span className="muted">never</span>
          ),
      },
      {
        id: 'credit',
        header: 'Credit',
        accessorFn: (r) => r.creditMinor ?? 0,
        cell: ({ row }) => (
          <span className="num">
            {row.original.creditMinor === null ? '—' : formatMoney(row.original.creditMinor)}
          </span>
        ),
      },
    ],

    [rows, selected, allOnPage, now],
  );

  const c = shown?.counts;
  const exportHref = `/api/fleet/export.csv${qs<FleetFilterQuery>(query)}`;
  const activeFilters = FILTER_KEYS.filter(
    (k) => k !== 'q' && k !== 'sort' && k !== 'dir' && filters[k],
  ).length;
  const select = (key: keyof Filters, label: string, options: [string, string][]) => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <select
        id={`${id}-${key}`}
        value={filters[key] ?? ''}
        onChange={(e) => update({ [key]: e.target.value || undefined })}
      >
        <option value="">Any</option>
        {options.map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
      </select>
    </div>
  );
  const yesNo = (yes: number | undefined, all: number | undefined): [string, string][] => [
    ['true', `Yes${yes === undefined ? '' : ` (${n(yes)})`}`],
    ['false', `No${yes === undefined || all === undefined ? '' : ` (${n(all - yes)})`}`],
  ];

  return (
    <div className="fleet-page">
      <PageHeading title="Fleet">Fleet</PageHeading>
      <div className="card fleet-search" role="search">
        <div className="field">
          <label htmlFor={`${id}-q`}>Search meters</label>
          <input
            id={`${id}-q`}
            type="search"
            value={text}
            placeholder="Serial, consumer ID, name, postcode or street"
            onChange={(e) => setText(e.target.value)}
            aria-describedby={`${id}-q-hint`}
          />
          <p className="hint" id={`${id}-q-hint`}>
            Names and postcodes match from the start: “smi” finds Smith and Smithers.
          </p>
        </div>
        <button
          type="button"
          className="btn btn-secondary fleet-filter-toggle"
          aria-expanded={filtersOpen}
          aria-controls={`${id}-filters`}
          onClick={() => setFiltersOpen(!filtersOpen)}
        >
          Filters{activeFilters ? ` (${activeFilters})` : ''}
        </button>
        <div id={`${id}-filters`} className={`filters fleet-filters${filtersOpen ? ' is-open' : ''}`}>
          {select('mode', 'Payment mode', [
            ['credit', `Credit${c ? ` (${n(c.mode.credit)})` : ''}`],
            ['prepayment', `Prepayment${c ? ` (${n(c.mode.prepayment)})` : ''}`],
          ])}
          {select('relay', 'Supply', [
            ['connected', `Connected${c ? ` (${n(c.relay.connected)})` : ''}`],
            ['disconnected', `Disconnected${c ? ` (${n(c.relay.disconnected)})` : ''}`],
            ['armed', `Armed${c ? ` (${n(c.relay.armed)})` : ''}`],
          ])}
          {select(
            'tariffId',
            'Tariff',
            (c?.tariffs ?? []).map((t) => [String(t.id), `${t.name} (${n(t.count)})`]),
          )}
          {select(
            'firmware',
            'Firmware',
            (c?.firmware ?? []).map((f) => [f.version, `${f.version} (${n(f.count)})`]),
          )}
          {select(
            'staleHours',
            'Last seen',
            (c?.stale ?? []).map((s) => [
              String(s.hours),
              `Over ${s.hours >= 24 ? `${s.hours / 24} day${s.hours > 24 ? 's' : ''}` : `${s.hours} hour`} ago (${n(s.count)})`,
            ]),
          )}
          {select('openCase', 'Open tamper case', yesNo(c?.openCase, c?.all))}
          {select('veeFindings', 'Readings to review', yesNo(c?.veeFindings, c?.all))}
          {select('vulnerable', 'Vulnerable household', yesNo(c?.vulnerable, c?.all))}
          {activeFilters > 0 && (
            <div className="form-actions">
              <button
                type="button"
                className="btn btn-secondary btn-small"
                onClick={() =>
                  update(
                    Object.fromEntries(
                      FILTER_KEYS.filter((k) => k !== 'q' && k !== 'sort' && k !== 'dir').map((k) => [
                        k,
                        undefined,
                      ]),
                    ),
                  )
                }
              >
                Clear filters
              </button>
            </div>
          )}
        </div>
      </div>

      <div className="toolbar fleet-toolbar">
        <p className="fleet-total" role="status" aria-live="polite">
          {shown ? (
            <>
              <strong>{n(shown.total)}</strong> meter{shown.total === 1 ? '' : 's'}
              {c && c.all !== shown.total ? <span className="muted"> of {n(c.all)}</span> : null}
              {selected.size > 0 && <span> · {n(selected.size)} selected</span>}
            </>
          ) : loading ? (
            'Loading meters…'
          ) : null}
        </p>
        <div className="fleet-actions">
          {selected.size > 0 && (
            <button
              type="button"
              className="btn btn-secondary btn-small"
              onClick={() => setSelected(new Set())}
            >
              Clear selection
            </button>
          )}
          <BulkSupplyButton serials={[...selected]} onDone={reload} />
          <a className="btn btn-secondary btn-small" href={exportHref} download>
            Export CSV
          </a>
        </div>
      </div>

      {error && <ErrorMessage error={error} retry={reload} />}
      {!shown && loading && !error && (
        <p className="muted" role="status">
          Loading meters…
        </p>
      )}
      {shown && (
        <>
          <p className="fleet-scroll-hint muted" aria-hidden="true">
            Swipe the table sideways for more columns →
          </p>
          <DataTable
            caption="Meters of the fleet"
            columns={columns}
            rows={rows}
            rowKey={(r) => r.serial}
            sorting={sorting.filter((s) => SORTABLE.includes(s.id as FleetSort))}
            onSortingChange={onSortingChange}
            busy={loading}
            empty={
              <EmptyState title="No meters match">
                Try fewer letters, another spelling, or clear the filters.
              </EmptyState>
            }
          />
          <nav className="fleet-pager" aria-label="Pages">
            <button
              type="button"
              className="btn btn-secondary btn-small"
              disabled={cursors.length === 0 && cursor === null}
              onClick={() => {
                const prev = [...cursors];
                const back = prev.pop() ?? null;
                setCursors(prev);
                setCursor(back);
              }}
            >
              ← Previous
            </button>
            <span className="muted">Page {cursors.length + (cursor === null ? 1 : 2)}</span>
            <button
              type="button"
              className="btn btn-secondary btn-small"
              disabled={!shown.nextCursor || loading}
              onClick={() => {
                if (!shown.nextCursor) return;
                if (cursor !== null) setCursors([...cursors, cursor]);
                setCursor(shown.nextCursor);
              }}
            >
              Next →
            </button>
          </nav>
        </>
      )}
    </div>
  );
}

import { useMemo } from 'react';
import type { MeterOverview } from '@kilowire/contract';
import { BarChart } from '../../BarChart.tsx';
import type { Bar } from '../../chart.ts';
import { ErrorMessage, Loading, PageHeading, useApi, useNow } from '../../common.tsx';
import { formatDateTime, formatKwh, formatMoney, relativeTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import { Badge, DataTable, EmptyState, type ColumnDef, type Tone } from '../../ui/index.ts';
import { SupplyPanel } from '../supply/SupplyPanel.tsx';
import { MeterCases } from '../tamper/MeterCases.tsx';
import './fleet.css';

type Command = MeterOverview['commands'][number];

const RELAY_TONE: Record<string, Tone> = { connected: 'good', disconnected: 'bad', armed: 'warn' };
const STATUS_TONE: Record<string, Tone> = {
  ok: 'good',
  queued: 'info',
  sent: 'info',
  requested: 'info',
  awaiting_approval: 'warn',
  rejected: 'bad',
  failed: 'bad',
  expired: 'bad',
  cancelled: 'neutral',
};
const EVENT_TONE = (code: string): Tone =>
  code.startsWith('tamper.') || code.endsWith('failed') || code.endsWith('exhausted')
    ? 'bad'
    : code.startsWith('power.fail') || code.startsWith('credit.')
      ? 'warn'
      : 'neutral';
/** "tamper.cover" -> "Tamper: cover". */
const eventLabel = (code: string) => {
  const [kind, what] = code.split('.');
  return `${kind![0]!.toUpperCase()}${kind!.slice(1)}: ${(what ?? '').replace(/_/g, ' ')}`;
};
const statusLabel = (s: string) => s.replace(/_/g, ' ');

/** The last 30 local days as chart bars (days with no rollup are gaps, not zeros). */
function usageBars(o: MeterOverview, today: string): Bar[] {
  const byDay = new Map(o.usage.map((u) => [u.day, u]));
  const bars: Bar[] = [];
  const end = Date.parse(`${today}T00:00:00Z`);
  for (let i = 29; i >= 0; i--) {
    const d = new Date(end - i * 86_400_000).toISOString().slice(0, 10);
    const u = byDay.get(d);
    const next = new Date(Date.parse(`${d}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    bars.push({
      key: d,
      label: String(Number(d.slice(8))),
      fullLabel: new Date(`${d}T00:00:00Z`).toLocaleDateString('en-GB', {
        weekday: 'short',
        day: 'numeric',
        month: 'short',
        timeZone: 'UTC',
      }),
      start: d,
      end: next,
      wh: u ? u.wh : null,
      status: u ? (u.estimated > 0 ? 'estimated' : 'measured') : 'missing',
      intervals: u ? 1 : 0,
      estimatedIntervals: u && u.estimated > 0 ? 1 : 0,
    });
  }
  return bars;
}

/** Staff: one meter, everything about it on one page (GET /api/meters/:serial/overview). */
export function MeterPage({ param }: { param?: string }) {
  const serial = param ?? '';
  const now = useNow();
  const {
    data: o,
    error,
    loading,
    reload,
  } = useApi<MeterOverview>(serial ? `/api/meters/${encodeURIComponent(serial)}/overview` : null);

  const commandColumns = useMemo<ColumnDef<Command>[]>(
    () => [
      {
        id: 'when',
        header: 'Requested',
        accessorFn: (c) => c.createdAt,
        cell: ({ row }) => formatDateTime(row.original.createdAt, o?.tz ?? 'UTC'),
      },
      { id: 'type', header: 'Command', accessorFn: (c) => c.type },
      {
        id: 'status',
        header: 'Status',
        accessorFn: (c) => c.status,
        cell: ({ row }) => (
          <>
            <Badge tone={STATUS_TONE[row.original.status] ?? 'neutral'}>
              {statusLabel(row.original.status)}
            </Badge>
            {row.original.transitions.length > 0 && (
              <div className="command-steps">
                {row.original.transitions.map((t) => statusLabel(t.to)).join(' → ')}
              </div>
            )}
          </>
        ),
      },
      {
        id: 'who',
        header: 'Asked by / approved by',
        enableSorting: false,
        cell: ({ row }) => (
          <>
            {row.original.requestedBy ?? <span className="muted">system</span>}
            {row.original.approvedBy && (
              <span className="muted"> · approved by {row.original.approvedBy}</span>
            )}
          </>
        ),
      },
      {
        id: 'reason',
        header: 'Reason / result',
        enableSorting: false,
        cell: ({ row }) => row.original.reason ?? row.original.resultCode ?? '—',
      },
    ],
    [o?.tz],
  );

  if (error)
    return (
      <>
        <PageHeading title={`Meter ${serial}`}>Meter {serial}</PageHeading>
        {error.status === 404 ? (
          <EmptyState title="No such meter" action={<Link href="/fleet">Back to the fleet</Link>}>
            There is no meter {serial} in your fleet.
          </EmptyState>
        ) : (
          <ErrorMessage error={error} retry={reload} />
        )}
      </>
    );
  if (!o || (loading && !o)) return <Loading what={`meter ${serial}`} />;

  const today = new Date(now).toLocaleDateString('en-CA', { timeZone: o.tz });
  const bars = usageBars(o, today);
  const total = o.usage.reduce((s, u) => s + u.wh, 0);
  const h = o.household;
  const currency = o.account?.currency ?? 'GBP';

  return (
    <div className="meter-page">
      <p className="back-link">
        <Link href="/fleet">← Fleet</Link>
      </p>
      <div className="meter-head">
        <PageHeading title={`Meter ${o.serial}`}>{o.serial}</PageHeading>
        <span className="muted">{h ? h.name : 'No household'}</span>
        <span className="fleet-badges">
          {o.relay && <Badge tone={RELAY_TONE[o.relay] ?? 'neutral'}>{o.relay}</Badge>}
          {o.mode && <Badge>{o.mode === 'prepayment' ? 'Prepayment' : 'Credit'}</Badge>}
          {h?.vulnerable && <Badge tone="warn">Vulnerable</Badge>}
          {o.openCase && <Badge tone="bad">Open tamper case</Badge>}
          {o.status === 'decommissioned' && <Badge tone="neutral">Decommissioned</Badge>}
        </span>
      </div>

      <div className="cards">
        <section className="card meter-section" aria-labelledby="mp-household">
          <h2 id="mp-household">Household</h2>
          {h ? (
            <dl className="facts">
              <div>
                <dt>Name</dt>
                <dd>{h.name}</dd>
              </div>
              <div>
                <dt>Consumer ID</dt>
                <dd>{h.consumerId ?? '—'}</dd>
              </div>
              <div>
                <dt>Address</dt>
                <dd>{[h.address, h.postcode].filter(Boolean).join(', ') || '—'}</dd>
              </div>
              <div>
                <dt>Email</dt>
                <dd>{h.email ?? '—'}</dd>
              </div>
              <div>
                <dt>Mobile</dt>
                <dd>{h.mobile ?? '—'}</dd>
              </div>
              {h.vulnerable && (
                <div>
                  <dt>Vulnerable</dt>
                  <dd>{h.vulnerableNote ?? 'Yes'}</dd>
                </div>
              )}
            </dl>
          ) : (
            <p className="muted">This meter is not on an account yet.</p>
          )}
        </section>
        <section className="card meter-section" aria-labelledby="mp-account">
          <h2 id="mp-account">Account and tariff</h2>
          <dl className="facts">
            {o.account && (
              <>
                <div>
                  <dt>Account</dt>
                  <dd>
                    <Link href={`/accounts?account=${o.account.id}`}>#{o.account.id}</Link>
                  </dd>
                </div>
                <div>
                  <dt>Balance</dt>
                  <dd>
                    {o.account.balanceMinor > 0
                      ? `${formatMoney(o.account.balanceMinor, currency)} owed`
                      : o.account.balanceMinor < 0
                        ? `${formatMoney(-o.account.balanceMinor, currency)} in credit`
                        : formatMoney(0, currency)}
                  </dd>
                </div>
              </>
            )}
            <div>
              <dt>Tariff today</dt>
              <dd>{o.tariff.name ?? 'None'}</dd>
            </div>
            {o.tariff.next && (
              <div>
                <dt>Next tariff</dt>
                <dd>
                  {o.tariff.next.name} from {o.tariff.next.from}
                </dd>
              </div>
            )}
          </dl>
        </section>
        <section className="card meter-section" aria-labelledby="mp-meter">
          <h2 id="mp-meter">Meter</h2>
          <dl className="facts">
            <div>
              <dt>Credit on the meter</dt>
              <dd>{o.creditMinor === null ? '—' : formatMoney(o.creditMinor, currency)}</dd>
            </div>
            <div>
              <dt>Supply</dt>
              <dd>{o.relay ?? 'unknown'}</dd>
            </div>
            <div>
              <dt>Last seen</dt>
              <dd>{o.lastSeenAt ? relativeTime(o.lastSeenAt, now) : 'never'}</dd>
            </div>
            <div>
              <dt>Firmware</dt>
              <dd>
                {o.firmware.version ?? 'unknown'}
                {o.firmware.runningSlot && ` (slot ${o.firmware.runningSlot})`}
              </dd>
            </div>
            <div>
              <dt>Hardware</dt>
              <dd>{o.firmware.hardwareClass}</dd>
            </div>
            <div>
              <dt>Area · time zone</dt>
              <dd>
                {o.area.name} · {o.tz}
              </dd>
            </div>
          </dl>
        </section>
      </div>

      <SupplyPanel serial={o.serial} relay={o.relay} onChanged={reload} />
      <MeterCases serial={o.serial} />

      <section className="card meter-section" aria-labelledby="mp-usage">
        <h2 id="mp-usage">Usage, last 30 days</h2>
        {o.usage.length === 0 ? (
          <p className="muted">No readings in the last 30 days.</p>
        ) : (
          <BarChart
            bars={bars}
            title="Daily use, last 30 days"
            summary={`${formatKwh(total)} over ${o.usage.length} day${o.usage.length === 1 ? '' : 's'} with data`}
          />
        )}
      </section>

      <section className="card meter-section" aria-labelledby="mp-events">
        <h2 id="mp-events">Events</h2>
        {o.events.length === 0 ? (
          <p className="muted">No tamper, power, supply, credit or firmware events.</p>
        ) : (
          <ol className="timeline">
            {o.events.map((e, i) => (
              <li key={`${e.ts}-${e.code}-${i}`}>
                <time dateTime={e.ts}>{formatDateTime(e.ts, o.tz)}</time>
                <Badge tone={EVENT_TONE(e.code)}>{eventLabel(e.code)}</Badge>
              </li>
            ))}
          </ol>
        )}
      </section>

      <section className="card meter-section" aria-labelledby="mp-commands">
        <h2 id="mp-commands">Commands</h2>
        <DataTable
          caption="Commands sent to this meter, newest first"
          columns={commandColumns}
          rows={o.commands}
          rowKey={(c) => c.id}
          empty={<p className="muted">No commands yet.</p>}
        />
      </section>

      <div className="cards">
        <section className="card meter-section" aria-labelledby="mp-alerts">
          <h2 id="mp-alerts">Alerts</h2>
          {o.alerts.length === 0 ? (
            <p className="muted">No alerts.</p>
          ) : (
            <ul className="timeline">
              {o.alerts.map((a) => (
                <li key={a.id}>
                  <time dateTime={a.createdAt}>{formatDateTime(a.createdAt, o.tz)}</time>
                  <span>
                    <Badge
                      tone={a.severity === 'critical' ? 'bad' : a.severity === 'warning' ? 'warn' : 'info'}
                    >
                      {a.severity}
                    </Badge>{' '}
                    {a.title}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </section>
        <section className="card meter-section" aria-labelledby="mp-vee">
          <h2 id="mp-vee">Reading checks (VEE)</h2>
          {o.vee.length === 0 ? (
            <p className="muted">No findings.</p>
          ) : (
            <ul className="timeline">
              {o.vee.map((v) => (
                <li key={`${v.ts}-${v.rule}`}>
                  <time dateTime={v.ts}>{formatDateTime(v.ts, o.tz)}</time>
                  <span>
                    {v.rule.replace(/_/g, ' ')}{' '}
                    {v.needsReview ? <Badge tone="warn">to review</Badge> : <Badge>reviewed</Badge>}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </div>
  );
}

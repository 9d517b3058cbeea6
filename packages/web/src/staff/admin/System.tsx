import { useEffect } from 'react';
import type { SystemHealth } from '@kilowire/contract';
import { ErrorMessage, Loading, PageHeading, useApi } from '../../common.tsx';
import { Badge } from '../../ui/index.ts';
import { fmtTime } from './shared.tsx';
import './admin.css';

type Level = 'good' | 'warn' | 'bad';
const WORD: Record<Level, string> = { good: 'Good', warn: 'Watch', bad: 'Act now' };

/** Higher is worse: good up to `warn`, bad from `bad`. */
const upTo = (v: number, warn: number, bad: number): Level =>
  v >= bad ? 'bad' : v >= warn ? 'warn' : 'good';

function Tile(p: { title: string; level: Level; figure: string; children?: React.ReactNode }) {
  return (
    <li className="adm-tile">
      <h2>{p.title}</h2>
      <Badge tone={p.level}>{WORD[p.level]}</Badge>
      <p className="adm-figure">{p.figure}</p>
      {p.children}
    </li>
  );
}

/**
 * The platform on one page. Thresholds: events waiting over a minute and any failed delivery
 * need a look; meters mostly unseen or a queue backing up need action.
 */
export default function SystemPage() {
  const h = useApi<SystemHealth>('/api/admin/health');
  const { reload } = h;
  useEffect(() => {
    const t = setInterval(reload, 30_000);
    return () => clearInterval(t);
  }, [reload]);
  const d = h.data;
  return (
    <div className="adm">
      <PageHeading title="System health">System health</PageHeading>
      <p>
        Refreshed every 30 seconds{d ? `; last at ${fmtTime(d.at)}` : ''}.{' '}
        <button type="button" className="btn btn-small btn-secondary" onClick={reload}>
          Refresh now
        </button>
      </p>
      {h.error && <ErrorMessage error={h.error} retry={reload} />}
      {!d && !h.error && <Loading what="system health" />}
      {d && (
        <ul className="adm-tiles">
          {(() => {
            const share = d.meters.total ? d.meters.connected / d.meters.total : 1;
            return (
              <Tile
                title="Meters connected"
                level={share >= 0.95 ? 'good' : share >= 0.8 ? 'warn' : 'bad'}
                figure={`${d.meters.connected} / ${d.meters.total}`}
              >
                <p className="muted">Seen within two reading intervals.</p>
              </Tile>
            );
          })()}
          <Tile
            title="Readings stored"
            level={d.meters.total > 0 && d.ingest.perMinute15 === 0 ? 'bad' : 'good'}
            figure={`${d.ingest.perMinute5.toLocaleString('en-GB')}/min`}
          >
            <p className="muted">
              Last 5 minutes; {d.ingest.perMinute15.toLocaleString('en-GB')}/min over 15.
            </p>
          </Tile>
          <Tile
            title="Events waiting"
            level={upTo(d.events.oldestUndispatchedAgeS ?? 0, 60, 600)}
            figure={d.events.undispatched.toLocaleString('en-GB')}
          >
            <p className="muted">
              {d.events.oldestUndispatchedAgeS === null
                ? 'Nothing waiting to be handed to the job queues.'
                : `Oldest waiting ${d.events.oldestUndispatchedAgeS} s.`}
            </p>
          </Tile>
          <Tile
            title="Deliveries failing"
            level={d.deliveries.failed > 0 ? 'bad' : d.deliveries.retrying > 0 ? 'warn' : 'good'}
            figure={`${d.deliveries.failed} failed`}
          >
            <p className="muted">{d.deliveries.retrying} retrying (emails and texts).</p>
          </Tile>
          <Tile
            title="Commands open"
            level={upTo(d.commands.awaitingApproval, 1, 50)}
            figure={d.commands.awaitingApproval.toLocaleString('en-GB')}
          >
            <p className="muted">
              Awaiting approval; {d.commands.queued} queued, {d.commands.sent} sent and not yet answered.
            </p>
          </Tile>
          {(() => {
            const depth = d.queues.reduce((s, q) => s + q.queued + q.retrying, 0);
            return (
              <Tile title="Job queues" level={upTo(depth, 100, 1000)} figure={`${depth} waiting`}>
                {d.queues.length === 0 ? (
                  <p className="muted">No jobs waiting or running.</p>
                ) : (
                  <ul>
                    {d.queues.map((q) => (
                      <li key={q.name}>
                        {q.name}: {q.queued} queued, {q.active} running, {q.retrying} retrying
                      </li>
                    ))}
                  </ul>
                )}
              </Tile>
            );
          })()}
        </ul>
      )}
    </div>
  );
}

import { useEffect, useId, useState } from 'react';
import type {
  MessageChannel,
  OutboxMessage,
  OutboxQuery,
  OutboxPage as OutboxAnswer,
} from '@kilowire/contract';
import { MESSAGE_CHANNELS } from '@kilowire/contract/enums';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, Loading, PageHeading } from '../common.tsx';
import { formatDateTime } from '../format.ts';
import { CHANNEL_LABELS } from '../labels.ts';
import { EmptyState } from '../ui/index.ts';

const PAGE = 50;

const asChannel = (v: string): MessageChannel | '' => MESSAGE_CHANNELS.find((c) => c === v) ?? '';
const outboxQuery = (channel: MessageChannel | '', cursor?: string): string =>
  qs<OutboxQuery>({ channel: channel || undefined, limit: PAGE, cursor });

/**
 * Staff view of the built-in outbox: with no SMTP server or SMSC configured, every email
 * and SMS the system would have sent lands here, so nothing is invisible on a demo install.
 */
export function OutboxPage() {
  const [channel, setChannel] = useState<MessageChannel | ''>('');
  const [items, setItems] = useState<OutboxMessage[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [n, setN] = useState(0);
  const id = useId();

  useEffect(() => {
    let live = true;
    setItems(null);
    setError(null);
    api<OutboxAnswer>('GET', `/api/outbox${outboxQuery(channel)}`).then(
      (p) => {
        if (!live) return;
        setItems(p.items);
        setCursor(p.nextCursor);
      },
      (e: unknown) => live && setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
    return () => {
      live = false;
    };
  }, [channel, n]);

  const more = () => {
    if (!cursor) return;
    api<OutboxAnswer>('GET', `/api/outbox${outboxQuery(channel, cursor)}`).then(
      (p) => {
        setItems((cur) => [...(cur ?? []), ...p.items]);
        setCursor(p.nextCursor);
      },
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
  };

  return (
    <>
      <PageHeading title="Outbox">Outbox</PageHeading>
      <p>
        Emails and text messages the system sent while no mail server or SMS centre is configured. Newest
        first.
      </p>
      <div className="card filters">
        <div className="field">
          <label htmlFor={`${id}-channel`}>Channel</label>
          <select
            id={`${id}-channel`}
            value={channel}
            onChange={(e) => setChannel(asChannel(e.target.value))}
          >
            <option value="">Email and SMS</option>
            {MESSAGE_CHANNELS.map((c) => (
              <option key={c} value={c}>
                {CHANNEL_LABELS[c]}
              </option>
            ))}
          </select>
        </div>
        <button type="button" className="btn btn-secondary" onClick={() => setN(n + 1)}>
          Refresh
        </button>
      </div>
      {error && <ErrorMessage error={error} retry={() => setN(n + 1)} />}
      {!items && !error && <Loading what="outbox" />}
      {items && items.length === 0 && (
        <EmptyState title="No messages yet.">
          <p>Emails and text messages to households appear here when no mail or SMS service is set up.</p>
        </EmptyState>
      )}
      {items && items.length > 0 && (
        <ul className="outbox-list">
          {items.map((m) => (
            <li key={m.id} className="card outbox-item">
              <p className="outbox-meta">
                <span className="badge">{CHANNEL_LABELS[m.channel]}</span> to <strong>{m.recipient}</strong>
                {' · '}
                <time dateTime={m.createdAt}>{formatDateTime(m.createdAt, 'Europe/London')}</time>
              </p>
              {m.subject && <h2 className="outbox-subject">{m.subject}</h2>}
              <pre className="outbox-body">{m.body}</pre>
            </li>
          ))}
        </ul>
      )}
      {cursor && (
        <button type="button" className="btn btn-secondary" onClick={more}>
          Show older messages
        </button>
      )}
    </>
  );
}

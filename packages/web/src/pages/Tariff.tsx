import { useState } from 'react';
import type {
  Tariff,
  TariffRequest,
  TariffRequestBody,
  TariffRequests,
  Tariffs,
  TariffsQuery,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, Loading, MeterPicker, PageHeading, useApi, useMeter } from '../common.tsx';
import { formatKwh, formatMoney } from '../format.ts';
import { longDay, priceLines, STRUCTURE_LABELS, TARIFF_COMMAND_WORDS } from '../tariffs.ts';
import { Upcoming } from './SupplierTariffs.tsx';

/** The household's tariff: what it pays, what the others would have cost it, and asking to change. */
export function TariffPage() {
  const meter = useMeter();
  const tariffs = useApi<Tariffs>(meter ? `/api/tariffs${qs<TariffsQuery>({ serial: meter.serial })}` : null);
  const requests = useApi<TariffRequests>(meter ? '/api/tariff-change-requests' : null);
  return (
    <>
      <PageHeading title="Tariff">Your tariff</PageHeading>
      <MeterPicker />
      {!meter ? (
        <p>There is no meter on your account yet.</p>
      ) : tariffs.error ? (
        <ErrorMessage error={tariffs.error} retry={tariffs.reload} />
      ) : requests.error ? (
        <ErrorMessage error={requests.error} retry={requests.reload} />
      ) : !tariffs.data || !requests.data ? (
        <Loading what="your tariff" />
      ) : (
        <TariffView
          data={tariffs.data}
          requests={requests.data.items.filter((r) => r.serial === meter.serial)}
          reload={() => {
            tariffs.reload();
            requests.reload();
          }}
        />
      )}
    </>
  );
}

const REQUEST_TEXT = (r: TariffRequest): string =>
  r.status === 'requested'
    ? `You asked to move to ${r.toTariff}. Your supplier has not decided yet.`
    : r.status === 'approved'
      ? `Your move to ${r.toTariff} was approved${r.effectiveFrom ? `: it starts on ${longDay(r.effectiveFrom)}` : ''}.`
      : r.status === 'declined'
        ? `Your request to move to ${r.toTariff} was declined. Reason: ${r.reason ?? 'none given'}`
        : `Your request to move to ${r.toTariff} was withdrawn.`;

function TariffView({
  data,
  requests,
  reload,
}: {
  data: Tariffs;
  requests: TariffRequest[];
  reload: () => void;
}) {
  const m = data.meter!;
  const current = data.items.find((t) => t.id === m.tariffId) ?? null;
  const others = data.items.filter((t) => t.id !== m.tariffId);
  const open = requests.find((r) => r.status === 'requested') ?? null;
  const latest = requests[0] ?? null;
  return (
    <>
      <section className="card tariff-current" aria-labelledby="current-h">
        <h2 id="current-h">{current ? current.name : 'No tariff yet'}</h2>
        {current?.current ? (
          <>
            <p>{STRUCTURE_LABELS[current.structure]}</p>
            <ul className="rates">
              {priceLines(current.current, current.currency).map((l) => (
                <li key={l}>{l}</li>
              ))}
            </ul>
            <Upcoming t={current} />
            <Figures t={current} label="What you paid at these prices" />
          </>
        ) : (
          <p>Your supplier has not put your meter on a tariff yet.</p>
        )}
        {m.next && (
          <p className="notice">
            From {longDay(m.next.from)} you move to <strong>{m.next.tariffName}</strong>.
          </p>
        )}
        {m.command && <p className="muted">{TARIFF_COMMAND_WORDS[m.command.status]}</p>}
      </section>

      {latest && (
        <section className="card" aria-labelledby="request-h">
          <h2 id="request-h">Your request</h2>
          <p role="status">{REQUEST_TEXT(latest)}</p>
          <p className="muted">
            Asked on {new Date(latest.createdAt).toLocaleDateString('en-GB', { dateStyle: 'long' })}.
          </p>
        </section>
      )}

      <h2>Other tariffs you can choose</h2>
      {others.length === 0 ? (
        <p>Your supplier has no other tariffs open to you right now.</p>
      ) : (
        <>
          <p>
            What each would have cost you over your own recent days, at its prices today (standing charge and
            VAT included).
          </p>
          <ul className="tariff-list">
            {others.map((t) => (
              <li key={t.id}>
                <OtherTariff
                  t={t}
                  current={current}
                  openRequest={open}
                  serial={m.serial}
                  onRequested={reload}
                />
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

function Figures({ t, label }: { t: Tariff; label: string }) {
  if (!t.comparison) return null;
  const used = t.comparison.filter((c) => c.daysUsed > 0);
  if (!used.length) return <p className="muted">No readings yet to compare with.</p>;
  return (
    <dl className="facts compare-figures" aria-label={label}>
      {used.map((c) => (
        <div key={c.windowDays}>
          <dt>
            Last {c.windowDays} days{' '}
            <span className="muted">
              ({c.daysUsed === c.windowDays ? 'all' : c.daysUsed} {c.daysUsed === 1 ? 'day' : 'days'} of
              readings, {formatKwh(c.wh)})
            </span>
          </dt>
          <dd>{formatMoney(c.totalMinor, t.currency)}</dd>
        </div>
      ))}
    </dl>
  );
}

function OtherTariff({
  t,
  current,
  openRequest,
  serial,
  onRequested,
}: {
  t: Tariff;
  current: Tariff | null;
  openRequest: TariffRequest | null;
  serial: string;
  onRequested: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const headingId = `tariff-${t.id}-h`;
  const diff = (() => {
    const mine = current?.comparison?.[0];
    const theirs = t.comparison?.[0];
    if (!mine || !theirs || mine.daysUsed === 0) return null;
    return theirs.totalMinor - mine.totalMinor;
  })();
  const ask = (): void => {
    if (busy) return;
    setBusy(true);
    setError(null);
    api<TariffRequest>('POST', '/api/tariff-change-requests', {
      serial,
      toTariffId: t.id,
    } satisfies TariffRequestBody).then(
      () => {
        setBusy(false);
        onRequested();
      },
      (e: unknown) => {
        setBusy(false);
        setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
      },
    );
  };
  return (
    <section className="card" aria-labelledby={headingId}>
      <h3 id={headingId}>{t.name}</h3>
      <p>{STRUCTURE_LABELS[t.structure]}</p>
      {t.current && (
        <ul className="rates">
          {priceLines(t.current, t.currency).map((l) => (
            <li key={l}>{l}</li>
          ))}
        </ul>
      )}
      <Upcoming t={t} />
      <Figures t={t} label={`What ${t.name} would have cost you`} />
      {diff !== null && diff !== 0 && (
        <p>
          <strong>
            {formatMoney(Math.abs(diff), t.currency)} {diff < 0 ? 'less' : 'more'}
          </strong>{' '}
          than your tariff over the last 30 days.
        </p>
      )}
      {error && <ErrorMessage error={error} />}
      {openRequest ? (
        <p className="muted">
          {openRequest.toTariffId === t.id
            ? 'You have asked to move to this tariff.'
            : 'You can ask for another tariff once your supplier has decided on your current request.'}
        </p>
      ) : (
        <button type="button" className="btn" aria-disabled={busy} onClick={ask}>
          {busy ? 'Sending…' : `Ask to move to ${t.name}`}
        </button>
      )}
    </section>
  );
}

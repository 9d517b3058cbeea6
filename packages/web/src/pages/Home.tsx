import type { Home, HomeQuery, RelayState } from '@kilowire/contract';
import { qs } from '../api.ts';
import { ErrorMessage, Loading, MeterPicker, PageHeading, useApi, useMeter, useNow } from '../common.tsx';
import {
  catchingUpText,
  formatDateTime,
  formatKwh,
  formatMoney,
  percentOf,
  relativeTime,
  usageAgainstLimit,
} from '../format.ts';
import { METER_MODE_LABELS } from '../labels.ts';
import { Link } from '../router.tsx';

const RELAY_TEXT: Record<RelayState, { label: string; detail: string }> = {
  connected: { label: 'Connected', detail: 'Your supply is on.' },
  disconnected: {
    label: 'Disconnected',
    detail: 'Your supply is off. If you did not expect this, contact your supplier.',
  },
  armed: {
    label: 'Ready to reconnect',
    detail: 'Press the button on your meter to turn your supply back on.',
  },
};

const dateFmt = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', timeZone: 'UTC' });

export function HomePage() {
  const meter = useMeter();
  const now = useNow();
  const home = useApi<Home>(meter ? `/api/home${qs<HomeQuery>({ serial: meter.serial })}` : null);
  return (
    <>
      <PageHeading title="Home">Your electricity today</PageHeading>
      <MeterPicker />
      {!meter ? (
        <p>There is no meter on your account yet.</p>
      ) : home.error ? (
        <ErrorMessage error={home.error} retry={home.reload} />
      ) : !home.data ? (
        <Loading what="today's figures" />
      ) : (
        <HomeCards home={home.data} now={now} />
      )}
    </>
  );
}

function HomeCards({ home, now }: { home: Home; now: number }) {
  const { today, meter, cost, prepayment } = home;
  const limit = today.dailyLimitWh;
  const pct = limit ? (percentOf(today.wh, limit) ?? 0) : 0;
  const over = limit !== null && today.wh > limit;
  const relay = meter.relay ? RELAY_TEXT[meter.relay] : null;
  const money = (minor: number) => formatMoney(minor, cost?.currency ?? meter.currency);
  const behind = catchingUpText(home.lastReadingAt, meter.intervalS, now, meter.tz);
  return (
    <div className="cards">
      {home.outage && (
        <p className="notice notice-warn card-wide" role="status">
          <strong>Power cut.</strong> Your electricity has been off since{' '}
          {formatDateTime(home.outage.since, meter.tz)}. The network operator knows and is working on it
          {home.outage.etr
            ? `; they expect it back by ${formatDateTime(home.outage.etr, meter.tz)}.`
            : '.'}{' '}
          You will get a message when it is back.
        </p>
      )}
      {behind && (
        <p className="notice notice-info card-wide catching-up" role="status">
          {behind}
          {home.lastReadingAt &&
            '. Your meter is sending the readings it kept; the figures fill in as they arrive.'}
        </p>
      )}
      {prepayment && <CreditCard p={prepayment} currency={meter.currency} />}
      <section className="card card-wide" aria-labelledby="today-h">
        <h2 id="today-h">Used today</h2>
        <p className="big-number">
          {formatKwh(today.wh)}
          {cost && <span className="big-number-side"> · {money(cost.todayMinor)}</span>}
        </p>
        {cost && <p className="muted">Cost so far today, with today's standing charge and VAT.</p>}
        {limit !== null ? (
          <>
            <div className={`bar-track${over ? ' bar-over' : ''}`} aria-hidden="true">
              <div className="bar-fill" style={{ width: `${Math.min(100, pct)}%` }} />
            </div>
            <p>
              Daily limit: {usageAgainstLimit(today.wh, limit)}{' '}
              {over && <strong className="badge badge-warn">Over your limit</strong>}
            </p>
          </>
        ) : (
          <p>
            No daily limit set. <Link href="/limits">Set a daily limit</Link>
          </p>
        )}
        {home.lastReadingAt && (
          <p className="muted">
            Updated{' '}
            <time dateTime={home.lastReadingAt} title={formatDateTime(home.lastReadingAt, meter.tz)}>
              {relativeTime(home.lastReadingAt, now)}
            </time>
            <span className="visually-hidden"> ({formatDateTime(home.lastReadingAt, meter.tz)})</span>
          </p>
        )}
      </section>

      <section className="card" aria-labelledby="bill-h">
        <h2 id="bill-h">This billing period</h2>
        <p className="big-number">{formatKwh(home.billingPeriod.wh)}</p>
        <p className="muted">Since {dateFmt.format(new Date(`${home.billingPeriod.start}T00:00:00Z`))}</p>
        {cost && (
          <dl className="facts">
            <div>
              <dt>Cost so far</dt>
              <dd>{money(cost.periodMinor)}</dd>
            </div>
            {cost.projection && (
              <div>
                <dt>Projected bill</dt>
                <dd>{money(cost.projection.totalMinor)}</dd>
              </div>
            )}
          </dl>
        )}
        {cost?.projection && cost.recentDailyMinor !== null && (
          <p className="muted">
            Projected: the cost so far plus {money(cost.recentDailyMinor)} a day (your average over the last{' '}
            {cost.recentDays === 1 ? 'day' : `${cost.recentDays} days`}) for the{' '}
            {cost.projection.daysLeft === 1 ? 'day' : `${cost.projection.daysLeft} days`} left until{' '}
            {dateFmt.format(new Date(`${cost.projection.periodEnd}T00:00:00Z`))}.
          </p>
        )}
        {cost && (
          <p>
            <Link href="/tariff">Your tariff: {cost.tariffName}</Link>
          </p>
        )}
        <p>
          <Link href="/statistics">See your usage in detail</Link>
        </p>
      </section>

      <section className="card" aria-labelledby="supply-h">
        <h2 id="supply-h">Supply</h2>
        {relay ? (
          <>
            <p className={`status status-${meter.relay ?? 'unknown'}`}>
              <span aria-hidden="true" className="status-icon">
                {meter.relay === 'connected' ? '●' : meter.relay === 'armed' ? '◐' : '○'}
              </span>{' '}
              {relay.label}
            </p>
            <p>
              {home.outage && meter.relay === 'connected'
                ? 'The switch in your meter is on: the power cut is on the network, not at your meter.'
                : relay.detail}
            </p>
          </>
        ) : (
          <p>Supply status not reported yet.</p>
        )}
      </section>

      <section className="card" aria-labelledby="meter-h">
        <h2 id="meter-h">Meter</h2>
        <dl className="facts">
          <div>
            <dt>Mode</dt>
            <dd>{METER_MODE_LABELS[meter.mode]}</dd>
          </div>
          {meter.creditMinor !== null && (
            <div>
              <dt>{meter.mode === 'prepayment' ? 'Credit on meter' : 'Balance'}</dt>
              <dd>{formatMoney(meter.creditMinor, meter.currency)}</dd>
            </div>
          )}
          <div>
            <dt>Serial number</dt>
            <dd>{meter.serial}</dd>
          </div>
        </dl>
        {meter.creditMinor !== null && <p className="muted">As last reported by your meter.</p>}
      </section>

      <section className="card" aria-labelledby="alerts-h">
        <h2 id="alerts-h">Alerts</h2>
        <p className="big-number">{home.unreadAlerts}</p>
        <p>
          {home.unreadAlerts === 0 ? (
            <Link href="/alerts">No unread alerts. See all alerts</Link>
          ) : (
            <Link href="/alerts?status=unread">
              {home.unreadAlerts === 1
                ? 'Read your unread alert'
                : `Read your ${home.unreadAlerts} unread alerts`}
            </Link>
          )}
        </p>
      </section>
    </div>
  );
}

const hoursFmt = (h: { from: string; to: string }) => `${h.from} to ${h.to}`;

/** Prepayment: what is on the meter, what is owed, how long it lasts, and the way to top up. */
function CreditCard({ p, currency }: { p: NonNullable<Home['prepayment']>; currency: string }) {
  const money = (minor: number) => formatMoney(minor, currency);
  const low = p.creditMinor !== null && p.lowCreditMinor !== null && p.creditMinor < p.lowCreditMinor;
  return (
    <section className="card card-wide credit-card" aria-labelledby="credit-h">
      <h2 id="credit-h">Your credit</h2>
      {p.creditMinor === null ? (
        <p>Your meter has not reported its credit yet.</p>
      ) : (
        <p className="big-number">
          {money(Math.max(0, p.creditMinor))}
          {(low || p.emergencyInUse) && (
            <strong className="badge badge-warn">
              {p.emergencyInUse ? 'Using emergency credit' : 'Low credit'}
            </strong>
          )}
        </p>
      )}
      <p>
        {p.daysLeft === null
          ? 'We will show how long your credit lasts once there are a few days of readings.'
          : p.daysLeft <= 0
            ? 'Your credit has run out. Top up to keep your supply on.'
            : `About ${p.daysLeft} ${p.daysLeft === 1 ? 'day' : 'days'} left at your usage over the last week.`}
      </p>
      <dl className="facts">
        {p.debtMinor > 0 && (
          <div>
            <dt>Emergency credit to repay</dt>
            <dd>{money(p.debtMinor)}</dd>
          </div>
        )}
        {p.emergencyAvailableMinor !== null && (
          <div>
            <dt>Emergency credit available</dt>
            <dd>{money(p.emergencyAvailableMinor)}</dd>
          </div>
        )}
        {p.friendlyHours && (
          <div>
            <dt>Friendly-credit hours</dt>
            <dd>{hoursFmt(p.friendlyHours)}</dd>
          </div>
        )}
        <div>
          <dt>Low-credit warning</dt>
          <dd>{p.lowCreditMinor === null ? 'Not set' : `Below ${money(p.lowCreditMinor)}`}</dd>
        </div>
      </dl>
      {p.friendlyHours && (
        <p className="muted">
          During friendly-credit hours your supply is never cut off for lack of credit.{' '}
          {p.debtMinor > 0 && 'Emergency credit you used is taken from your next top-up.'}
        </p>
      )}
      <p className="form-actions">
        <Link href="/top-up" className="btn btn-large">
          Top up
        </Link>
        <Link href="/limits">Change the low-credit warning</Link>
      </p>
    </section>
  );
}

-- Kilowire schema v2: consumer limits, alert preferences, alerts, their deliveries and the
-- built-in outbox. Delivery jobs themselves live in pg-boss's own schema (`pgboss`).

-- Consumption limits per meter, set by the consumer who owns it (Wh; NULL = no limit).
CREATE TABLE meter_limits (
  meter_id         integer PRIMARY KEY REFERENCES meters(id),
  daily_limit_wh   integer CHECK (daily_limit_wh BETWEEN 1 AND 1000000),
  hourly_limit_wh  integer CHECK (hourly_limit_wh BETWEEN 1 AND 1000000),
  updated_by       bigint REFERENCES users(id),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Quiet hours (HH:MM local time of the consumer's first meter): non-critical alerts wait
-- until they end. Both set or both NULL.
ALTER TABLE consumers
  ADD COLUMN quiet_hours_from text CHECK (quiet_hours_from ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  ADD COLUMN quiet_hours_to   text CHECK (quiet_hours_to ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  ADD CONSTRAINT consumers_quiet_hours_both CHECK ((quiet_hours_from IS NULL) = (quiet_hours_to IS NULL));

-- Channel choices per alert type. A missing row means the defaults (src/alerts/types.ts):
-- web on for every type; email on for tamper/disconnected/credit_low/daily_limit; sms on for
-- tamper/disconnected.
CREATE TABLE alert_preferences (
  consumer_id  bigint NOT NULL REFERENCES consumers(id),
  type         text NOT NULL CHECK (type IN ('daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed')),
  email        boolean NOT NULL,
  sms          boolean NOT NULL,
  web          boolean NOT NULL,
  PRIMARY KEY (consumer_id, type)
);

-- One row per crossing: UNIQUE (meter_id, type, dedupe_key) makes every rule idempotent
-- (dedupe_key: the local day, the local hour, the event's seq:idx, the tariff version).
CREATE TABLE alerts (
  id           bigserial PRIMARY KEY,
  -- NULL for staff-only alerts (a meter not on an account).
  consumer_id  bigint REFERENCES consumers(id),
  supplier_id  integer NOT NULL REFERENCES organisations(id),
  meter_id     integer NOT NULL REFERENCES meters(id),
  type         text NOT NULL CHECK (type IN ('daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed')),
  severity     text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  title        text NOT NULL,
  message      text NOT NULL,
  figures      jsonb NOT NULL DEFAULT '{}',
  dedupe_key   text NOT NULL,
  -- Shown in the consumer's portal (their 'web' channel choice for the type at the time).
  web          boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  read_at      timestamptz,
  UNIQUE (meter_id, type, dedupe_key)
);
CREATE INDEX alerts_consumer ON alerts(consumer_id, id DESC);
CREATE INDEX alerts_consumer_unread ON alerts(consumer_id) WHERE read_at IS NULL AND web;
CREATE INDEX alerts_supplier ON alerts(supplier_id, id DESC);

-- One row per (alert, channel, recipient): the "never twice to the person" guarantee. A row
-- is moved into the pg-boss queue once (job_id set in the same transaction).
CREATE TABLE deliveries (
  id             bigserial PRIMARY KEY,
  alert_id       bigint NOT NULL REFERENCES alerts(id),
  channel        text NOT NULL CHECK (channel IN ('email', 'sms')),
  recipient      text NOT NULL,
  -- 'consumer' or 'staff' (supplier staff copied on tamper / disconnection).
  audience       text NOT NULL CHECK (audience IN ('consumer', 'staff')),
  status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts       integer NOT NULL DEFAULT 0,
  last_error     text,
  -- Not before this instant (end of the consumer's quiet hours); NULL = at once.
  deliver_after  timestamptz,
  job_id         uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  sent_at        timestamptz,
  UNIQUE (alert_id, channel, recipient)
);
CREATE INDEX deliveries_unqueued ON deliveries(id) WHERE job_id IS NULL AND status = 'pending';

-- The built-in sink when no SMTP server / SMSC is configured: what would have been sent.
CREATE TABLE outbox (
  id          bigserial PRIMARY KEY,
  channel     text NOT NULL CHECK (channel IN ('email', 'sms')),
  recipient   text NOT NULL,
  subject     text,
  body        text NOT NULL,
  alert_id    bigint REFERENCES alerts(id),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_alert ON outbox(alert_id);

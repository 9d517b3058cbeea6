-- Kilowire schema v1. Every reading table is keyed by meter first (meter_id, time) so
-- that it can be partitioned by time and distributed by meter (Citus) without a rewrite.

CREATE TABLE organisations (
  id          serial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('supplier', 'network_operator', 'platform')),
  slug        text NOT NULL UNIQUE,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A network operator's area, and the feeders/transformers inside it (outage grouping).
CREATE TABLE network_areas (
  id           text PRIMARY KEY,
  operator_id  integer NOT NULL REFERENCES organisations(id),
  name         text NOT NULL
);
CREATE TABLE feeders (
  id       text PRIMARY KEY,
  area_id  text NOT NULL REFERENCES network_areas(id),
  name     text NOT NULL
);

CREATE TABLE users (
  id             bigserial PRIMARY KEY,
  role           text NOT NULL CHECK (role IN ('consumer', 'supplier', 'operator', 'admin')),
  -- Staff sign in with email, consumers with their consumer ID (login_id).
  email          text UNIQUE,
  login_id       text UNIQUE,
  org_id         integer REFERENCES organisations(id),
  password_hash  text NOT NULL,
  display_name   text NOT NULL,
  disabled       boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CHECK (role = 'consumer' OR email IS NOT NULL),
  CHECK (role <> 'consumer' OR login_id IS NOT NULL),
  CHECK (role IN ('consumer', 'admin') OR org_id IS NOT NULL)
);

CREATE TABLE consumers (
  id            bigserial PRIMARY KEY,
  user_id       bigint NOT NULL UNIQUE REFERENCES users(id),
  supplier_id   integer NOT NULL REFERENCES organisations(id),
  name          text NOT NULL,
  email         text,
  mobile        text,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
  id                 bigserial PRIMARY KEY,
  consumer_id        bigint NOT NULL REFERENCES consumers(id),
  supplier_id        integer NOT NULL REFERENCES organisations(id),
  mode               text NOT NULL CHECK (mode IN ('credit', 'prepayment')),
  billing_cycle_day  smallint NOT NULL DEFAULT 1 CHECK (billing_cycle_day BETWEEN 1 AND 28),
  currency           char(3) NOT NULL DEFAULT 'GBP',
  created_at         timestamptz NOT NULL DEFAULT now()
);
-- Every consumer request starts from the consumer's accounts (scope, home page).
CREATE INDEX accounts_consumer ON accounts(consumer_id);

CREATE TABLE meters (
  id               serial PRIMARY KEY,
  -- The id the meter uses on the wire (MQTT username, topic segment).
  serial           text NOT NULL UNIQUE,
  account_id       bigint REFERENCES accounts(id),
  supplier_id      integer NOT NULL REFERENCES organisations(id),
  area_id          text NOT NULL REFERENCES network_areas(id),
  feeder_id        text REFERENCES feeders(id),
  tz               text NOT NULL DEFAULT 'Europe/London',
  hardware_class   text NOT NULL DEFAULT 'KW-1P-100A',
  interval_s       integer NOT NULL DEFAULT 1800 CHECK (interval_s IN (900, 1800)),
  -- Largest plausible power for this connection (W): the VEE spike limit.
  max_power_w      integer NOT NULL DEFAULT 23000,
  -- SHA-256 of the meter's broker password (high-entropy random, so a fast hash is enough).
  credential_hash  text NOT NULL,
  public_key       text,
  last_counter     bigint NOT NULL DEFAULT 0,
  last_seen_at     timestamptz,
  relay            text CHECK (relay IN ('connected', 'disconnected', 'armed')),
  mode             text CHECK (mode IN ('credit', 'prepayment')),
  credit_minor     bigint,
  firmware_version text,
  last_status      jsonb,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meters_account ON meters(account_id);
CREATE INDEX meters_supplier ON meters(supplier_id);
CREATE INDEX meters_area ON meters(area_id);

-- What the gateway updates on every batch, kept out of the wide meters row so that each
-- update is a small HOT update. Sequence bookkeeping: everything <= *_upto is committed;
-- *_above holds committed sequence numbers past a gap, so acks stay right across gateway
-- restarts and several gateways. last_reg_*: the newest register snapshot (VEE sum check).
CREATE TABLE meter_ingest_state (
  meter_id         integer PRIMARY KEY REFERENCES meters(id) ON DELETE CASCADE,
  readings_upto    bigint NOT NULL DEFAULT 0,
  readings_above   bigint[] NOT NULL DEFAULT '{}',
  events_upto      bigint NOT NULL DEFAULT 0,
  events_above     bigint[] NOT NULL DEFAULT '{}',
  last_reg_at      timestamptz,
  last_reg_import  bigint,
  last_data_at     timestamptz
) WITH (fillfactor = 50);

CREATE FUNCTION kw_meter_ingest_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO meter_ingest_state (meter_id) VALUES (NEW.id);
  RETURN NEW;
END $$;
CREATE TRIGGER meters_ingest_state AFTER INSERT ON meters FOR EACH ROW EXECUTE FUNCTION kw_meter_ingest_state();

-- Interval profile (1.0.99.1.0). flags: 1 = estimated, 2 = spike, 4 = sum check failed.
CREATE TABLE interval_readings (
  meter_id  integer NOT NULL,
  ts        timestamptz NOT NULL,
  wh        integer NOT NULL CHECK (wh >= 0),
  exp_wh    integer,
  flags     smallint NOT NULL DEFAULT 0,
  PRIMARY KEY (meter_id, ts)
);
-- Estimates are few and are looked up on every insert (an actual reading replaces one).
CREATE INDEX interval_readings_estimated ON interval_readings (meter_id, ts) WHERE flags & 1 = 1;

-- Register snapshots that came with each readings message (Wh).
CREATE TABLE register_reads (
  meter_id    integer NOT NULL,
  ts          timestamptz NOT NULL,
  import_wh   bigint NOT NULL,
  rate1_wh    bigint NOT NULL,
  rate2_wh    bigint NOT NULL,
  export_wh   bigint NOT NULL,
  PRIMARY KEY (meter_id, ts)
);

CREATE TABLE meter_events (
  meter_id     integer NOT NULL,
  seq          bigint NOT NULL,
  idx          smallint NOT NULL,
  ts           timestamptz NOT NULL,
  code         text NOT NULL,
  data         jsonb,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (meter_id, seq, idx)
);
CREATE INDEX meter_events_ts ON meter_events(meter_id, ts);

-- Findings of validation that did not reject the data (kept for review and for reports).
CREATE TABLE vee_issues (
  meter_id  integer NOT NULL,
  ts        timestamptz NOT NULL,
  rule      text NOT NULL,
  detail    jsonb,
  PRIMARY KEY (meter_id, ts, rule)
);

-- Rollups in the meter's local calendar (a day is 23, 24 or 25 hours).
CREATE TABLE daily_rollups (
  meter_id     integer NOT NULL,
  day          date NOT NULL,
  wh           bigint NOT NULL,
  intervals    integer NOT NULL,
  estimated    integer NOT NULL DEFAULT 0,
  PRIMARY KEY (meter_id, day)
);
-- Months are at most 31 daily rows: summed on read, so ingest updates one rollup row, not two.
CREATE VIEW monthly_rollups AS
  SELECT meter_id, date_trunc('month', day)::date AS month, sum(wh)::bigint AS wh,
         sum(intervals)::int AS intervals, sum(estimated)::int AS estimated
    FROM daily_rollups GROUP BY meter_id, date_trunc('month', day);

CREATE TABLE commands (
  id             uuid PRIMARY KEY,
  meter_id       integer NOT NULL REFERENCES meters(id),
  counter        bigint NOT NULL,
  type           text NOT NULL,
  body           jsonb NOT NULL,
  envelope       text NOT NULL,
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'ok', 'rejected', 'failed', 'expired')),
  attempts       integer NOT NULL DEFAULT 0,
  created_by     bigint REFERENCES users(id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  sent_at        timestamptz,
  replied_at     timestamptz,
  result_code    text,
  result_detail  text,
  UNIQUE (meter_id, counter)
);
CREATE INDEX commands_open ON commands(status) WHERE status IN ('pending', 'sent');

CREATE TABLE sessions (
  id          text PRIMARY KEY,           -- SHA-256 of the cookie token; the token itself is never stored
  user_id     bigint NOT NULL REFERENCES users(id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_log (
  id        bigserial PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor_id  bigint REFERENCES users(id),
  action    text NOT NULL,
  target    text,
  detail    jsonb,
  ip        text
);

-- Advance a sequence watermark: fold newly committed seqs into (upto, above).
CREATE FUNCTION kw_advance_seq(upto bigint, above bigint[], seqs bigint[], OUT new_upto bigint, OUT new_above bigint[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  s bigint;
  pending bigint[];
BEGIN
  new_upto := upto;
  SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO pending
    FROM unnest(above || seqs) AS x WHERE x > upto;
  FOREACH s IN ARRAY pending LOOP
    IF s = new_upto + 1 THEN new_upto := s; END IF;
  END LOOP;
  SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO new_above FROM unnest(pending) AS x WHERE x > new_upto;
END $$;

-- Kilowire schema v4: money. Tariffs and their versions, which tariff each meter is on,
-- households' tariff-change requests, their low-credit threshold, and the double-entry
-- ledger. Bills (005) and payments/top-ups (006) build on these tables.
--
-- Units: money in integer minor units (pence); unit rates and standing charges in
-- thousandths of a minor unit (24.5p/kWh = 24500, 53.35p/day = 53350), exactly as a meter
-- receives them in `tariff.set`; energy in Wh. Local days are `date` in the meter's zone.

-- A third time-of-use register (1.8.3, peak) for three-band tariffs; older meters report 0.
ALTER TABLE register_reads ADD COLUMN rate3_wh bigint NOT NULL DEFAULT 0;

CREATE TABLE tariffs (
  id           serial PRIMARY KEY,
  supplier_id  integer NOT NULL REFERENCES organisations(id),
  -- Stable id sent to meters as tariffSpec.id.
  code         text NOT NULL CHECK (code ~ '^[A-Za-z0-9._-]{1,64}$'),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
  currency     char(3) NOT NULL DEFAULT 'GBP',
  -- flat: band 1 only; two_rate: day (1) and night (2); three_band: day (1), night (2), peak (3).
  structure    text NOT NULL CHECK (structure IN ('flat', 'two_rate', 'three_band')),
  -- Households may see it, compare it and ask to move to it.
  open         boolean NOT NULL DEFAULT true,
  created_by   bigint REFERENCES users(id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (supplier_id, code)
);

-- A tariff's prices from a local day on. A price change is a new version, never an edit.
CREATE TABLE tariff_versions (
  tariff_id           integer NOT NULL REFERENCES tariffs(id),
  version             integer NOT NULL CHECK (version >= 1),
  -- Local midnight, in each meter's own zone.
  effective_from      date NOT NULL,
  day_rate            integer NOT NULL CHECK (day_rate BETWEEN 0 AND 100000000),
  night_rate          integer CHECK (night_rate BETWEEN 0 AND 100000000),
  peak_rate           integer CHECK (peak_rate BETWEEN 0 AND 100000000),
  -- [{"from":"00:00","to":"07:00"}] in local time; band 3 wins over band 2 where both match.
  night_windows       jsonb NOT NULL DEFAULT '[]',
  peak_windows        jsonb NOT NULL DEFAULT '[]',
  export_rate         integer CHECK (export_rate BETWEEN 0 AND 100000000),
  standing_milli_per_day integer NOT NULL CHECK (standing_milli_per_day BETWEEN 0 AND 1000000000),
  -- VAT in basis points (500 = 5%).
  vat_bp              integer NOT NULL CHECK (vat_bp BETWEEN 0 AND 10000),
  created_by          bigint REFERENCES users(id),
  created_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tariff_id, version),
  UNIQUE (tariff_id, effective_from)
);

-- Which tariff a meter is on from which local day; rows are history, never edited.
CREATE TABLE meter_tariffs (
  meter_id     integer NOT NULL REFERENCES meters(id),
  from_day     date NOT NULL,
  tariff_id    integer NOT NULL REFERENCES tariffs(id),
  assigned_by  bigint REFERENCES users(id),
  assigned_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (meter_id, from_day)
);
CREATE INDEX meter_tariffs_tariff ON meter_tariffs(tariff_id);

-- A household asks to move a meter to another tariff; the supplier decides.
CREATE TABLE tariff_change_requests (
  id              bigserial PRIMARY KEY,
  consumer_id     bigint NOT NULL REFERENCES consumers(id),
  meter_id        integer NOT NULL REFERENCES meters(id),
  from_tariff_id  integer REFERENCES tariffs(id),
  to_tariff_id    integer NOT NULL REFERENCES tariffs(id),
  status          text NOT NULL DEFAULT 'requested'
                  CHECK (status IN ('requested', 'approved', 'declined', 'withdrawn')),
  -- The supplier's reason (required to decline).
  reason          text CHECK (length(reason) <= 500),
  -- Local day the new tariff applies from (set on approval).
  effective_from  date,
  requested_by    bigint REFERENCES users(id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  decided_by      bigint REFERENCES users(id),
  decided_at      timestamptz,
  CHECK (status <> 'declined' OR reason IS NOT NULL)
);
-- One open request per meter.
CREATE UNIQUE INDEX tariff_change_requests_open ON tariff_change_requests(meter_id) WHERE status = 'requested';
CREATE INDEX tariff_change_requests_consumer ON tariff_change_requests(consumer_id, id DESC);

-- The household's own low-credit warning level (sent to the meter as thresholds.set).
ALTER TABLE meter_limits ADD COLUMN low_credit_minor integer CHECK (low_credit_minor BETWEEN 0 AND 1000000);

-- ---------------------------------------------------------------- ledger
-- Double entry in minor units: each transaction's lines sum to zero. Books:
--   customer   what the account owes (+) or holds in credit (-); the balance is its sum
--   energy     revenue from unit charges        standing  revenue from standing charges
--   vat        VAT owed to the tax authority    cash      money received or paid out
--   adjustment goodwill, write-offs, corrections
CREATE TABLE ledger_transactions (
  id          bigserial PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES accounts(id),
  -- usage: a prepayment meter's local debits as the head-end prices them (per local day);
  -- opening: the balance or credit an account came with.
  kind        text NOT NULL CHECK (kind IN ('bill', 'payment', 'topup', 'refund', 'adjustment', 'credit_note', 'debit_note', 'usage', 'opening')),
  -- What it records ('bill:42', 'topup:<uuid>', 'refund:<provider id>'): posting twice is a no-op.
  ref         text NOT NULL UNIQUE,
  memo        text NOT NULL,
  created_by  bigint REFERENCES users(id),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_transactions_account ON ledger_transactions(account_id, id DESC);

CREATE TABLE ledger_entries (
  id            bigserial PRIMARY KEY,
  txn_id        bigint NOT NULL REFERENCES ledger_transactions(id),
  book          text NOT NULL CHECK (book IN ('customer', 'energy', 'standing', 'vat', 'cash', 'adjustment')),
  -- The customer account of a 'customer' line (NULL on the other books).
  account_id    bigint REFERENCES accounts(id),
  -- Debit positive, credit negative.
  amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
  CHECK ((book = 'customer') = (account_id IS NOT NULL))
);
CREATE INDEX ledger_entries_txn ON ledger_entries(txn_id);
CREATE INDEX ledger_entries_customer ON ledger_entries(account_id, id) WHERE account_id IS NOT NULL;

-- Entries are immutable: a correction is a new transaction. The database refuses the rest.
CREATE FUNCTION kw_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger rows are immutable (% on %): post a correcting transaction', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER ledger_transactions_immutable BEFORE UPDATE OR DELETE ON ledger_transactions
  FOR EACH ROW EXECUTE FUNCTION kw_ledger_immutable();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
  FOR EACH STATEMENT EXECUTE FUNCTION kw_ledger_immutable();
CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION kw_ledger_immutable();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION kw_ledger_immutable();

-- Every transaction touched by an insert must balance, counting all of its lines. One index
-- probe per transaction inserted: a join to the whole table would be hashed once the ledger
-- is large, and a bill run posts thousands of transactions per statement.
CREATE FUNCTION kw_ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad bigint;
BEGIN
  SELECT n.txn_id INTO bad
    FROM (SELECT DISTINCT txn_id FROM new_rows) n
    CROSS JOIN LATERAL (SELECT sum(e.amount_minor) AS s FROM ledger_entries e WHERE e.txn_id = n.txn_id) x
   WHERE x.s <> 0
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'ledger transaction % does not balance', bad USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kw_ledger_balanced();

-- Alert types for money: a bill issued, a tariff request decided, payments and top-ups, an
-- armed supply to switch on at the meter, and (staff only) credit drift found by reconciliation.
ALTER TABLE alert_preferences DROP CONSTRAINT alert_preferences_type_check;
ALTER TABLE alert_preferences ADD CONSTRAINT alert_preferences_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift'));
ALTER TABLE alerts DROP CONSTRAINT alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift'));

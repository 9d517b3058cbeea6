-- Kilowire schema v16: network-use charges (issue #9). The network operator's tariffs, which
-- tariff prices which area from when, the monthly invoices it issues to each supplier from
-- the daily collection (013), their lines, and the network ledger.
--
-- Units as in 004_money.sql: money in integer minor units; rates in thousandths of a minor
-- unit per kWh (4.2p/kWh = 4200) and per meter per local day; energy in Wh; VAT in basis
-- points. Local days are `date` in the area's time zone.

CREATE TABLE network_tariffs (
  id           serial PRIMARY KEY,
  operator_id  integer NOT NULL REFERENCES organisations(id),
  code         text NOT NULL CHECK (code ~ '^[A-Za-z0-9._-]{1,64}$'),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
  currency     char(3) NOT NULL DEFAULT 'GBP',
  created_by   bigint REFERENCES users(id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (operator_id, code)
);

-- A tariff's prices from a local day on; a price change is a new version, never an edit.
-- bands: [{"code":"red","name":"Red","rateMilli":12000,"windows":[{"from":"16:00","to":"19:00"}],
-- "weekdaysOnly":true}, ..., {"code":"green","name":"Green","rateMilli":500,"windows":[]}].
-- A half-hour takes the first band (in order) whose windows hold its start, weekdays only when
-- so marked; the one band without windows takes every other half-hour.
CREATE TABLE network_tariff_versions (
  tariff_id        integer NOT NULL REFERENCES network_tariffs(id),
  version          integer NOT NULL CHECK (version >= 1),
  effective_from   date NOT NULL,
  bands            jsonb NOT NULL CHECK (jsonb_typeof(bands) = 'array' AND jsonb_array_length(bands) BETWEEN 1 AND 6),
  -- Fixed charge per meter per local day collected.
  fixed_milli_per_day integer NOT NULL CHECK (fixed_milli_per_day BETWEEN 0 AND 1000000000),
  vat_bp           integer NOT NULL CHECK (vat_bp BETWEEN 0 AND 10000),
  created_by       bigint REFERENCES users(id),
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tariff_id, version),
  UNIQUE (tariff_id, effective_from)
);

-- Which network tariff prices an area from which local day; rows are history, never edited.
CREATE TABLE network_tariff_areas (
  area_id      text NOT NULL REFERENCES network_areas(id),
  from_day     date NOT NULL,
  tariff_id    integer NOT NULL REFERENCES network_tariffs(id),
  assigned_by  bigint REFERENCES users(id),
  assigned_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (area_id, from_day)
);
CREATE INDEX network_tariff_areas_tariff ON network_tariff_areas (tariff_id);

-- A month's invoice from an operator to a supplier (kind 'invoice', one per operator, supplier
-- and month), or a later credit/debit note correcting it when a collection was revised. Rows
-- never change. A note's totals are the difference; its lines are the month as recomputed.
CREATE TABLE network_invoices (
  id            bigserial PRIMARY KEY,
  operator_id   integer NOT NULL REFERENCES organisations(id),
  supplier_id   integer NOT NULL REFERENCES organisations(id),
  -- First day of the month invoiced.
  month         date NOT NULL CHECK (extract(day FROM month) = 1),
  kind          text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'credit_note', 'debit_note')),
  corrects_id   bigint REFERENCES network_invoices(id),
  currency      char(3) NOT NULL,
  meter_days    integer NOT NULL,
  wh            bigint NOT NULL,
  net_minor     bigint NOT NULL,
  vat_minor     bigint NOT NULL,
  gross_minor   bigint NOT NULL,
  -- schedule: the monthly pg-boss job; staff: an operator admin asked.
  trigger       text NOT NULL CHECK (trigger IN ('schedule', 'staff')),
  issued_by     bigint REFERENCES users(id),
  issued_at     timestamptz NOT NULL DEFAULT now(),
  CHECK (net_minor + vat_minor = gross_minor),
  CHECK ((kind = 'invoice') = (corrects_id IS NULL)),
  CHECK (kind = 'invoice' OR gross_minor <> 0),
  CHECK (kind <> 'credit_note' OR gross_minor < 0),
  CHECK (kind <> 'debit_note' OR gross_minor > 0)
);
-- A month is invoiced once.
CREATE UNIQUE INDEX network_invoices_once ON network_invoices (operator_id, supplier_id, month) WHERE kind = 'invoice';
CREATE INDEX network_invoices_operator ON network_invoices (operator_id, month DESC, id DESC);
CREATE INDEX network_invoices_supplier ON network_invoices (supplier_id, month DESC, id DESC);

-- Lines: energy per area, tariff version and band (kWh x rate); fixed per area and version
-- (meter-days x charge); VAT per rate. Each money line rounded once, half up.
CREATE TABLE network_invoice_lines (
  invoice_id    bigint NOT NULL REFERENCES network_invoices(id),
  line_no       integer NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('energy', 'fixed', 'vat')),
  area_id       text REFERENCES network_areas(id),
  tariff_code   text,
  version       integer,
  from_day      date,
  to_day        date,
  band          text,
  band_name     text,
  wh            bigint,
  meter_days    integer,
  -- Thousandths of a minor unit per kWh (energy) or per meter-day (fixed).
  rate_milli    integer,
  vat_bp        integer,
  -- VAT lines: the net amount the VAT is on.
  net_minor     bigint,
  amount_minor  bigint NOT NULL,
  PRIMARY KEY (invoice_id, line_no)
);

CREATE FUNCTION kw_network_invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'issued network invoices never change (% on %): issue a credit or debit note', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER network_invoices_immutable BEFORE UPDATE OR DELETE ON network_invoices
  FOR EACH ROW EXECUTE FUNCTION kw_network_invoice_immutable();
CREATE TRIGGER network_invoices_no_truncate BEFORE TRUNCATE ON network_invoices
  FOR EACH STATEMENT EXECUTE FUNCTION kw_network_invoice_immutable();
CREATE TRIGGER network_invoice_lines_immutable BEFORE UPDATE OR DELETE ON network_invoice_lines
  FOR EACH ROW EXECUTE FUNCTION kw_network_invoice_immutable();
CREATE TRIGGER network_invoice_lines_no_truncate BEFORE TRUNCATE ON network_invoice_lines
  FOR EACH STATEMENT EXECUTE FUNCTION kw_network_invoice_immutable();

-- ---------------------------------------------------------------- network ledger
-- Double entry in minor units between an operator and the suppliers on its wires. Books:
--   supplier         what the supplier owes the operator (+), with supplier_id
--   network_revenue  the operator's network-use revenue      vat   VAT owed to the tax authority
--   cash             money received
CREATE TABLE network_ledger_transactions (
  id           bigserial PRIMARY KEY,
  operator_id  integer NOT NULL REFERENCES organisations(id),
  supplier_id  integer NOT NULL REFERENCES organisations(id),
  kind         text NOT NULL CHECK (kind IN ('invoice', 'credit_note', 'debit_note', 'payment')),
  -- 'netinv:<invoice id>', 'netpay:<operator>:<reference>': posting twice is a no-op.
  ref          text NOT NULL UNIQUE,
  invoice_id   bigint REFERENCES network_invoices(id),
  memo         text NOT NULL,
  created_by   bigint REFERENCES users(id),
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX network_ledger_transactions_parties ON network_ledger_transactions (operator_id, supplier_id, id DESC);
CREATE INDEX network_ledger_transactions_invoice ON network_ledger_transactions (invoice_id) WHERE invoice_id IS NOT NULL;

CREATE TABLE network_ledger_entries (
  id            bigserial PRIMARY KEY,
  txn_id        bigint NOT NULL REFERENCES network_ledger_transactions(id),
  book          text NOT NULL CHECK (book IN ('supplier', 'network_revenue', 'vat', 'cash')),
  supplier_id   integer REFERENCES organisations(id),
  amount_minor  bigint NOT NULL CHECK (amount_minor <> 0),
  CHECK ((book = 'supplier') = (supplier_id IS NOT NULL))
);
CREATE INDEX network_ledger_entries_txn ON network_ledger_entries (txn_id);
CREATE INDEX network_ledger_entries_supplier ON network_ledger_entries (supplier_id, txn_id) WHERE supplier_id IS NOT NULL;

-- Same rules as the household ledger: rows never change, every transaction balances.
CREATE TRIGGER network_ledger_transactions_immutable BEFORE UPDATE OR DELETE ON network_ledger_transactions
  FOR EACH ROW EXECUTE FUNCTION kw_ledger_immutable();
CREATE TRIGGER network_ledger_transactions_no_truncate BEFORE TRUNCATE ON network_ledger_transactions
  FOR EACH STATEMENT EXECUTE FUNCTION kw_ledger_immutable();
CREATE TRIGGER network_ledger_entries_immutable BEFORE UPDATE OR DELETE ON network_ledger_entries
  FOR EACH ROW EXECUTE FUNCTION kw_ledger_immutable();
CREATE TRIGGER network_ledger_entries_no_truncate BEFORE TRUNCATE ON network_ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION kw_ledger_immutable();

CREATE FUNCTION kw_network_ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad bigint;
BEGIN
  SELECT n.txn_id INTO bad
    FROM (SELECT DISTINCT txn_id FROM new_rows) n
    CROSS JOIN LATERAL (SELECT sum(e.amount_minor) AS s FROM network_ledger_entries e WHERE e.txn_id = n.txn_id) x
   WHERE x.s <> 0
   LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'network ledger transaction % does not balance', bad USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER network_ledger_entries_balanced AFTER INSERT ON network_ledger_entries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION kw_network_ledger_balanced();

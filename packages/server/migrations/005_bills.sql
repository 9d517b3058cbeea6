-- Kilowire schema v5: bills (credit mode), their credit and debit notes, and bill runs.
--
-- A bill covers one account and one billing period [period_start, period_end) of local days
-- in its meter's calendar. Its figures are computed once, posted to the ledger in the same
-- transaction (ledger ref 'bill:<id>') and never changed: corrected readings produce a credit
-- or debit note that references the bill (ledger ref 'note:<id>'). Money in integer minor
-- units; the lines (jsonb) keep the exact inputs: Wh, rates in thousandths of a minor unit.

-- A bill run: the credit accounts of one supplier with one billing cycle day, for one period.
-- Progress is the state of its items; a run whose process died is resumed from the items
-- still pending (bills are unique per account and period, so nothing is issued twice).
CREATE TABLE bill_runs (
  id            bigserial PRIMARY KEY,
  supplier_id   integer NOT NULL REFERENCES organisations(id),
  cycle_day     smallint NOT NULL CHECK (cycle_day BETWEEN 1 AND 28),
  period_start  date NOT NULL,
  period_end    date NOT NULL,
  -- schedule: the daily pg-boss job; staff: POST /api/bill-runs; demo: issueDemoBills.
  trigger       text NOT NULL CHECK (trigger IN ('schedule', 'staff', 'demo')),
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done')),
  created_by    bigint REFERENCES users(id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  CHECK (period_end > period_start)
);
-- The schedule creates at most one run per supplier, cycle day and period, however often it fires.
CREATE UNIQUE INDEX bill_runs_scheduled ON bill_runs (supplier_id, cycle_day, period_start)
  WHERE trigger IN ('schedule', 'demo');
CREATE INDEX bill_runs_supplier ON bill_runs (supplier_id, id DESC);
CREATE INDEX bill_runs_open ON bill_runs (id) WHERE status <> 'done';

CREATE TABLE bill_run_items (
  run_id        bigint NOT NULL REFERENCES bill_runs(id),
  account_id    bigint NOT NULL REFERENCES accounts(id),
  -- issued: this run issued its bill; already_billed: a bill for the period existed (a re-run);
  -- failed: see reason (no tariff, no reads, ...): the rest of the run goes on.
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'issued', 'already_billed', 'failed')),
  reason        text,
  bill_id       bigint,
  processed_at  timestamptz,
  PRIMARY KEY (run_id, account_id),
  CHECK (status <> 'failed' OR reason IS NOT NULL)
);
CREATE INDEX bill_run_items_pending ON bill_run_items (run_id, account_id) WHERE status = 'pending';

CREATE TABLE bills (
  id                      bigserial PRIMARY KEY,
  account_id              bigint NOT NULL REFERENCES accounts(id),
  supplier_id             integer NOT NULL REFERENCES organisations(id),
  meter_id                integer NOT NULL REFERENCES meters(id),
  run_id                  bigint REFERENCES bill_runs(id),
  period_start            date NOT NULL,
  period_end              date NOT NULL,
  currency                char(3) NOT NULL,
  -- Register reads at the period's boundaries (and at tariff changes inside it), each
  -- {day, at, importWh, rate1Wh, rate2Wh, rate3Wh, estimated, method}.
  reads                   jsonb NOT NULL,
  -- Charge lines: energy per tariff version and band, standing charge per version, VAT per rate.
  lines                   jsonb NOT NULL,
  energy_minor            bigint NOT NULL,
  standing_minor          bigint NOT NULL,
  vat_minor               bigint NOT NULL,
  total_minor             bigint NOT NULL,
  -- The account's statement: balance after the previous bill, payments (and refunds, top-ups)
  -- since, other entries since (notes, adjustments), this bill: amount due = their sum.
  previous_balance_minor  bigint NOT NULL,
  payments_minor          bigint NOT NULL,
  other_minor             bigint NOT NULL,
  amount_due_minor        bigint NOT NULL,
  due_date                date NOT NULL,
  issued_at               timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, period_start),
  CHECK (period_end > period_start),
  CHECK (energy_minor + standing_minor + vat_minor = total_minor),
  CHECK (previous_balance_minor + payments_minor + other_minor + total_minor = amount_due_minor)
);
CREATE INDEX bills_supplier ON bills (supplier_id, id DESC);
CREATE INDEX bills_meter ON bills (meter_id, period_start);

-- A correction of an issued bill: the difference between the bill as it would be computed
-- now and the bill plus its earlier notes. Never an edit of the bill.
CREATE TABLE bill_notes (
  id              bigserial PRIMARY KEY,
  bill_id         bigint NOT NULL REFERENCES bills(id),
  account_id      bigint NOT NULL REFERENCES accounts(id),
  kind            text NOT NULL CHECK (kind IN ('credit_note', 'debit_note')),
  reason          text NOT NULL,
  -- The reads and lines of the recomputed bill (what the note brings the bill to).
  reads           jsonb NOT NULL,
  lines           jsonb NOT NULL,
  energy_minor    bigint NOT NULL,
  standing_minor  bigint NOT NULL,
  vat_minor       bigint NOT NULL,
  total_minor     bigint NOT NULL CHECK (total_minor <> 0),
  issued_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (energy_minor + standing_minor + vat_minor = total_minor),
  CHECK ((kind = 'credit_note') = (total_minor < 0))
);
CREATE INDEX bill_notes_bill ON bill_notes (bill_id, id);

CREATE FUNCTION kw_bill_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'issued bills and notes never change (% on %): issue a credit or debit note', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER bills_immutable BEFORE UPDATE OR DELETE ON bills
  FOR EACH ROW EXECUTE FUNCTION kw_bill_immutable();
CREATE TRIGGER bills_no_truncate BEFORE TRUNCATE ON bills
  FOR EACH STATEMENT EXECUTE FUNCTION kw_bill_immutable();
CREATE TRIGGER bill_notes_immutable BEFORE UPDATE OR DELETE ON bill_notes
  FOR EACH ROW EXECUTE FUNCTION kw_bill_immutable();
CREATE TRIGGER bill_notes_no_truncate BEFORE TRUNCATE ON bill_notes
  FOR EACH STATEMENT EXECUTE FUNCTION kw_bill_immutable();

-- Kilowire schema v7: the head-end's mirror of each prepayment meter's credit. The meter is
-- the authority (it debits locally); the ledger records what the head-end knows — an opening
-- credit, top-ups, and per completed local day the day's usage at the meter's prices — and
-- reconciliation compares the credit the meter reports with the credit the ledger implies.
CREATE TABLE prepay_mirror (
  meter_id        integer PRIMARY KEY REFERENCES meters(id),
  account_id      bigint NOT NULL REFERENCES accounts(id),
  -- First local day whose usage the ledger holds (the opening credit is as of its start).
  from_day        date NOT NULL,
  -- Last local day whose usage is posted (NULL: none yet).
  posted_through  date,
  -- The last comparison: what the meter reported, what the ledger implies, when.
  checked_at      timestamptz,
  reported_minor  bigint,
  expected_minor  bigint,
  drift_minor     bigint
);

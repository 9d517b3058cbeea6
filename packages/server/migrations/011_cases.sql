-- Kilowire schema v11: tamper cases' timelines and the events behind them; monthly
-- consumption extracts produced by the jobs service and stored where every API process can
-- read them (the database, not a local disk).

-- A case's timeline: notes, status moves and actions (site visit booked, disconnect,
-- reconnect...), oldest first. actor_id is null for what the system did itself.
CREATE TABLE tamper_case_entries (
  id        bigserial PRIMARY KEY,
  case_id   bigint NOT NULL REFERENCES tamper_cases(id),
  at        timestamptz NOT NULL DEFAULT now(),
  actor_id  bigint REFERENCES users(id),
  kind      text NOT NULL CHECK (kind IN ('note', 'status', 'action')),
  -- What was done, for kind 'action' only.
  action    text CHECK (action IN ('site_visit_booked', 'site_visit_done', 'disconnect', 'reconnect', 'meter_exchanged', 'other')),
  text      text,
  -- e.g. {"visitDate": "2026-12-01"}, {"commandId": "..."}, {"from": "open", "to": "investigating"}
  data      jsonb,
  CHECK ((kind = 'action') = (action IS NOT NULL))
);
CREATE INDEX tamper_case_entries_case ON tamper_case_entries (case_id, id);

-- The meter events that opened or joined a case. The primary key on the event makes a
-- redelivered domain event a no-op: one event belongs to one case, once.
CREATE TABLE tamper_case_events (
  case_id   bigint NOT NULL REFERENCES tamper_cases(id),
  meter_id  integer NOT NULL,
  seq       bigint NOT NULL,
  idx       smallint NOT NULL,
  PRIMARY KEY (meter_id, seq, idx),
  FOREIGN KEY (meter_id, seq, idx) REFERENCES meter_events (meter_id, seq, idx)
);
CREATE INDEX tamper_case_events_case ON tamper_case_events (case_id);
CREATE INDEX tamper_cases_meter ON tamper_cases (meter_id, opened_at DESC);

-- Monthly extracts (S5): one row per request, worked by the jobs service in chunks of
-- meters. progress = meters_done / meters_total.
CREATE TABLE extracts (
  id            bigserial PRIMARY KEY,
  supplier_id   integer NOT NULL REFERENCES organisations(id),
  requested_by  bigint REFERENCES users(id),
  month         date NOT NULL CHECK (extract(day FROM month) = 1),
  -- {"mode": "credit"|"prepayment", "tariffId": n, "serials": [...]}; {} = every meter.
  selection     jsonb NOT NULL DEFAULT '{}',
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  meters_total  integer,
  meters_done   integer NOT NULL DEFAULT 0,
  -- CSV data rows written (daily + monthly), and the uncompressed CSV size in bytes.
  rows          bigint NOT NULL DEFAULT 0,
  bytes         bigint NOT NULL DEFAULT 0,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz
);
CREATE INDEX extracts_supplier ON extracts (supplier_id, id DESC);

-- The meters an extract covers, fixed when it starts (a meter added meanwhile does not
-- shift the chunks of a resumed job), in serial order: ord is the CSV order.
CREATE TABLE extract_meters (
  extract_id  bigint NOT NULL REFERENCES extracts(id) ON DELETE CASCADE,
  ord         integer NOT NULL,
  meter_id    integer NOT NULL,
  PRIMARY KEY (extract_id, ord)
);

-- The CSV itself, in gzip members: chunk n holds the rows of meters [n*size, (n+1)*size).
-- A chunk and the progress that counts it commit together, so a job that crashed resumes at
-- the first missing chunk and never writes a row twice. Concatenated gzip members are one
-- valid gzip stream, so the download can also be sent compressed as stored.
CREATE TABLE extract_chunks (
  extract_id  bigint NOT NULL REFERENCES extracts(id) ON DELETE CASCADE,
  n           integer NOT NULL,
  rows        integer NOT NULL,
  bytes       integer NOT NULL,
  gz          bytea NOT NULL,
  PRIMARY KEY (extract_id, n)
);

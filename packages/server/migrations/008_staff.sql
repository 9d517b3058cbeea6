-- Kilowire schema v8: what every staff console stands on. Roles inside an organisation
-- (agent, admin), the household facts staff search and protect by (address, postcode,
-- vulnerable), and a meter's life beyond "installed" (decommissioned, exchanged).
-- The consoles' own tables come in the migrations after this one.

-- Inside a supplier or network operator: agents read and act on one meter at a time;
-- admins also approve, price, run bills and manage their organisation's staff.
ALTER TABLE users
  ADD COLUMN staff_role text CHECK (staff_role IN ('agent', 'admin')),
  -- Set with an initial password an administrator chose: the user must pick their own first.
  ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
UPDATE users SET staff_role = 'admin' WHERE role IN ('supplier', 'operator');
ALTER TABLE users ADD CONSTRAINT users_staff_role
  CHECK ((role IN ('supplier', 'operator')) = (staff_role IS NOT NULL));

-- What staff search by, and who must not be cut off without a second person's say-so.
ALTER TABLE consumers
  ADD COLUMN address text,
  ADD COLUMN postcode text,
  -- Medical equipment, age, disability: no non-payment disconnection without approval.
  ADD COLUMN vulnerable boolean NOT NULL DEFAULT false,
  ADD COLUMN vulnerable_note text;

-- A meter's life: active -> decommissioned. An exchanged meter names the meter that took
-- its place on the account; its readings stay its own, so the account keeps its history.
ALTER TABLE meters
  ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decommissioned')),
  ADD COLUMN decommissioned_at timestamptz,
  ADD COLUMN replaced_by integer REFERENCES meters(id),
  ADD CONSTRAINT meters_decommissioned CHECK ((status = 'decommissioned') = (decommissioned_at IS NOT NULL));

-- The audit log is read by time, by actor and by action (the administrator's filters).
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at DESC);
CREATE INDEX audit_log_action ON audit_log (action, at DESC);

-- Tamper cases: a tamper alert opens one per meter (open -> investigating -> resolved). The
-- fleet table filters on "open case", so the table is here; notes, actions and the events
-- behind a case come with the tamper-case migration.
CREATE TABLE tamper_cases (
  id            bigserial PRIMARY KEY,
  meter_id      integer NOT NULL REFERENCES meters(id),
  supplier_id   integer NOT NULL REFERENCES organisations(id),
  status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'investigating', 'resolved')),
  opened_at     timestamptz NOT NULL DEFAULT now(),
  assigned_to   bigint REFERENCES users(id),
  resolved_at   timestamptz,
  resolution    text,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
-- At most one case per meter is not resolved: a new tamper event joins it.
CREATE UNIQUE INDEX tamper_cases_one_open ON tamper_cases (meter_id) WHERE status <> 'resolved';
CREATE INDEX tamper_cases_supplier ON tamper_cases (supplier_id, status, opened_at DESC);

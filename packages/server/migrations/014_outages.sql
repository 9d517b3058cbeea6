-- Kilowire schema v14: outages (issue #9 N2). Power-fail (last gasp) and power-restored
-- events, and meters gone silent, grouped by feeder into incidents with an SLA clock.

-- Outage rules that 013 did not carry: how long after the first meters came back the rest
-- count as stragglers (the incident is restored without them and each one becomes a single
-- incident), and after how long a restored incident closes by itself.
ALTER TABLE network_settings
  ADD COLUMN outage_restore_grace_s integer NOT NULL DEFAULT 900 CHECK (outage_restore_grace_s BETWEEN 5 AND 86400),
  ADD COLUMN outage_auto_close_h    integer NOT NULL DEFAULT 24 CHECK (outage_auto_close_h BETWEEN 1 AND 720);

CREATE TABLE outage_incidents (
  id                bigserial PRIMARY KEY,
  operator_id       integer NOT NULL REFERENCES organisations(id),
  area_id           text NOT NULL REFERENCES network_areas(id),
  -- The feeder of a feeder incident, and of a single one when the meter has a feeder.
  feeder_id         text REFERENCES feeders(id),
  -- The household's meter of a single incident (null for a feeder incident).
  meter_id          integer REFERENCES meters(id),
  kind              text NOT NULL CHECK (kind IN ('feeder', 'single')),
  status            text NOT NULL DEFAULT 'detected'
                    CHECK (status IN ('detected', 'acknowledged', 'dispatched', 'restored', 'closed')),
  -- The first last gasp (meter time) or the moment the first meter went silent: the SLA
  -- clock and "time to detect" start here.
  first_failure_at  timestamptz NOT NULL,
  detected_at       timestamptz NOT NULL DEFAULT now(),
  acknowledged_at   timestamptz,
  dispatched_at     timestamptz,
  restored_at       timestamptz,
  closed_at         timestamptz,
  -- Estimated time of restoration, set by the operator; each change is a new version (the
  -- households are told once per version).
  etr               timestamptz,
  etr_version       integer NOT NULL DEFAULT 0,
  sla_target_at     timestamptz NOT NULL,
  sla_state         text NOT NULL DEFAULT 'ok' CHECK (sla_state IN ('ok', 'at_risk', 'breached')),
  at_risk_at        timestamptz,
  breached_at       timestamptz,
  -- Meters in the incident and those still without power (kept with the meter rows).
  meters            integer NOT NULL DEFAULT 0,
  meters_off        integer NOT NULL DEFAULT 0,
  -- A single incident following up a straggler of this feeder incident.
  follows_id        bigint REFERENCES outage_incidents(id),
  CHECK ((kind = 'single') = (meter_id IS NOT NULL)),
  CHECK (kind = 'single' OR feeder_id IS NOT NULL)
);
-- At most one open feeder incident per feeder and one open single incident per meter: the
-- database refuses a second one, whatever number of jobs processes race or crash.
CREATE UNIQUE INDEX outage_incidents_open_feeder ON outage_incidents (feeder_id)
  WHERE kind = 'feeder' AND status IN ('detected', 'acknowledged', 'dispatched');
CREATE UNIQUE INDEX outage_incidents_open_single ON outage_incidents (meter_id)
  WHERE kind = 'single' AND status IN ('detected', 'acknowledged', 'dispatched');
-- The console: an operator's incidents newest first; the sweep: open ones by SLA target.
CREATE INDEX outage_incidents_operator ON outage_incidents (operator_id, id DESC);
CREATE INDEX outage_incidents_open ON outage_incidents (sla_target_at)
  WHERE status IN ('detected', 'acknowledged', 'dispatched');
CREATE INDEX outage_incidents_restored ON outage_incidents (restored_at) WHERE status = 'restored';
CREATE INDEX outage_incidents_month ON outage_incidents (operator_id, first_failure_at);

CREATE TABLE outage_incident_meters (
  incident_id  bigint NOT NULL REFERENCES outage_incidents(id),
  meter_id     integer NOT NULL REFERENCES meters(id),
  source       text NOT NULL CHECK (source IN ('last_gasp', 'silent')),
  failed_at    timestamptz NOT NULL,
  joined_at    timestamptz NOT NULL DEFAULT now(),
  restored_at  timestamptz,
  -- Still off when the rest of the incident came back (followed up as a single incident).
  straggler    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (incident_id, meter_id)
);
CREATE INDEX outage_incident_meters_off ON outage_incident_meters (meter_id) WHERE restored_at IS NULL;

-- The incident's timeline: what the system saw and what the operator did.
CREATE TABLE outage_incident_events (
  id           bigserial PRIMARY KEY,
  incident_id  bigint NOT NULL REFERENCES outage_incidents(id),
  at           timestamptz NOT NULL DEFAULT now(),
  kind         text NOT NULL CHECK (kind IN ('detected', 'meter_joined', 'acknowledged', 'dispatched',
                 'etr_set', 'restored', 'stragglers', 'closed', 'note', 'sla_at_risk', 'sla_breached')),
  actor_id     bigint REFERENCES users(id),
  text         text,
  data         jsonb
);
CREATE INDEX outage_incident_events_incident ON outage_incident_events (incident_id, id);

-- Each meter's power as its events tell it. last_seq/last_idx: the newest power event
-- applied, so a redelivered or older event changes nothing (handlers may run twice).
CREATE TABLE meter_power_state (
  meter_id    integer PRIMARY KEY REFERENCES meters(id) ON DELETE CASCADE,
  off_since   timestamptz,
  source      text CHECK (source IN ('last_gasp', 'silent')),
  last_seq    bigint NOT NULL DEFAULT 0,
  last_idx    integer NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meter_power_state_off ON meter_power_state (off_since) WHERE off_since IS NOT NULL;

-- Kilowire schema v13: the network operator's foundation (issue #9). The operator's settings,
-- alerts addressed to an operator instead of a household, and the daily collection that both
-- the collection dashboard and the network-use invoices read.

-- One row per network operator: when a day's data counts as settled, what makes an outage
-- an incident, the restoration targets, and who is called.
CREATE TABLE network_settings (
  operator_id              integer PRIMARY KEY REFERENCES organisations(id),
  -- A local day D is collected at D+1 this local time (in each area's time zone).
  collection_cutoff        time NOT NULL DEFAULT '06:00',
  -- Below this share of complete meters (per cent) the operator is alerted.
  completeness_alert_pct   numeric(5, 2) NOT NULL DEFAULT 98 CHECK (completeness_alert_pct BETWEEN 0 AND 100),
  -- A feeder incident opens when this many meters of one feeder, or this share of it
  -- (per cent), lose power within the window.
  outage_min_meters        integer NOT NULL DEFAULT 3 CHECK (outage_min_meters >= 1),
  outage_min_share_pct     numeric(5, 2) NOT NULL DEFAULT 10 CHECK (outage_min_share_pct BETWEEN 0 AND 100),
  outage_window_s          integer NOT NULL DEFAULT 120 CHECK (outage_window_s BETWEEN 10 AND 3600),
  -- A meter that has sent nothing for this long counts as silent (a possible outage with no
  -- last gasp).
  silent_after_s           integer NOT NULL DEFAULT 3600 CHECK (silent_after_s >= 300),
  -- Restoration targets per incident category (minutes from the first power failure), and
  -- the share of the target after which an open incident is "at risk".
  sla_feeder_min           integer NOT NULL DEFAULT 720 CHECK (sla_feeder_min > 0),
  sla_single_min           integer NOT NULL DEFAULT 1440 CHECK (sla_single_min > 0),
  sla_at_risk_pct          integer NOT NULL DEFAULT 75 CHECK (sla_at_risk_pct BETWEEN 1 AND 99),
  -- The control room's on-call contacts (besides the operator's staff, who get email).
  oncall_emails            text[] NOT NULL DEFAULT '{}',
  oncall_mobiles           text[] NOT NULL DEFAULT '{}',
  updated_by               bigint REFERENCES users(id),
  updated_at               timestamptz NOT NULL DEFAULT now()
);
INSERT INTO network_settings (operator_id) SELECT id FROM organisations WHERE kind = 'network_operator';

-- Areas keep their own time zone: a day is collected in the area's calendar.
ALTER TABLE network_areas ADD COLUMN tz text NOT NULL DEFAULT 'Europe/London';
CREATE INDEX feeders_area ON feeders (area_id);
CREATE INDEX meters_feeder ON meters (feeder_id) WHERE feeder_id IS NOT NULL;

-- Alerts for a network operator (an incident opened, an SLA at risk, an incomplete
-- collection) concern no household and maybe no single meter: they carry operator_id, and
-- meter_id and supplier_id become optional. An alert is for a household/supplier (meter and
-- supplier set) or for an operator (operator_id set), never both.
ALTER TABLE alerts ALTER COLUMN meter_id DROP NOT NULL;
ALTER TABLE alerts ALTER COLUMN supplier_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN operator_id integer REFERENCES organisations(id);
ALTER TABLE alerts ADD CONSTRAINT alerts_addressee CHECK (
  (operator_id IS NULL AND meter_id IS NOT NULL AND supplier_id IS NOT NULL)
  OR (operator_id IS NOT NULL AND consumer_id IS NULL AND supplier_id IS NULL));
CREATE UNIQUE INDEX alerts_operator_dedupe ON alerts (operator_id, type, dedupe_key) WHERE operator_id IS NOT NULL;
CREATE INDEX alerts_operator ON alerts (operator_id, id DESC) WHERE operator_id IS NOT NULL;

ALTER TABLE alerts DROP CONSTRAINT alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift', 'supply_restored',
  'outage', 'incident_opened', 'sla_at_risk', 'sla_breached', 'collection_incomplete'));
ALTER TABLE alert_preferences DROP CONSTRAINT alert_preferences_type_check;
ALTER TABLE alert_preferences ADD CONSTRAINT alert_preferences_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift', 'supply_restored',
  'outage'));

-- The daily collection (N1). One run per (area, local day, version): version 1 at the
-- cut-off, a new version when late data changed the day afterwards. Earlier versions are
-- kept unchanged (the database refuses to change a finished run's rows).
CREATE TABLE collection_runs (
  id               bigserial PRIMARY KEY,
  area_id          text NOT NULL REFERENCES network_areas(id),
  day              date NOT NULL,
  version          integer NOT NULL CHECK (version >= 1),
  status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
  -- Why this version exists: the cut-off, late data, or a person asked.
  reason           text NOT NULL CHECK (reason IN ('cutoff', 'late_data', 'manual')),
  started_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  meters           integer NOT NULL DEFAULT 0,
  complete_meters  integer NOT NULL DEFAULT 0,
  wh               bigint NOT NULL DEFAULT 0,
  actual           bigint NOT NULL DEFAULT 0,
  estimated        bigint NOT NULL DEFAULT 0,
  expected         bigint NOT NULL DEFAULT 0,
  UNIQUE (area_id, day, version)
);
CREATE INDEX collection_runs_day ON collection_runs (area_id, day DESC, version DESC);

-- One row per meter and run: the meter's local day. slot_wh holds 48 half-hours of local
-- clock time (index 0 = 00:00-00:30); on the autumn DST day the repeated hour adds into the
-- same slots, on the spring day the missing hour's slots are 0. Network tariffs price time
-- bands from these slots.
CREATE TABLE collection_meter_days (
  run_id       bigint NOT NULL REFERENCES collection_runs(id),
  meter_id     integer NOT NULL REFERENCES meters(id),
  supplier_id  integer NOT NULL REFERENCES organisations(id),
  feeder_id    text REFERENCES feeders(id),
  wh           bigint NOT NULL,
  -- Intervals received from the meter, estimated by VEE, and expected for the local day
  -- (46, 48 or 50 half-hours; twice that for 15-minute meters).
  actual       integer NOT NULL,
  estimated    integer NOT NULL,
  expected     integer NOT NULL,
  slot_wh      integer[] NOT NULL CHECK (cardinality(slot_wh) = 48),
  -- The newest interval held for this meter when the run was taken (for "missing since").
  last_data_at timestamptz,
  PRIMARY KEY (run_id, meter_id)
);
CREATE INDEX collection_meter_days_supplier ON collection_meter_days (run_id, supplier_id);

CREATE FUNCTION kw_collection_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
  SELECT status INTO st FROM collection_runs WHERE id = coalesce(OLD.run_id, NEW.run_id);
  IF st = 'done' THEN
    RAISE EXCEPTION 'a finished collection run is kept as it was: collect a new version'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER collection_meter_days_frozen BEFORE UPDATE OR DELETE ON collection_meter_days
  FOR EACH ROW EXECUTE FUNCTION kw_collection_frozen();

-- Every network operator has its settings row from the start (defaults above).
CREATE FUNCTION kw_network_settings_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind = 'network_operator' THEN
    INSERT INTO network_settings (operator_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER organisations_network_settings AFTER INSERT ON organisations
  FOR EACH ROW EXECUTE FUNCTION kw_network_settings_row();

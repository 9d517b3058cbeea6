-- Kilowire schema v17: firmware (issue #10). Signed images kept by the head-end, campaigns
-- that take an image to a selection of meters in stages, and each meter's progress through
-- offer -> download -> verification -> activation -> confirmation (or revert).

-- An uploaded image: the bytes live in the firmware folder under `storage_key` (never in the
-- database); the signed manifest is kept exactly as signed, so it is sent to meters as is.
-- Rows are immutable once written (a new build is a new image).
CREATE TABLE firmware_images (
  id              bigserial PRIMARY KEY,
  supplier_id     integer NOT NULL REFERENCES organisations(id),
  version         text NOT NULL CHECK (length(version) BETWEEN 1 AND 32),
  sequence        integer NOT NULL CHECK (sequence >= 1),
  hardware_class  text NOT NULL CHECK (length(hardware_class) BETWEEN 1 AND 32),
  size            integer NOT NULL CHECK (size > 0),
  sha256          text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  block_size      integer NOT NULL CHECK (block_size BETWEEN 256 AND 65536),
  block_hashes    text[] NOT NULL,
  -- The manifest text exactly as signed, and the firmware key's signature of it.
  manifest        text NOT NULL,
  signature       text NOT NULL,
  storage_key     text NOT NULL,
  notes           text CHECK (length(notes) <= 500),
  uploaded_by     bigint REFERENCES users(id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (supplier_id, sha256),
  UNIQUE (supplier_id, hardware_class, sequence),
  CHECK (cardinality(block_hashes) = ceil(size::numeric / block_size))
);

CREATE FUNCTION kw_firmware_images_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'firmware images are immutable: upload a new image instead';
END $$;
CREATE TRIGGER firmware_images_immutable BEFORE UPDATE OR DELETE ON firmware_images
  FOR EACH ROW EXECUTE FUNCTION kw_firmware_images_immutable();

-- A campaign: one image to a target (a filter over the fleet, or a list of serials), a canary
-- stage then waves. `status`:
--   draft -> awaiting_approval -> running <-> paused -> completed
--                 \-> rejected       \-> halted (failures passed the threshold) | cancelled
CREATE TABLE firmware_campaigns (
  id                   bigserial PRIMARY KEY,
  supplier_id          integer NOT NULL REFERENCES organisations(id),
  image_id             bigint NOT NULL REFERENCES firmware_images(id),
  name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
  -- {"filter": {...}} or {"serials": [...]} as asked for; the meters it resolved to are the rows below.
  target               jsonb NOT NULL,
  status               text NOT NULL DEFAULT 'draft' CHECK (status IN (
                         'draft', 'awaiting_approval', 'rejected', 'running', 'paused', 'halted',
                         'cancelled', 'completed')),
  -- Stage 0 is the canary: canary_count meters, or canary_pct of the target when set.
  canary_count         integer CHECK (canary_count >= 1),
  canary_pct           numeric(5, 2) CHECK (canary_pct > 0 AND canary_pct <= 100),
  -- Later stages take wave_size meters each.
  wave_size            integer NOT NULL CHECK (wave_size >= 1),
  -- A stage whose failures exceed this share (per cent of its meters) halts the campaign.
  failure_threshold_pct numeric(5, 2) NOT NULL CHECK (failure_threshold_pct >= 0 AND failure_threshold_pct <= 100),
  -- Activation only inside this local-time window of each meter's zone.
  window_from          text NOT NULL CHECK (window_from ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  window_to            text NOT NULL CHECK (window_to ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  -- At most this many meters of one feeder activate within feeder_spacing_s of each other.
  feeder_max           integer NOT NULL DEFAULT 5 CHECK (feeder_max >= 1),
  feeder_spacing_s     integer NOT NULL DEFAULT 300 CHECK (feeder_spacing_s BETWEEN 1 AND 86400),
  -- The new image must reconnect and report within this long, or the meter reverts.
  confirm_s            integer NOT NULL DEFAULT 600 CHECK (confirm_s BETWEEN 30 AND 86400),
  stage                integer NOT NULL DEFAULT 0 CHECK (stage >= 0),
  stages               integer NOT NULL DEFAULT 1 CHECK (stages >= 1),
  request_id           bigint REFERENCES action_requests(id),
  created_by           bigint NOT NULL REFERENCES users(id),
  created_at           timestamptz NOT NULL DEFAULT now(),
  started_at           timestamptz,
  finished_at          timestamptz,
  halted_reason        text CHECK (length(halted_reason) <= 500),
  CHECK (canary_count IS NOT NULL OR canary_pct IS NOT NULL),
  CHECK (window_from <> window_to)
);
CREATE INDEX firmware_campaigns_supplier ON firmware_campaigns (supplier_id, id DESC);
CREATE INDEX firmware_campaigns_live ON firmware_campaigns (id) WHERE status IN ('running', 'paused');

-- One meter of a campaign. `state`:
--   pending -> offered -> downloading -> verified -> activating -> confirmed
--   failures: refused (the meter declined the offer), verify_failed, reverted (boot failed),
--   not_returned (no confirmation in time), failed (anything else, with reason);
--   skipped (offline, disconnected, in an outage: retried later while the campaign runs),
--   cancelled (halted or cancelled campaign).
CREATE TABLE firmware_campaign_meters (
  campaign_id          bigint NOT NULL REFERENCES firmware_campaigns(id),
  meter_id             integer NOT NULL REFERENCES meters(id),
  stage                integer NOT NULL CHECK (stage >= 0),
  state                text NOT NULL DEFAULT 'pending' CHECK (state IN (
                         'pending', 'skipped', 'offered', 'downloading', 'verified', 'activating',
                         'confirmed', 'refused', 'verify_failed', 'reverted', 'not_returned',
                         'failed', 'cancelled')),
  -- Blocks the meter holds (from its requests and status), of the image's total.
  blocks_done          integer NOT NULL DEFAULT 0 CHECK (blocks_done >= 0),
  blocks_total         integer NOT NULL CHECK (blocks_total >= 1),
  reason               text CHECK (length(reason) <= 256),
  skip_reason          text CHECK (skip_reason IN ('offline', 'disconnected', 'outage', 'feeder_limit', 'window')),
  offer_command_id     uuid REFERENCES commands(id),
  activate_command_id  uuid REFERENCES commands(id),
  -- When the meter was told to boot the image (the operator sees these windows).
  activate_at          timestamptz,
  offered_at           timestamptz,
  verified_at          timestamptz,
  finished_at          timestamptz,
  attempts             integer NOT NULL DEFAULT 0,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (campaign_id, meter_id)
);
CREATE INDEX firmware_campaign_meters_meter ON firmware_campaign_meters (meter_id);
CREATE INDEX firmware_campaign_meters_stage ON firmware_campaign_meters (campaign_id, stage, state);
-- A meter is in at most one unfinished transfer at a time, whatever campaigns overlap.
CREATE UNIQUE INDEX firmware_campaign_meters_one_live ON firmware_campaign_meters (meter_id)
  WHERE state IN ('offered', 'downloading', 'verified', 'activating');
CREATE INDEX firmware_campaign_meters_activation ON firmware_campaign_meters (activate_at)
  WHERE state = 'activating';

-- What the gateway may serve: the image a meter was offered and is still downloading or
-- holds, in a campaign that has not been halted or cancelled.
CREATE VIEW firmware_offers AS
  SELECT cm.meter_id, cm.campaign_id, i.id AS image_id, i.sha256, i.size, i.block_size, i.storage_key
    FROM firmware_campaign_meters cm
    JOIN firmware_campaigns c ON c.id = cm.campaign_id
    JOIN firmware_images i ON i.id = c.image_id
   WHERE cm.state IN ('offered', 'downloading', 'verified')
     AND c.status IN ('running', 'paused');

-- The campaign's timeline: started, stage advanced, paused, halted (why), each by whom.
CREATE TABLE firmware_campaign_events (
  id           bigserial PRIMARY KEY,
  campaign_id  bigint NOT NULL REFERENCES firmware_campaigns(id),
  at           timestamptz NOT NULL DEFAULT now(),
  kind         text NOT NULL CHECK (kind ~ '^[a-z_]+$'),
  actor_id     bigint REFERENCES users(id),
  detail       text CHECK (length(detail) <= 1000)
);
CREATE INDEX firmware_campaign_events_campaign ON firmware_campaign_events (campaign_id, id);

-- The running image's security sequence, as the meter reports it (a campaign never offers
-- a meter an image at or below it).
ALTER TABLE meters ADD COLUMN firmware_sequence integer;

-- Starting a campaign waits for a second supplier admin, through the action requests of v10.
ALTER TABLE action_requests DROP CONSTRAINT action_requests_needs_check;
ALTER TABLE action_requests ADD CONSTRAINT action_requests_needs_check CHECK (cardinality(needs) >= 1
  AND needs <@ ARRAY['vulnerable', 'protected_hours', 'bulk', 'firmware']::text[]);

-- The supplier hears when a campaign halts itself; the operator hears of activation windows
-- (meters rebooting on purpose are not an outage).
ALTER TABLE alerts DROP CONSTRAINT alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift', 'supply_restored',
  'outage', 'incident_opened', 'sla_at_risk', 'sla_breached', 'collection_incomplete',
  'campaign_halted', 'firmware_window'));

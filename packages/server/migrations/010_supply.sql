-- Kilowire schema v10: remote supply control and its safeguards. A supplier's protection
-- settings, the generic action requests that wait for a second person's approval (supply
-- today, firmware campaigns later), the link from commands to the request that holds them,
-- and the household's "supply restored" notice.

-- One row per supplier; a supplier without a row has the defaults (supply/settings.ts).
CREATE TABLE supplier_settings (
  supplier_id              integer PRIMARY KEY REFERENCES organisations(id),
  -- Protected hours are the supplier's local hours, whatever zone each meter is in.
  tz                       text NOT NULL,
  nights_enabled           boolean NOT NULL,
  night_from               text NOT NULL CHECK (night_from ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  night_to                 text NOT NULL CHECK (night_to ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  weekends                 boolean NOT NULL,
  holidays                 date[] NOT NULL DEFAULT '{}',
  bulk_threshold           integer NOT NULL CHECK (bulk_threshold BETWEEN 1 AND 100000),
  hourly_disconnect_quota  integer NOT NULL CHECK (hourly_disconnect_quota BETWEEN 1 AND 100000),
  approval_ttl_hours       integer NOT NULL CHECK (approval_ttl_hours BETWEEN 1 AND 168),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  updated_by               bigint REFERENCES users(id),
  CHECK (night_from <> night_to)
);

-- An action that must not happen before a second person of the same supplier approves it.
-- Its commands (commands.request_id) stay 'awaiting_approval' until then: nothing reaches a
-- meter. `needs` says why it waits; the requester can never be the one who approves.
CREATE TABLE action_requests (
  id               bigserial PRIMARY KEY,
  supplier_id      integer NOT NULL REFERENCES organisations(id),
  kind             text NOT NULL CHECK (kind ~ '^[a-z_]+\.[a-z_]+$'),
  requested_by     bigint NOT NULL REFERENCES users(id),
  reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 64),
  reason_text      text CHECK (length(reason_text) <= 500),
  needs            text[] NOT NULL CHECK (cardinality(needs) >= 1
                     AND needs <@ ARRAY['vulnerable', 'protected_hours', 'bulk']::text[]),
  status           text NOT NULL DEFAULT 'awaiting_approval'
                     CHECK (status IN ('awaiting_approval', 'approved', 'rejected', 'expired', 'cancelled')),
  decided_by       bigint REFERENCES users(id),
  decided_at       timestamptz,
  decision_reason  text CHECK (length(decision_reason) <= 500),
  expires_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  -- A decision names who took it and why; an approval is never the requester's own.
  CHECK ((status IN ('approved', 'rejected', 'cancelled')) = (decided_by IS NOT NULL AND decided_at IS NOT NULL)),
  CHECK (status NOT IN ('approved', 'rejected') OR decision_reason IS NOT NULL),
  CHECK (status <> 'approved' OR decided_by <> requested_by)
);
CREATE INDEX action_requests_supplier ON action_requests (supplier_id, created_at DESC);
CREATE INDEX action_requests_expiring ON action_requests (expires_at) WHERE status = 'awaiting_approval';

ALTER TABLE commands ADD COLUMN request_id bigint REFERENCES action_requests(id);
CREATE INDEX commands_request ON commands (request_id) WHERE request_id IS NOT NULL;
-- The hourly disconnection quota counts a user's recent supply.off requests.
CREATE INDEX commands_supply_off_by ON commands (created_by, created_at) WHERE type = 'supply.off';

-- The household is told when its supply is back on.
ALTER TABLE alert_preferences DROP CONSTRAINT alert_preferences_type_check;
ALTER TABLE alert_preferences ADD CONSTRAINT alert_preferences_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift', 'supply_restored'));
ALTER TABLE alerts DROP CONSTRAINT alerts_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_type_check CHECK (type IN (
  'daily_limit', 'hourly_limit', 'tamper', 'disconnected', 'credit_low', 'tariff_changed',
  'bill_ready', 'tariff_request', 'payment', 'supply_armed', 'credit_drift', 'supply_restored'));

-- Kilowire schema v3: durable domain events, one command lifecycle, review flags on VEE
-- findings, and login throttling shared by every API process.

-- Domain events: written in the same transaction as the change that causes them, handed to
-- the subscribers' pg-boss queues by the dispatcher (jobs service). Nothing that must
-- happen after a COMMIT lives only in one process's memory.
CREATE TABLE domain_events (
  id             bigserial PRIMARY KEY,
  -- 'readings.committed', 'meter.event', 'command.replied', 'limits.changed', ...
  type           text NOT NULL,
  -- The meter the event is about, when it is about one (NULL for a batch of meters).
  meter_id       integer,
  payload        jsonb NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- Set in the transaction that queued the event for every subscriber.
  dispatched_at  timestamptz
);
CREATE INDEX domain_events_pending ON domain_events (id) WHERE dispatched_at IS NULL;
CREATE INDEX domain_events_meter ON domain_events (meter_id, id) WHERE meter_id IS NOT NULL;

-- Commands: requested -> (awaiting_approval) -> queued -> sent -> ok | rejected | failed |
-- expired | cancelled. The counter and the signed envelope are allocated when a command is
-- queued (not when requested), so a command that waited for approval still reaches the
-- meter with a counter above every command queued before it.
ALTER TABLE commands DROP CONSTRAINT commands_status_check;
UPDATE commands SET status = 'queued' WHERE status = 'pending';
ALTER TABLE commands
  ALTER COLUMN status SET DEFAULT 'requested',
  ALTER COLUMN counter DROP NOT NULL,
  ALTER COLUMN body DROP NOT NULL,
  ALTER COLUMN envelope DROP NOT NULL,
  ADD CONSTRAINT commands_status_check CHECK (status IN
    ('requested', 'awaiting_approval', 'queued', 'sent', 'ok', 'rejected', 'failed', 'expired', 'cancelled')),
  -- The meter refuses the command after this instant (it is in the signed body).
  ADD COLUMN expires_at timestamptz,
  -- Not resent before this instant (backoff), and only once the meter was seen since sent_at.
  ADD COLUMN next_attempt_at timestamptz,
  ADD COLUMN queued_at timestamptz,
  ADD COLUMN approved_by bigint REFERENCES users(id),
  -- Why it was asked for (shown in the audit log and to the household where it applies).
  ADD COLUMN reason text,
  -- What was asked for (the `cmd` of the signed body), kept from the request on, before signing.
  ADD COLUMN cmd jsonb,
  ADD CONSTRAINT commands_queued_signed CHECK (status IN ('requested', 'awaiting_approval', 'cancelled', 'expired')
    OR (counter IS NOT NULL AND envelope IS NOT NULL AND expires_at IS NOT NULL));
UPDATE commands SET expires_at = created_at + interval '1 day', queued_at = created_at WHERE counter IS NOT NULL;
UPDATE commands SET cmd = body -> 'cmd';
ALTER TABLE commands ALTER COLUMN cmd SET NOT NULL;
DROP INDEX commands_open;
CREATE INDEX commands_open ON commands (meter_id, counter) WHERE status IN ('queued', 'sent');
CREATE INDEX commands_expiring ON commands (expires_at) WHERE status IN ('requested', 'awaiting_approval', 'queued', 'sent');
CREATE INDEX commands_meter ON commands (meter_id, created_at DESC);

-- Every transition of every command, with its time and who caused it (NULL = the system).
CREATE TABLE command_transitions (
  command_id   uuid NOT NULL REFERENCES commands(id),
  at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  from_status  text,
  to_status    text NOT NULL,
  actor_id     bigint REFERENCES users(id),
  detail       text
);
CREATE INDEX command_transitions_command ON command_transitions (command_id, at);
INSERT INTO command_transitions (command_id, at, from_status, to_status, actor_id)
  SELECT id, created_at, NULL, status, created_by FROM commands;

-- VEE findings that a person must look at (a register that went down: reset or meter
-- exchange; a sequence number reused with other data).
ALTER TABLE vee_issues ADD COLUMN needs_review boolean NOT NULL DEFAULT false;
CREATE INDEX vee_issues_review ON vee_issues (meter_id, ts) WHERE needs_review;

-- Failed logins per (identifier, source address) and per source address, shared by every
-- API process: the guesser is slowed down, the account's owner elsewhere is not.
CREATE TABLE login_throttle (
  key           text PRIMARY KEY,
  failures      integer NOT NULL DEFAULT 0,
  window_start  timestamptz NOT NULL DEFAULT now(),
  blocked_until timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_updated ON login_throttle (updated_at);

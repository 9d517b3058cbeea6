-- Kilowire schema v12: the administrator's platform. Staff invitations (a one-time link
-- instead of a password someone else knows) and the lookups the audit and health pages need.

-- An invitation to choose one's own password. The token is in the link only: what is stored
-- is its SHA-256, so a copy of this table opens no account. Single use (used_at), expiring.
CREATE TABLE staff_invites (
  id          bigserial PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users(id),
  token_hash  text NOT NULL UNIQUE,
  created_by  bigint REFERENCES users(id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  -- Replaced by a newer invite or a reset: no longer accepted.
  revoked_at  timestamptz
);
CREATE INDEX staff_invites_user ON staff_invites (user_id) WHERE used_at IS NULL AND revoked_at IS NULL;

-- The audit page filters on a target (a serial, a user id) newest first.
CREATE INDEX audit_log_target ON audit_log (target, at DESC);

-- No index for "meters seen recently" on purpose: last_seen_at changes with every status
-- message, and an index on it would turn those cheap HOT updates into index writes. The
-- health page counts over the active meters instead (one scan, every 30 s, admins only).

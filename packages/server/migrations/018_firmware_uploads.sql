-- Kilowire schema v18: pending firmware uploads (issue #10). An upload is two requests: the
-- signed manifest first (checked before any byte moves), then the image streamed against it.
-- API processes share nothing but PostgreSQL, so the first step is a row, not memory: the
-- PUT may land on another process than the POST.
CREATE TABLE firmware_uploads (
  id           uuid PRIMARY KEY,
  supplier_id  integer NOT NULL REFERENCES organisations(id),
  -- The manifest text exactly as signed, its signature, and the fields the PUT checks against.
  manifest     text NOT NULL,
  signature    text NOT NULL,
  sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  notes        text CHECK (length(notes) <= 500),
  created_by   bigint NOT NULL REFERENCES users(id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- An upload nobody finished is refused after this (and swept by the next upload).
  expires_at   timestamptz NOT NULL
);
CREATE INDEX firmware_uploads_expiry ON firmware_uploads (expires_at);

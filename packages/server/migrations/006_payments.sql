-- Kilowire schema v6: payments and top-ups. A household pays through a provider (Stripe, or
-- the built-in sandbox); the provider's signed webhooks confirm; a confirmed payment is a
-- ledger transaction and, for a prepayment meter, a signed credit.add carrying the top-up id.
--
-- Money in integer minor units (pence).

-- One payment a household started. Prepayment accounts top up their meter ('topup'); credit
-- accounts pay toward their balance ('payment', no meter command).
CREATE TABLE topups (
  -- Also the meter's top-up id (credit.add topupId) and the ledger ref 'topup:<id>'.
  id               uuid PRIMARY KEY,
  account_id       bigint NOT NULL REFERENCES accounts(id),
  consumer_id      bigint NOT NULL REFERENCES consumers(id),
  meter_id         integer NOT NULL REFERENCES meters(id),
  kind             text NOT NULL CHECK (kind IN ('topup', 'payment')),
  amount_minor     integer NOT NULL CHECK (amount_minor > 0),
  currency         char(3) NOT NULL,
  --   pending   waiting for the household to pay       declined  the card was refused
  --   expired   abandoned at the payment page          paid      money received
  --   applied   the meter added the credit             refunded  money given back
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'declined', 'expired', 'paid', 'applied', 'refunded')),
  -- The client's Idempotency-Key (per household) and a hash of what it asked for with it.
  idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  request_hash     text NOT NULL,
  provider         text NOT NULL CHECK (provider IN ('sandbox', 'stripe')),
  -- The provider's checkout (Stripe Checkout Session id, or the sandbox's) and its page.
  checkout_id      text UNIQUE,
  checkout_url     text,
  -- The provider's payment (PaymentIntent id) once known, for refunds.
  payment_ref      text,
  -- Why it was declined or failed, in the provider's words (shown to the household).
  failure_reason   text,
  -- Refunded so far (the provider's cumulative figure), and how much of it the ledger holds.
  refunded_minor   integer NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
  -- The credit.add now carrying this top-up to the meter, and how many were requested (a
  -- command that expired before the meter was reachable is requested again).
  command_id       uuid REFERENCES commands(id),
  credit_requests  integer NOT NULL DEFAULT 0,
  created_by       bigint REFERENCES users(id),
  created_at       timestamptz NOT NULL DEFAULT now(),
  paid_at          timestamptz,
  applied_at       timestamptz,
  failed_at        timestamptz,
  refunded_at      timestamptz,
  UNIQUE (consumer_id, idempotency_key)
);
CREATE INDEX topups_account_day ON topups(account_id, created_at DESC);
CREATE INDEX topups_consumer ON topups(consumer_id, created_at DESC);
CREATE INDEX topups_meter ON topups(meter_id, created_at DESC);
CREATE INDEX topups_command ON topups(command_id) WHERE command_id IS NOT NULL;

-- Every change of a top-up's status, with time and what caused it.
CREATE TABLE topup_transitions (
  topup_id     uuid NOT NULL REFERENCES topups(id),
  at           timestamptz NOT NULL DEFAULT now(),
  from_status  text,
  to_status    text NOT NULL,
  detail       text
);
CREATE INDEX topup_transitions_topup ON topup_transitions(topup_id, at);

-- Provider events as received: delivered at least once and in any order, so the event id is
-- the key and a repeat changes nothing.
CREATE TABLE payment_events (
  provider     text NOT NULL,
  event_id     text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
  type         text NOT NULL,
  topup_id     uuid REFERENCES topups(id),
  -- The provider's event time (epoch of `created`).
  created_at   timestamptz,
  received_at  timestamptz NOT NULL DEFAULT now(),
  payload      jsonb NOT NULL,
  PRIMARY KEY (provider, event_id)
);
CREATE INDEX payment_events_topup ON payment_events(topup_id) WHERE topup_id IS NOT NULL;

-- The sandbox provider's webhook signing secret when none is configured: generated once, in
-- the database so that every api and jobs process signs and verifies with the same one.
CREATE TABLE payment_sandbox_secret (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  secret     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- What was tried on the sandbox's card page. A checkout is paid at most once; a declined card
-- may be followed by another try, as on Stripe's page.
CREATE TABLE payment_sandbox_attempts (
  id           bigserial PRIMARY KEY,
  checkout_id  text NOT NULL,
  outcome      text NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
  card_last4   text NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
  -- The sandbox's PaymentIntent id (pi_sandbox_...), for refunds.
  payment_ref  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payment_sandbox_attempts_paid ON payment_sandbox_attempts(checkout_id) WHERE outcome = 'succeeded';

-- Payments through the outside provider: the top-ups asked for (payment intents), kept so that
-- the webhook settling one is checked against what was asked; the signatures of the webhook
-- deliveries received within the tolerance window, so that the very same signed delivery is not
-- accepted twice; and the payouts, from the hold of their money to the provider's last word.

CREATE TABLE payment_intents (
    id             text PRIMARY KEY,
    wallet_id      uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    currency       char(3)     NOT NULL,
    client_secret  text        NOT NULL,
    status         text        NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX payment_intents_wallet_idx ON payment_intents (wallet_id);

-- One row per accepted delivery, forgotten once its timestamp is out of the window (a delivery
-- that old is refused as stale anyway).
CREATE TABLE payment_webhook_deliveries (
    signature    text PRIMARY KEY,
    received_at  timestamptz NOT NULL
);
CREATE INDEX payment_webhook_deliveries_received_idx ON payment_webhook_deliveries (received_at);

-- A payout is created under its caller's idempotency key (scope, key); its id is the provider's
-- Idempotency-Key, so a retry after a lost answer never pays twice. `pending` payouts have their
-- money held and wait for the provider to acknowledge them.
CREATE TABLE payouts (
    id           uuid PRIMARY KEY,
    scope        text        NOT NULL,
    key          text        NOT NULL,
    wallet_id    uuid        NOT NULL,
    amount       bigint      NOT NULL CHECK (amount > 0),
    currency     char(3)     NOT NULL,
    destination  text        NOT NULL,
    provider_id  text UNIQUE,
    status       text        NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed')),
    failure      text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (scope, key)
);
CREATE INDEX payouts_wallet_idx ON payouts (wallet_id);
-- The payouts left pending, which the reconciler resumes.
CREATE INDEX payouts_pending_idx ON payouts (created_at) WHERE status = 'pending';

-- Fintech ledger: wallets (the current state of each aggregate), their journal (one row per
-- change, keyed by wallet and sequence), double-entry transactions, and idempotency keys stored in
-- the same transaction as the movement they protect.

CREATE TABLE wallets (
    id          uuid PRIMARY KEY,
    owner       text        NOT NULL,
    currency    char(3)     NOT NULL,
    balance     bigint      NOT NULL CHECK (balance >= 0),
    status      text        NOT NULL CHECK (status IN ('active', 'frozen', 'closed')),
    version     bigint      NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX wallets_owner_idx ON wallets (owner);

-- The journal: a wallet's n-th change is (wallet_id, n) and wallets.version is its last n; two
-- writers can never both append the same sequence number. Money movements have a non-zero amount;
-- lifecycle changes (opened, frozen, unfrozen, closed) have amount 0.
CREATE TABLE wallet_journal (
    wallet_id       uuid        NOT NULL REFERENCES wallets (id),
    seq             bigint      NOT NULL CHECK (seq > 0),
    transaction_id  uuid,
    kind            text        NOT NULL CHECK (kind IN ('opened', 'deposit', 'withdrawal', 'transfer_out',
                                                         'transfer_in', 'frozen', 'unfrozen', 'closed')),
    amount          bigint      NOT NULL,
    balance_after   bigint      NOT NULL CHECK (balance_after >= 0),
    counterparty    uuid,
    reference       text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (wallet_id, seq)
);
CREATE INDEX wallet_journal_transaction_idx ON wallet_journal (transaction_id);

-- Double entry: each row debits one account and credits another by the same amount. Accounts
-- are wallet ids or `external:<currency>` for money entering or leaving the ledger.
CREATE TABLE ledger_transactions (
    id              uuid PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer')),
    debit_account   text        NOT NULL,
    credit_account  text        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    currency        char(3)     NOT NULL,
    reference       text,
    request_id      text,
    created_at      timestamptz NOT NULL,
    CHECK (debit_account <> credit_account)
);

-- Stripe-style idempotency: the first response to (scope, key) is kept and replayed.
CREATE TABLE idempotency_keys (
    scope         text        NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    request_body  jsonb       NOT NULL,
    status        smallint    NOT NULL,
    response      jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

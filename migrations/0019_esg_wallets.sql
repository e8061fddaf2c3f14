-- ESG: the lifecycle changes (opened, frozen, unfrozen, closed) of each subject's wallets, from
-- the fintech domain's events. A wallet's journal numbers its changes, so (wallet, seq) names
-- one for good: a redelivered event changes nothing. The score's governance component reads
-- each wallet's latest change. A subject is kept as their blind index only: erasing them
-- deletes these rows.

CREATE TABLE esg_wallet_changes (
    wallet          uuid        NOT NULL,
    seq             bigint      NOT NULL,
    -- The source event's id.
    id              uuid        NOT NULL,
    subject_index   bytea       NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('opened', 'frozen', 'unfrozen', 'closed')),
    at              timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (wallet, seq)
);
CREATE INDEX esg_wallet_changes_subject_idx ON esg_wallet_changes (subject_index);

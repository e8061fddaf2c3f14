-- Two-phase holds: money of a wallet set aside for a payment not yet final (a payout waiting for
-- the provider, a ride under way). A pending hold moves no money: it lowers its wallet's available
-- balance (balance - held) until it is posted (the posted amount moves, the rest is released),
-- voided or expired. `wallets.held` is the sum of the wallet's pending holds, written in the same
-- transaction as the journal entry (hold_placed, hold_posted, hold_voided, hold_expired) that
-- changed it.

ALTER TABLE wallets ADD COLUMN held bigint NOT NULL DEFAULT 0 CHECK (held >= 0);

-- No wallet holds more than its balance, checked when the transaction commits: a batch writes the
-- balances and the held totals by two statements, so a post (balance and held both lower) passes
-- through a moment where only one of them changed. The trigger fires only for a row that looked
-- wrong when written, and reads it again at commit.
CREATE FUNCTION wallets_held_within_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM wallets WHERE id = NEW.id AND held > balance) THEN
        RAISE check_violation USING MESSAGE = 'a wallet holds more than its balance';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER wallets_held_within_balance
    AFTER INSERT OR UPDATE ON wallets DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.held > NEW.balance) EXECUTE FUNCTION wallets_held_within_balance();

ALTER TABLE wallet_journal DROP CONSTRAINT wallet_journal_kind_check;
ALTER TABLE wallet_journal ADD CONSTRAINT wallet_journal_kind_check
    CHECK (kind IN ('opened', 'deposit', 'withdrawal', 'transfer_out', 'transfer_in', 'frozen', 'unfrozen', 'closed',
                    'hold_placed', 'hold_posted', 'hold_voided', 'hold_expired'));

-- One row per hold; its id is the caller's (placing it again changes nothing). `posted` is what
-- moved when it was posted.
CREATE TABLE holds (
    id          uuid PRIMARY KEY,
    wallet_id   uuid        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount > 0),
    currency    char(3)     NOT NULL,
    kind        text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
    posted      bigint      NOT NULL DEFAULT 0 CHECK (posted >= 0 AND posted <= amount),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX holds_wallet_idx ON holds (wallet_id);
-- The pending holds by expiry, which the sweeper releases.
CREATE INDEX holds_pending_expiry_idx ON holds (expires_at, id) WHERE status = 'pending';

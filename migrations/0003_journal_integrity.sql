-- Every journal entry belongs to a wallet, checked once per statement rather than once per row.
-- The ledger writer inserts a whole batch's entries in one statement; the foreign key ran a
-- look-up and a key-share lock for each of them (about a fifth of the batch's time in
-- PostgreSQL), for wallets the same transaction has just locked or inserted. The check below
-- reads the statement's new entries once and refuses the statement if any of them names a wallet
-- that does not exist. What the foreign key also guarded is kept: a wallet is never deleted (it is
-- closed) and its id never changes.
ALTER TABLE wallet_journal DROP CONSTRAINT wallet_journal_wallet_id_fkey;

CREATE FUNCTION wallet_journal_wallets_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_entries n WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = n.wallet_id)) THEN
        RAISE foreign_key_violation USING MESSAGE = 'journal entry for a wallet that does not exist';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER wallet_journal_wallets_exist
    AFTER INSERT ON wallet_journal REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION wallet_journal_wallets_exist();

CREATE FUNCTION wallets_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE restrict_violation USING MESSAGE = 'wallets are never deleted and keep their id';
END $$;

CREATE TRIGGER wallets_are_kept
    BEFORE DELETE OR UPDATE OF id ON wallets
    FOR EACH ROW EXECUTE FUNCTION wallets_are_kept();

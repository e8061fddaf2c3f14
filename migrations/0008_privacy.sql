-- Personal data. Each data subject has a key (random, 256 bits) that seals their personal fields;
-- it is stored wrapped under the master key named by master_key_id, and found by the subject's
-- blind index (a keyed hash), never by the subject's plaintext id. Erasing a subject deletes the
-- row: every field sealed under the key, wherever a copy went, can no longer be opened.
CREATE TABLE privacy_subject_keys (
    key_id         text        PRIMARY KEY,
    subject_index  bytea       NOT NULL UNIQUE,
    master_key_id  text        NOT NULL,
    wrapped        bytea       NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX privacy_subject_keys_master_idx ON privacy_subject_keys (master_key_id);

-- The signed completion record of every erasure, kept: it names the subject by blind index only.
CREATE TABLE privacy_erasures (
    id             uuid        PRIMARY KEY,
    subject_index  bytea       NOT NULL,
    record         jsonb       NOT NULL,
    completed_at   timestamptz NOT NULL
);
CREATE INDEX privacy_erasures_subject_idx ON privacy_erasures (subject_index);

-- Wallet owners move to the module: looked up (and authorised) by the blind index of the owner,
-- kept sealed under the owner's key. The plaintext column stays for rows written before this
-- migration until `migrate` seals them (a step that needs the master key), and is NULL after.
-- References in the journal and the transactions are sealed in place (text form `pd1.…`), under
-- the key of the wallet's owner; idempotency keys are scoped by the blind index of the subject,
-- and their request and receipt are sealed under the subject's key.
ALTER TABLE wallets ADD COLUMN owner_index bytea, ADD COLUMN owner_sealed text;
ALTER TABLE wallets ALTER COLUMN owner DROP NOT NULL;
DROP INDEX wallets_owner_idx;
CREATE INDEX wallets_owner_index_idx ON wallets (owner_index);

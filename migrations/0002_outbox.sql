-- Domain events waiting to be published (transactional outbox). The ledger writer inserts one
-- row per committed batch, in the same transaction as the changes, holding that batch's events in
-- commit order; the outbox relay publishes them and deletes the row once the broker has
-- acknowledged every event in it. Ids grow with insertion, and two batches that touch the same
-- wallet are serialised by its row lock, so id order is commit order for every wallet.
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    event_count integer     NOT NULL CHECK (event_count > 0),
    -- The events as a JSON array, stored as bytes: written once by the ledger writer, read once by
    -- the relay, never queried; neither parsed nor compressed on the commit path.
    events      bytea       NOT NULL
);
ALTER TABLE outbox ALTER COLUMN events SET STORAGE EXTERNAL;

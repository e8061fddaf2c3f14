-- An idempotency key keeps the domain's receipt of its command, which REST and GraphQL each
-- render their own way, so that a key replays over either transport. Keys kept before this
-- migration hold a rendered HTTP response instead (status, response): they stay, so that a
-- retry still finds its key taken and nothing is applied twice, and expire as usual.
ALTER TABLE idempotency_keys ADD COLUMN receipt jsonb;
ALTER TABLE idempotency_keys ALTER COLUMN status DROP NOT NULL;
ALTER TABLE idempotency_keys ALTER COLUMN response DROP NOT NULL;

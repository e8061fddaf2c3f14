-- The head of each audit log (seq and hash of its last durable record), recorded by the writer as
-- it goes, away from the audit volume: `audit verify` compares a log with it, so records cut off
-- the end of a log, or a log rewritten from some point on, are detected. A head only moves
-- forward: a log that comes back shorter never lowers it.
CREATE TABLE audit_chain_heads (
    log          text        PRIMARY KEY,
    seq          bigint      NOT NULL CHECK (seq >= 0),
    hash         text        NOT NULL,
    recorded_at  timestamptz NOT NULL
);

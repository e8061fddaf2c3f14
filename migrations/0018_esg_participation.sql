-- ESG: the days each subject took part in the community (a post or a comment they wrote, from
-- the social domain's events), one row per source event so that a redelivered event changes
-- nothing. The score's social component counts the distinct days in its window. A subject is
-- kept as their blind index only: erasing them deletes these rows.

CREATE TABLE esg_participation (
    -- The source event's id.
    id              uuid PRIMARY KEY,
    subject_index   bytea       NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('post', 'comment')),
    day             date        NOT NULL,
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX esg_participation_subject_idx ON esg_participation (subject_index, day);

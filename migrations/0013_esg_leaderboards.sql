-- ESG leaderboards are opt-in: a subject (by blind index) who joined, and the community they
-- compete in, if any. The rankings themselves live in Redis and are rebuilt from here and from
-- esg_monthly when Redis has lost them.

CREATE TABLE esg_leaderboard_members (
    subject_index  bytea PRIMARY KEY,
    community      text CHECK (community ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    joined_at      timestamptz NOT NULL
);
CREATE INDEX esg_leaderboard_members_community_idx ON esg_leaderboard_members (community);

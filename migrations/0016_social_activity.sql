-- Social: which activities a profile shares as posts, and the events already made into posts
-- (each once, whatever the number of deliveries).

ALTER TABLE social_profiles
    ADD COLUMN share_rides      boolean NOT NULL DEFAULT false,
    ADD COLUMN share_milestones boolean NOT NULL DEFAULT false;

-- One row per event made into a post; it stays when the post is deleted, so that a redelivered
-- event does not bring the post back. It goes with the profile.
CREATE TABLE social_activity_sources (
    event_id    uuid        PRIMARY KEY,
    author      uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    post        uuid        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX social_activity_sources_author_idx ON social_activity_sources (author);

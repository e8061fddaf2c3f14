-- Social moderation: reports of a post or a profile waiting in a queue until an administrator
-- resolves them, and posts hidden by an administrator (seen by their author only).

ALTER TABLE social_posts
    ADD COLUMN hidden_at     timestamptz,
    ADD COLUMN hidden_reason text CHECK (hidden_reason IN
        ('spam', 'harassment', 'hate', 'violence', 'sexual', 'misinformation', 'other')),
    ADD CHECK ((hidden_at IS NULL) = (hidden_reason IS NULL));

-- A report names the profile reported, or the post reported and its author; it goes with the
-- reporter's profile, the reported profile and the reported post.
CREATE TABLE social_reports (
    id              uuid        PRIMARY KEY,
    reporter        uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    target_profile  uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    target_post     uuid        REFERENCES social_posts (id) ON DELETE CASCADE,
    reason          text        NOT NULL CHECK (reason IN
        ('spam', 'harassment', 'hate', 'violence', 'sexual', 'misinformation', 'other')),
    status          text        NOT NULL CHECK (status IN ('open', 'actioned', 'dismissed')),
    created_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    CHECK ((status = 'open') = (resolved_at IS NULL))
);
-- One open report per reporter and target.
CREATE UNIQUE INDEX social_reports_open_once_idx ON social_reports
    (reporter, target_profile, COALESCE(target_post, '00000000-0000-0000-0000-000000000000'))
    WHERE status = 'open';
-- The queue, oldest first, by status.
CREATE INDEX social_reports_queue_idx ON social_reports (status, created_at, id);
CREATE INDEX social_reports_post_idx ON social_reports (target_post) WHERE target_post IS NOT NULL;
CREATE INDEX social_reports_reporter_idx ON social_reports (reporter);
CREATE INDEX social_reports_profile_idx ON social_reports (target_profile);

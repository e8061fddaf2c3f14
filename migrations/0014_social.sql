-- Social: profiles and the graph between them. A profile's owner is kept as their blind index,
-- and their handle, display name, bio and avatar sealed under their key; the handle is found,
-- and kept unique whatever its case, by the blind index of its lower-case form. Deleting a
-- profile deletes its edges.

CREATE TABLE social_profiles (
    id            uuid PRIMARY KEY,
    owner_index   bytea       NOT NULL UNIQUE,
    handle        text        NOT NULL,
    -- The blind index of the handle in lower case: what makes it unique.
    handle_index  bytea       NOT NULL UNIQUE,
    display_name  text        NOT NULL,
    bio           text        NOT NULL,
    avatar_url    text        NOT NULL,
    visibility    text        NOT NULL CHECK (visibility IN ('public', 'followers', 'private')),
    followers     bigint      NOT NULL DEFAULT 0 CHECK (followers >= 0),
    following     bigint      NOT NULL DEFAULT 0 CHECK (following >= 0),
    -- The events keyed by this profile so far.
    version       bigint      NOT NULL CHECK (version >= 1),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE social_follows (
    follower    uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    followee    uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    state       text        NOT NULL CHECK (state IN ('active', 'pending')),
    -- Since when it is in this state.
    since       timestamptz NOT NULL,
    PRIMARY KEY (follower, followee),
    CHECK (follower <> followee)
);
CREATE INDEX social_follows_followee_idx ON social_follows (followee, state, since DESC, follower DESC);
CREATE INDEX social_follows_follower_idx ON social_follows (follower, state, since DESC, followee DESC);

CREATE TABLE social_blocks (
    blocker     uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    blocked     uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    since       timestamptz NOT NULL,
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
);
CREATE INDEX social_blocks_blocked_idx ON social_blocks (blocked, blocker);

CREATE TABLE social_mutes (
    muter       uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    muted       uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    since       timestamptz NOT NULL,
    PRIMARY KEY (muter, muted),
    CHECK (muter <> muted)
);

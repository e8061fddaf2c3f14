-- Social posts: the text sealed under the author's key, an optional link, a visibility, and the
-- counts of reactions (by kind) and comments kept by the transactions that change them. Comments
-- are threaded one level deep: a reply's parent is a comment without a parent. A post goes with
-- its author's profile, its reactions and comments with it.

CREATE TABLE social_posts (
    id             uuid        PRIMARY KEY,
    author         uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    body           text        NOT NULL,
    link_kind      text        CHECK (link_kind IN ('ride', 'esg_milestone')),
    link_ref       text,
    visibility     text        NOT NULL CHECK (visibility IN ('public', 'followers', 'private')),
    -- Reactions by kind: {"like": 3, ...}.
    reactions      jsonb       NOT NULL DEFAULT '{}',
    comments       bigint      NOT NULL DEFAULT 0 CHECK (comments >= 0),
    -- Written into the followers' cached timelines: its author had at most
    -- social.fanout_max_followers active followers when it was made. Readers merge the posts
    -- that were not from here.
    fanned_out     boolean     NOT NULL,
    -- The events keyed by this post so far.
    version        bigint      NOT NULL CHECK (version >= 1),
    created_at     timestamptz NOT NULL,
    edited_at      timestamptz,
    CHECK ((link_kind IS NULL) = (link_ref IS NULL))
);
CREATE INDEX social_posts_author_idx ON social_posts (author, created_at DESC, id DESC);
CREATE INDEX social_posts_unfanned_idx ON social_posts (author, created_at DESC, id DESC) WHERE NOT fanned_out;

CREATE TABLE social_reactions (
    post        uuid        NOT NULL REFERENCES social_posts (id) ON DELETE CASCADE,
    reactor     uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('like', 'love', 'celebrate', 'support')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (post, reactor)
);
CREATE INDEX social_reactions_reactor_idx ON social_reactions (reactor);

CREATE TABLE social_comments (
    id          uuid        PRIMARY KEY,
    post        uuid        NOT NULL REFERENCES social_posts (id) ON DELETE CASCADE,
    parent      uuid        REFERENCES social_comments (id) ON DELETE CASCADE,
    author      uuid        NOT NULL REFERENCES social_profiles (id) ON DELETE CASCADE,
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX social_comments_post_idx ON social_comments (post, created_at, id);
CREATE INDEX social_comments_author_idx ON social_comments (author);
CREATE INDEX social_comments_parent_idx ON social_comments (parent);

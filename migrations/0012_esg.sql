-- ESG: the activities credited to each subject (one row per source event, so a redelivered event
-- changes nothing), their monthly aggregates per type, and each subject's running totals and
-- score. A subject is kept as their blind index only: erasing them deletes these rows.

CREATE TABLE esg_activities (
    -- The source event's id (a completed ride's event) or the report's id.
    id              uuid PRIMARY KEY,
    subject_index   bytea       NOT NULL,
    source          text        NOT NULL CHECK (source IN ('ride', 'report')),
    kind            text        NOT NULL,
    day             date        NOT NULL,
    distance_m      bigint      NOT NULL CHECK (distance_m BETWEEN 1 AND 2000000),
    co2e_g          bigint      NOT NULL CHECK (co2e_g >= 0),
    baseline_g      bigint      NOT NULL CHECK (baseline_g >= 0),
    avoided_g       bigint      NOT NULL CHECK (avoided_g >= 0),
    -- Where the emission factor came from, which release of it, and whether the provider or the
    -- shipped table (`fallback`, `simulator`) answered.
    factor_source   text        NOT NULL,
    factor_version  text        NOT NULL,
    factor_route    text        NOT NULL CHECK (factor_route IN ('provider', 'cache', 'simulator', 'fallback', 'none')),
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX esg_activities_subject_idx ON esg_activities (subject_index, recorded_at DESC, id DESC);
CREATE INDEX esg_activities_day_idx ON esg_activities (subject_index, day);

CREATE TABLE esg_monthly (
    subject_index   bytea  NOT NULL,
    month           date   NOT NULL CHECK (extract(day FROM month) = 1),
    kind            text   NOT NULL,
    activities      bigint NOT NULL CHECK (activities > 0),
    distance_m      bigint NOT NULL CHECK (distance_m >= 0),
    co2e_g          bigint NOT NULL CHECK (co2e_g >= 0),
    avoided_g       bigint NOT NULL CHECK (avoided_g >= 0),
    PRIMARY KEY (subject_index, month, kind)
);

CREATE TABLE esg_subjects (
    subject_index   bytea PRIMARY KEY,
    activities      bigint      NOT NULL CHECK (activities >= 0),
    distance_m      bigint      NOT NULL CHECK (distance_m >= 0),
    co2e_g          bigint      NOT NULL CHECK (co2e_g >= 0),
    avoided_g       bigint      NOT NULL CHECK (avoided_g >= 0),
    -- The latest score: its method, the day it is for, its total and its components.
    method_version  text,
    as_of           date,
    total           smallint    CHECK (total BETWEEN 0 AND 100),
    score           jsonb,
    version         bigint      NOT NULL CHECK (version >= 0),
    updated_at      timestamptz NOT NULL
);

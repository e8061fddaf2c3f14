-- Rides, the offers dispatch makes to drivers, and the idempotency keys of ride actions.
--
-- A ride is stored whole as `body` (JSON) without its personal fields: who asked (blind index and
-- sealed subject) and where (the pickup and dropoff, sealed under the rider's key). The columns
-- beside it are what PostgreSQL guards and what queries find rides by: a quote pays for one ride,
-- a rider has one open ride, a driver holds one ride, and an open payment (a hold not yet
-- captured or released) is found again after a restart.

CREATE TABLE mobility_rides (
    id              uuid PRIMARY KEY,
    rider_index     bytea       NOT NULL,
    rider_sealed    text,
    points_sealed   text,
    quote_id        uuid        NOT NULL UNIQUE,
    driver_id       uuid,
    state           text        NOT NULL CHECK (state IN ('requested', 'driver_assigned', 'driver_arriving',
                                                          'in_progress', 'completed', 'cancelled', 'expired')),
    mode            text        NOT NULL,
    payment         text        NOT NULL CHECK (payment IN ('held', 'captured', 'released', 'failed')),
    saga_open       boolean     NOT NULL,
    body            jsonb       NOT NULL,
    version         bigint      NOT NULL CHECK (version > 0),
    requested_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX mobility_rides_one_open_per_rider ON mobility_rides (rider_index)
    WHERE state IN ('requested', 'driver_assigned', 'driver_arriving', 'in_progress');
CREATE UNIQUE INDEX mobility_rides_one_per_driver ON mobility_rides (driver_id)
    WHERE state IN ('driver_assigned', 'driver_arriving', 'in_progress');
CREATE INDEX mobility_rides_rider_idx ON mobility_rides (rider_index, requested_at DESC, id DESC);
CREATE INDEX mobility_rides_driver_idx ON mobility_rides (driver_id, requested_at DESC, id DESC)
    WHERE driver_id IS NOT NULL;
CREATE INDEX mobility_rides_requested_idx ON mobility_rides (requested_at) WHERE state = 'requested';
CREATE INDEX mobility_rides_saga_idx ON mobility_rides (updated_at) WHERE saga_open;
CREATE INDEX mobility_rides_retention_idx ON mobility_rides (requested_at) WHERE points_sealed IS NOT NULL;

-- One offer per (ride, driver); at most one pending offer per ride and per driver, so a ride is
-- offered to one driver at a time and a driver considers one ride at a time.
CREATE TABLE mobility_offers (
    ride_id     uuid        NOT NULL,
    driver_id   uuid        NOT NULL,
    offered_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    answer      text        CHECK (answer IN ('accepted', 'declined', 'timed_out', 'withdrawn')),
    PRIMARY KEY (ride_id, driver_id)
);
CREATE UNIQUE INDEX mobility_offers_pending_ride ON mobility_offers (ride_id) WHERE answer IS NULL;
CREATE UNIQUE INDEX mobility_offers_pending_driver ON mobility_offers (driver_id) WHERE answer IS NULL;
CREATE INDEX mobility_offers_driver_idx ON mobility_offers (driver_id, offered_at DESC);

-- What a ride action sent with an idempotency key answered, kept with the key in the action's
-- own transaction; the scope is the caller's blind index.
CREATE TABLE mobility_keys (
    scope        bytea       NOT NULL,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    ride_id      uuid        NOT NULL,
    version      bigint      NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX mobility_keys_expiry_idx ON mobility_keys (expires_at);

-- Mobility: drivers and the quotes riders ask for. Who a row belongs to is kept as the subject's
-- blind index (to find their rows) and sealed under the subject's key (to read it back); the
-- plate and the coordinates are sealed too, so erasing a subject's key leaves nothing readable.

CREATE TABLE mobility_drivers (
    id            uuid PRIMARY KEY,
    owner_index   bytea       UNIQUE,
    owner_sealed  text,
    mode          text        NOT NULL CHECK (mode IN ('car', 'ev_car', 'motorbike', 'bike', 'scooter', 'van')),
    plate_sealed  text,
    -- The driver's own wallet, credited with their share of each fare (rides in its currency).
    wallet_id     uuid        NOT NULL,
    seats         smallint    NOT NULL CHECK (seats BETWEEN 1 AND 8),
    availability  text        NOT NULL CHECK (availability IN ('offline', 'available', 'on_ride')),
    -- The ride the driver holds: one ride per driver, and (unique) one driver per ride.
    ride_id       uuid        UNIQUE,
    rating_sum    bigint      NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    rating_count  bigint      NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    version       bigint      NOT NULL CHECK (version > 0),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK ((availability = 'on_ride') = (ride_id IS NOT NULL))
);

-- A quote is used by one ride; its coordinates are sealed under the rider's key and removed with
-- the rest of the quote once its retention period is over.
CREATE TABLE mobility_quotes (
    id              uuid PRIMARY KEY,
    rider_index     bytea       NOT NULL,
    pickup_sealed   text        NOT NULL,
    dropoff_sealed  text        NOT NULL,
    mode            text        NOT NULL,
    distance_m      bigint      NOT NULL CHECK (distance_m >= 0),
    duration_s      bigint      NOT NULL CHECK (duration_s >= 0),
    fare            bigint      NOT NULL CHECK (fare > 0),
    currency        char(3)     NOT NULL,
    co2e_g          bigint      CHECK (co2e_g >= 0),
    route_source    text        NOT NULL,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX mobility_quotes_rider_idx ON mobility_quotes (rider_index);
CREATE INDEX mobility_quotes_created_idx ON mobility_quotes (created_at);

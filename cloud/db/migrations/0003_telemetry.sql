-- 0003: what vehicles send, as time-series tables (hypertables or range partitions, see 0001).
--
-- Units are SI throughout: metres, metres per second, degrees, UTC timestamps.
-- De-duplication: each table's primary key is what makes a row "the same" row, and includes
-- the time column as both engines require; the store writes with
-- INSERT ... ON CONFLICT DO NOTHING, so a resent batch never produces a duplicate.
-- No foreign keys on these tables: they would cost every insert a lookup, and the bridge
-- already refuses unregistered devices (their data goes to quarantine).
-- The ingest store's staging tables (UNLOGGED or TEMP, filled by COPY) are its own business:
-- they are not part of the schema.

-- One position fix. Latitude and longitude are double precision so the wire's 1e-6 degree
-- resolution survives exactly; the rest are float4, ample for their sensors' precision.
SELECT flota_create_timeseries($ddl$
CREATE TABLE fixes (
    tenant_id   text             NOT NULL,
    vehicle_id  text             NOT NULL,
    time        timestamptz      NOT NULL,  -- the receiver's fix time (UTC)
    seq         bigint           NOT NULL,  -- the vehicle's outbox sequence number
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),    -- degrees
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),  -- degrees
    alt_m       real,                       -- metres above mean sea level
    speed_mps   real,                       -- metres per second over ground
    track_deg   real,                       -- degrees clockwise from true north
    hdop        real,
    sats        smallint,                   -- satellites used
    fix_mode    smallint,                   -- 0 none, 2 = 2D, 3 = 3D (NMEA GSA mode)
    received_at timestamptz      NOT NULL DEFAULT now(),  -- when the cloud received it
    -- one fix per vehicle and instant: the ON CONFLICT DO NOTHING target
    PRIMARY KEY (tenant_id, vehicle_id, time)
)
$ddl$, 'fixes', 'time', interval '1 day');

-- Sensor samples (IMU, CAN signals, analogue and digital inputs), one value per row.
SELECT flota_create_timeseries($ddl$
CREATE TABLE sensor_samples (
    tenant_id   text             NOT NULL,
    vehicle_id  text             NOT NULL,
    time        timestamptz      NOT NULL,
    sensor      text             NOT NULL,  -- e.g. 'imu.accel_x', 'can.engine_rpm', 'io.ignition'
    value       double precision NOT NULL,  -- in the sensor's SI unit
    seq         bigint           NOT NULL,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id, sensor, time)
)
$ddl$, 'sensor_samples', 'time', interval '1 day');

-- Domain events: from the vehicle (its own models, harsh braking...) and from the cloud's
-- processors (trips, geofences, speeding, idling). event_key is a deterministic id chosen by the
-- producer (e.g. the vehicle's seq, or 'geofence:depot-3:enter'), so a replayed event is the
-- same row.
SELECT flota_create_timeseries($ddl$
CREATE TABLE events (
    tenant_id   text        NOT NULL,
    vehicle_id  text        NOT NULL,
    time        timestamptz NOT NULL,
    kind        text        NOT NULL,        -- e.g. 'trip.start', 'geofence.enter', 'speeding'
    event_key   text        NOT NULL DEFAULT '',
    source      text        NOT NULL CHECK (source IN ('vehicle', 'cloud')),
    seq         bigint,                      -- the vehicle's seq for vehicle events
    detail      jsonb       NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id, kind, event_key, time)
)
$ddl$, 'events', 'time', interval '7 days');

-- The newest known state of each vehicle. The store upserts with
--   ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET ... WHERE vehicle_latest.time < EXCLUDED.time
-- so a late or replayed fix never moves a vehicle backwards. Frequent updates: leave room on
-- each page for HOT updates.
CREATE TABLE vehicle_latest (
    tenant_id   text             NOT NULL,
    vehicle_id  text             NOT NULL,
    time        timestamptz      NOT NULL,
    seq         bigint           NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    alt_m       real,
    speed_mps   real,
    track_deg   real,
    hdop        real,
    sats        smallint,
    fix_mode    smallint,
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id)
) WITH (fillfactor = 70);

-- The end-to-end acknowledgement's memory: per vehicle, the highest sequence number whose data
-- is committed here (the store publishes "stored up to seq N" from it). Only ever raised:
--   ON CONFLICT (tenant_id, vehicle_id) DO UPDATE SET stored_seq = GREATEST(...)
CREATE TABLE ingest_watermarks (
    tenant_id   text        NOT NULL,
    vehicle_id  text        NOT NULL,
    stored_seq  bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id)
) WITH (fillfactor = 70);

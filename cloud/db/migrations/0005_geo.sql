-- 0005: the geo processors (`flota ingest geo`): geofences, per-tenant rule overrides, and the
-- processor's own durable state. Their output lives in the `events` table (0003): trips, stops,
-- speeding, idling and geofence visits are domain events; the `trips` view reads trips back.
-- Plain tables and a view: identical on TimescaleDB and plain PostgreSQL.

-- A tenant's named areas. geometry is a GeoJSON Polygon or MultiPolygon (RFC 7946: positions
-- are [lon, lat] in WGS84 degrees; holes allowed; edges straight in lon/lat).
CREATE TABLE geofences (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    geofence_id text        NOT NULL CHECK (geofence_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        text        NOT NULL DEFAULT '',
    geometry    jsonb       NOT NULL
                CHECK (geometry ->> 'type' IN ('Polygon', 'MultiPolygon')),
    dwell_s     real        CHECK (dwell_s >= 0),  -- overrides the default dwell threshold
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, geofence_id)
);
COMMENT ON TABLE geofences IS
    'Geofences; the geo processor reloads them periodically (FLOTA_GEO_FENCE_REFRESH_S).';

-- Per-tenant overrides of the geo rules' thresholds (NULL: the process default). SI units.
CREATE TABLE geo_tenant_rules (
    tenant_id         text PRIMARY KEY REFERENCES tenants (tenant_id),
    speed_limit_mps   real CHECK (speed_limit_mps > 0),
    speeding_min_s    real CHECK (speeding_min_s >= 0),
    idle_min_s        real CHECK (idle_min_s >= 0),
    stop_min_s        real CHECK (stop_min_s >= 0),
    trip_end_stop_s   real CHECK (trip_end_stop_s >= 0),
    geofence_dwell_s  real CHECK (geofence_dwell_s >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The processor's memory of each vehicle (odometer, open trip, geofence membership, the
-- watermark that makes older fixes "late"), as JSON written in the same transaction as
-- geo_offsets: the state and the input position always agree. Keyed by consumer group so two
-- independent processor deployments never share state.
CREATE TABLE geo_state (
    consumer_group text        NOT NULL,
    tenant_id      text        NOT NULL,
    vehicle_id     text        NOT NULL,
    watermark      timestamptz,              -- the newest fix time consumed
    odometer_m     double precision NOT NULL DEFAULT 0,  -- metres, GPS jumps excluded
    state          jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, tenant_id, vehicle_id)
) WITH (fillfactor = 70);

-- The next input offset per partition the processor's state reflects. On (re)assignment the
-- processor seeks to these, not to Kafka's committed offsets (those are committed after, for
-- lag monitoring only).
CREATE TABLE geo_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
) WITH (fillfactor = 70);

-- Finished trips, read from their trip.end events.
CREATE VIEW trips AS
SELECT tenant_id,
       vehicle_id,
       event_key                                                     AS trip_id,
       to_timestamp((detail ->> 'start_us')::double precision / 1e6) AS start_time,
       time                                                          AS end_time,
       (detail ->> 'distance_m')::double precision                   AS distance_m,
       (detail ->> 'duration_s')::double precision                   AS duration_s,
       (detail ->> 'start_lat')::double precision                    AS start_lat,
       (detail ->> 'start_lon')::double precision                    AS start_lon,
       (detail ->> 'end_lat')::double precision                      AS end_lat,
       (detail ->> 'end_lon')::double precision                      AS end_lon,
       detail ->> 'ended_by'                                         AS ended_by
  FROM events
 WHERE kind = 'trip.end' AND source = 'cloud';

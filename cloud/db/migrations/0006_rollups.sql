-- 0006: hourly and daily rollups per vehicle, kept by our own job (`flota ingest maintain`).
--
-- Why tables of ours on every engine: distance and driving time need each fix's predecessor
-- (a window function), which continuous aggregates cannot express, and the Apache edition has
-- no continuous aggregates at all. The job recomputes a sliding window of recent hours, so late
-- fixes land in their own hour; a bucket is rewritten whole, never incremented, so a rerun is
-- harmless.
--
-- distance_m sums the great-circle length of each segment between consecutive stored fixes,
-- except segments needing an impossible speed (a GPS jump that got past the ingest screen):
-- those are counted in jumps_ignored instead. driving_s / idling_s sum the time between
-- consecutive fixes no more than max_gap_s apart, split by the reported speed (or the implied
-- one) at 0.5 m/s. events counts the events table's rows in the bucket.

CREATE FUNCTION flota_haversine_m(lat1 double precision, lon1 double precision,
                                  lat2 double precision, lon2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 2 * 6371008.8 * asin(least(1.0, sqrt(
        sin(radians(lat2 - lat1) / 2) ^ 2
        + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
$$;

CREATE TABLE vehicle_rollup_hourly (
    tenant_id     text             NOT NULL,
    vehicle_id    text             NOT NULL,
    bucket        timestamptz      NOT NULL,  -- start of the UTC hour
    fixes         integer          NOT NULL,
    distance_m    double precision NOT NULL,
    driving_s     double precision NOT NULL,
    idling_s      double precision NOT NULL,
    max_speed_mps real,
    jumps_ignored integer          NOT NULL,
    events        integer          NOT NULL,
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id, bucket)
);
CREATE INDEX vehicle_rollup_hourly_bucket_idx ON vehicle_rollup_hourly (bucket);

CREATE TABLE vehicle_rollup_daily (LIKE vehicle_rollup_hourly INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE vehicle_rollup_daily ADD PRIMARY KEY (tenant_id, vehicle_id, bucket);
COMMENT ON TABLE vehicle_rollup_daily IS 'Sums of vehicle_rollup_hourly per UTC day';

-- Recompute the hourly rollups of [since, until) (rounded out to whole hours) and the daily
-- rollups of the days they touch. Returns the number of hourly rows written.
CREATE FUNCTION flota_rollup(since timestamptz, until timestamptz,
                             jump_mps double precision DEFAULT 90,
                             max_gap_s double precision DEFAULT 60)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    h0 timestamptz := date_trunc('hour', since, 'UTC');
    h1 timestamptz := date_trunc('hour', until, 'UTC')
                      + CASE WHEN date_trunc('hour', until, 'UTC') = until
                             THEN interval '0' ELSE interval '1 hour' END;
    d0 timestamptz := date_trunc('day', h0, 'UTC');
    d1 timestamptz := date_trunc('day', h1 - interval '1 microsecond', 'UTC') + interval '1 day';
    n  integer;
BEGIN
    DELETE FROM vehicle_rollup_hourly WHERE bucket >= h0 AND bucket < h1;
    WITH seg AS (
        SELECT tenant_id, vehicle_id, time, speed_mps, lat, lon,
               lag(time) OVER w AS ptime, lag(lat) OVER w AS plat, lag(lon) OVER w AS plon
          FROM fixes
         WHERE time >= h0 - interval '1 hour' AND time < h1
        WINDOW w AS (PARTITION BY tenant_id, vehicle_id ORDER BY time)
    ), s AS (
        SELECT tenant_id, vehicle_id, date_trunc('hour', time, 'UTC') AS bucket, speed_mps,
               extract(epoch FROM time - ptime)::float8 AS dt,
               CASE WHEN ptime IS NULL THEN 0
                    ELSE flota_haversine_m(plat, plon, lat, lon) END AS d
          FROM seg
         WHERE time >= h0
    ), f AS (
        SELECT tenant_id, vehicle_id, bucket,
               count(*)::int AS fixes,
               coalesce(sum(d) FILTER (WHERE dt > 0 AND (d - 50) / dt <= jump_mps), 0)
                   AS distance_m,
               coalesce(sum(dt) FILTER (WHERE dt <= max_gap_s AND (d - 50) / dt <= jump_mps
                   AND coalesce(speed_mps, d / dt) >= 0.5), 0) AS driving_s,
               coalesce(sum(dt) FILTER (WHERE dt <= max_gap_s
                   AND coalesce(speed_mps, d / dt) < 0.5), 0) AS idling_s,
               max(speed_mps) AS max_speed_mps,
               count(*) FILTER (WHERE dt > 0 AND (d - 50) / dt > jump_mps)::int
                   AS jumps_ignored
          FROM s
         GROUP BY tenant_id, vehicle_id, bucket
    ), e AS (
        SELECT tenant_id, vehicle_id, date_trunc('hour', time, 'UTC') AS bucket,
               count(*)::int AS events
          FROM events
         WHERE time >= h0 AND time < h1
         GROUP BY 1, 2, 3
    )
    INSERT INTO vehicle_rollup_hourly (tenant_id, vehicle_id, bucket, fixes, distance_m,
                                       driving_s, idling_s, max_speed_mps, jumps_ignored, events)
    SELECT coalesce(f.tenant_id, e.tenant_id), coalesce(f.vehicle_id, e.vehicle_id),
           coalesce(f.bucket, e.bucket), coalesce(f.fixes, 0), coalesce(f.distance_m, 0),
           coalesce(f.driving_s, 0), coalesce(f.idling_s, 0), f.max_speed_mps,
           coalesce(f.jumps_ignored, 0), coalesce(e.events, 0)
      FROM f FULL JOIN e USING (tenant_id, vehicle_id, bucket);
    GET DIAGNOSTICS n = ROW_COUNT;

    DELETE FROM vehicle_rollup_daily WHERE bucket >= d0 AND bucket < d1;
    INSERT INTO vehicle_rollup_daily (tenant_id, vehicle_id, bucket, fixes, distance_m,
                                      driving_s, idling_s, max_speed_mps, jumps_ignored, events)
    SELECT tenant_id, vehicle_id, date_trunc('day', bucket, 'UTC'), sum(fixes), sum(distance_m),
           sum(driving_s), sum(idling_s), max(max_speed_mps), sum(jumps_ignored), sum(events)
      FROM vehicle_rollup_hourly
     WHERE bucket >= d0 AND bucket < d1
     GROUP BY 1, 2, 3;
    RETURN n;
END
$$;

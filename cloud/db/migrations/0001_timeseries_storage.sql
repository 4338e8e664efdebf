-- 0001: how time-series tables are stored, on either engine.
--
-- A time-series table is written as an ordinary CREATE TABLE and handed to
-- flota_create_timeseries(), which makes it
--   * a TimescaleDB hypertable when the extension is installed, or
--   * a plain PostgreSQL table partitioned by range on its time column, with fixed-width
--     partitions created ahead of time and a DEFAULT partition that catches rows outside them
--     (an ingest batch never fails because a partition is missing).
-- The migrations runner decides which by setting the session variable flota.storage to
-- 'hypertable' or 'partitions'; without it the presence of the extension decides.
-- Every such table is listed in timeseries_tables so maintenance and retention jobs know how it
-- is stored. Primary and unique keys of these tables must contain the time column (both engines
-- require it).

CREATE TABLE timeseries_tables (
    table_name     text PRIMARY KEY,
    time_column    text NOT NULL,
    chunk_interval interval NOT NULL CHECK (chunk_interval > interval '0'),
    storage        text NOT NULL CHECK (storage IN ('hypertable', 'partitions')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE timeseries_tables IS
    'Time-series tables and how each is stored: TimescaleDB hypertable or plain range partitions.';

-- What this database can do, read live (never stale): the TimescaleDB version, its licence
-- ('apache' refuses compression, continuous aggregates and retention policies; 'timescale'
-- allows them) and therefore whether native policies may be used or our own jobs must run.
CREATE FUNCTION flota_capabilities()
RETURNS TABLE (timescaledb_version text, license text, native_policies boolean)
LANGUAGE sql STABLE AS $$
    SELECT e.extversion,
           CASE WHEN e.extversion IS NULL THEN NULL
                ELSE current_setting('timescaledb.license', true) END,
           coalesce(e.extversion IS NOT NULL
                    AND current_setting('timescaledb.license', true) = 'timescale', false)
      FROM (SELECT 1) AS one
      LEFT JOIN pg_extension e ON e.extname = 'timescaledb'
$$;

-- The partition holding `ts` for a step of `step`: [lower, upper), aligned to the Unix epoch (so
-- daily partitions start at 00:00 UTC). Month-based intervals are refused: not fixed-width.
CREATE FUNCTION flota_partition_bounds(ts timestamptz, step interval,
                                       OUT lower timestamptz, OUT upper timestamptz)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    secs double precision := extract(epoch FROM step);
BEGIN
    IF extract(month FROM step) <> 0 OR extract(year FROM step) <> 0 OR secs <= 0 THEN
        RAISE EXCEPTION 'partition step % must be a fixed positive width (days or less units)', step;
    END IF;
    lower := to_timestamp(floor(extract(epoch FROM ts) / secs) * secs);
    upper := lower + step;
END
$$;

-- Create one partition [lower, upper) of a registered table unless it exists. Rows that already
-- sit in the DEFAULT partition for that range are moved into it. The partition is built as a
-- standalone table and then attached, which holds only a SHARE UPDATE EXCLUSIVE lock on the
-- parent, so ingest keeps writing while maintenance runs.
CREATE FUNCTION flota_create_partition(tbl text, lower timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    reg   timeseries_tables;
    b     record;
    part  text;
    dflt  text := tbl || '_default';
BEGIN
    SELECT * INTO STRICT reg FROM timeseries_tables WHERE table_name = tbl;
    b := flota_partition_bounds(lower, reg.chunk_interval);
    part := tbl || '_p' || to_char(b.lower AT TIME ZONE 'UTC', 'YYYYMMDD')
            || CASE WHEN reg.chunk_interval < interval '1 day'
                    THEN to_char(b.lower AT TIME ZONE 'UTC', '"T"HH24MI') ELSE '' END;
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                   'INCLUDING STORAGE INCLUDING COMMENTS)', part, tbl);
    -- A CHECK matching the bound lets ATTACH skip scanning the new partition.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I >= %L AND %I < %L)',
                   part, part || '_bound', reg.time_column, b.lower, reg.time_column, b.upper);
    IF to_regclass(quote_ident(dflt)) IS NOT NULL THEN
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved',
                       dflt, reg.time_column, reg.time_column, part)
          USING b.lower, b.upper;
    END IF;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   tbl, part, b.lower, b.upper);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bound');
    RETURN true;
END
$$;

-- Make sure partitions exist from `since` to now() + `ahead` for every partitioned table, and
-- for any rows that landed in a DEFAULT partition. Called by migrations and by the maintenance
-- job (`flota db maintain`). Returns the number of partitions created.
CREATE FUNCTION flota_ensure_partitions(ahead interval DEFAULT interval '7 days',
                                        since interval DEFAULT interval '1 day')
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    reg     timeseries_tables;
    ts      timestamptz;
    created integer := 0;
    lo      timestamptz;
    hi      timestamptz;
    parked  boolean;
BEGIN
    FOR reg IN SELECT * FROM timeseries_tables WHERE storage = 'partitions' ORDER BY table_name LOOP
        ts := (flota_partition_bounds(now() - since, reg.chunk_interval)).lower;
        WHILE ts < now() + ahead LOOP
            created := created + flota_create_partition(reg.table_name, ts)::int;
            ts := ts + reg.chunk_interval;
        END LOOP;
        -- Late or early rows parked in the DEFAULT partition get a partition of their own.
        EXECUTE format('SELECT min(%I), max(%I) FROM %I',
                       reg.time_column, reg.time_column, reg.table_name || '_default')
           INTO lo, hi;
        ts := (flota_partition_bounds(lo, reg.chunk_interval)).lower;
        WHILE ts IS NOT NULL AND ts <= hi LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                           reg.table_name || '_default', reg.time_column, reg.time_column)
               INTO STRICT parked USING ts, ts + reg.chunk_interval;
            IF parked THEN
                created := created + flota_create_partition(reg.table_name, ts)::int;
            END IF;
            ts := ts + reg.chunk_interval;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- Turn a CREATE TABLE statement (without a trailing PARTITION BY) into a time-series table.
CREATE FUNCTION flota_create_timeseries(create_table text, tbl text, time_column text,
                                        chunk_interval interval)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    storage text := coalesce(nullif(current_setting('flota.storage', true), ''),
                             CASE WHEN EXISTS (SELECT 1 FROM pg_extension
                                               WHERE extname = 'timescaledb')
                                  THEN 'hypertable' ELSE 'partitions' END);
    ddl text := rtrim(btrim(create_table), '; ' || chr(10));
BEGIN
    IF storage = 'hypertable' THEN
        EXECUTE ddl;
        EXECUTE format('SELECT create_hypertable(%L::regclass, by_range(%L, %L::interval), '
                       'create_default_indexes => false)', tbl, time_column, chunk_interval);
    ELSIF storage = 'partitions' THEN
        EXECUTE ddl || format(' PARTITION BY RANGE (%I)', time_column);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
    ELSE
        RAISE EXCEPTION 'flota.storage must be hypertable or partitions, not %', storage;
    END IF;
    INSERT INTO timeseries_tables (table_name, time_column, chunk_interval, storage)
    VALUES (tbl, time_column, chunk_interval, storage);
    RETURN storage;
END
$$;

-- Retention for either engine: drop whole chunks/partitions that end at or before `cutoff`.
-- Our own job calls this where the licence refuses native retention policies (Apache edition)
-- and on plain PostgreSQL. Returns the number of chunks or partitions dropped.
CREATE FUNCTION flota_drop_before(tbl text, cutoff timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    reg     timeseries_tables;
    part    record;
    dropped integer := 0;
    n       integer;
BEGIN
    SELECT * INTO STRICT reg FROM timeseries_tables WHERE table_name = tbl;
    IF reg.storage = 'hypertable' THEN
        EXECUTE 'SELECT count(*) FROM drop_chunks($1::regclass, older_than => $2)'
           INTO n USING tbl, cutoff;
        RETURN n;
    END IF;
    FOR part IN
        SELECT c.oid::regclass AS rel,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                             'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = tbl::regclass AND c.relispartition
    LOOP
        IF part.upper IS NOT NULL AND part.upper <= cutoff THEN
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %s', tbl, part.rel);
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$;

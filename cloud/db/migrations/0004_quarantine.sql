-- 0004: quarantine. Bad input is never dropped silently: whatever the bridge or the store
-- refuses lands here with a reason (counted per reason by the metrics) and, where there is one,
-- the raw payload, so it can be inspected or replayed.
-- Reasons are short stable codes, e.g. 'decode', 'unregistered', 'vehicle_mismatch',
-- 'duplicate', 'future', 'too_old', 'null_island', 'out_of_range', 'impossible_speed'.
-- A time-series table keyed on received_at, so retention drops it like the telemetry.

SELECT flota_create_timeseries($ddl$
CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    received_at timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL,
    tenant_id   text,                    -- NULL when the topic could not be parsed
    vehicle_id  text,
    topic       text,
    seq         bigint,                  -- the offending record's seq, when known
    fix_time    timestamptz,             -- the offending record's own time, when known
    payload     bytea,                   -- the raw message, or the single bad record
    detail      text        NOT NULL DEFAULT '',
    PRIMARY KEY (id, received_at)
)
$ddl$, 'quarantine', 'received_at', interval '7 days');

CREATE INDEX quarantine_reason_idx ON quarantine (reason, received_at);

-- Partitions for the tables above: from yesterday to a week ahead (no-op on TimescaleDB).
SELECT flota_ensure_partitions();

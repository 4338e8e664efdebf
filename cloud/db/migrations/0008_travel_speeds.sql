-- 0008: travel speeds learned from the fleet's fixes (cloud/optimizer/speeds, docs/optimizer.md).
--
-- `flota optimize learn-speeds` writes one model per tenant: a header row (when, settings,
-- its error on held-out trips) and its speeds per H3 cell and hour of week (hour -1 = the
-- cell over all hours; cell '*' = the whole fleet at that hour). The dispatcher reads the
-- newest model and reloads it when `learned_at` changes. A new model replaces the old one.
-- Plain tables: identical on TimescaleDB and plain PostgreSQL. Times are UTC.

CREATE TABLE travel_speed_models (
    tenant_id    text        PRIMARY KEY,
    learned_at   timestamptz NOT NULL DEFAULT now(),
    resolution   smallint    NOT NULL CHECK (resolution BETWEEN 0 AND 15),  -- H3
    default_mps  real        NOT NULL CHECK (default_mps > 0),
    report       jsonb       NOT NULL  -- settings, sample counts, MAE and p90 on held-out trips
);

CREATE TABLE travel_speeds (
    tenant_id     text     NOT NULL REFERENCES travel_speed_models (tenant_id) ON DELETE CASCADE,
    cell          text     NOT NULL,  -- H3 index, or '*' for the fleet-wide speed of an hour
    hour_of_week  smallint NOT NULL CHECK (hour_of_week BETWEEN -1 AND 167),  -- 0 = Mon 00 UTC
    speed_mps     real     NOT NULL CHECK (speed_mps > 0),
    PRIMARY KEY (tenant_id, cell, hour_of_week)
);

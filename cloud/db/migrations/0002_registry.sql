-- 0002: tenants and their devices (vehicles).
--
-- Ids are the topic segments of the wire contract (flota_wire.topics): [A-Za-z0-9_-]{1,64}.
-- A vehicle id is unique within its tenant only, so every vehicle-keyed table below carries
-- (tenant_id, vehicle_id): two tenants may both own a vehicle called "truck-1".

CREATE TABLE tenants (
    tenant_id  text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    vehicle_id  text NOT NULL CHECK (vehicle_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    -- The bridge accepts telemetry only from registered devices; unregistering keeps history.
    registered  boolean NOT NULL DEFAULT true,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id)
);
COMMENT ON COLUMN devices.registered IS 'false: telemetry from this device is quarantined';

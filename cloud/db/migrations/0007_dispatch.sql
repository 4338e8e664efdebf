-- 0007: live dispatch (`flota optimize serve`, cloud/optimizer/dispatch, docs/dispatch.md).
--
-- The dispatcher's own store: depots, the vehicles that work from them, orders with their
-- progress, every route plan sent to a vehicle (versioned) and every acknowledgement of one.
-- The service rebuilds its memory from these tables at start; Kafka brings the changes.
-- Plain tables: identical on TimescaleDB and plain PostgreSQL. No foreign keys to the registry:
-- orders may name a tenant before its devices are registered. Times are UTC.

CREATE TABLE dispatch_depots (
    tenant_id   text        NOT NULL,
    depot_id    text        NOT NULL CHECK (depot_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    doc         jsonb       NOT NULL,  -- the last `depot` document (location, opening hours)
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, depot_id)
);

CREATE TABLE dispatch_vehicles (
    tenant_id        text        NOT NULL,
    vehicle_id       text        NOT NULL,
    depot_id         text        NOT NULL,
    doc              jsonb       NOT NULL,  -- the last `vehicle` document (capacity, shift, ...)
    broken           boolean     NOT NULL DEFAULT false,
    broken_lat       double precision,      -- where it broke down, degrees
    broken_lon       double precision,
    available_from   timestamptz,           -- running late: cannot go on before this
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id)
);

CREATE TABLE dispatch_orders (
    tenant_id   text        NOT NULL,
    order_id    text        NOT NULL,
    depot_id    text        NOT NULL,
    doc         jsonb       NOT NULL,  -- the last `order` document
    status      text        NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'cancelled', 'done')),
    done_tasks  text[]      NOT NULL DEFAULT '{}',  -- 'pickup' / 'delivery' completed
    picked_by   text,                  -- vehicle carrying a pair's goods after its pickup
    assigned_to text,                  -- vehicle of the newest plan; NULL: unassigned
    reason      text,                  -- why it is unassigned (no_room, expired, ...)
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX dispatch_orders_open ON dispatch_orders (tenant_id, depot_id) WHERE status = 'open';

-- One row per plan version sent to a vehicle. The version only grows per vehicle (the service
-- takes max(version) + 1); the row is written before the command is produced, pushed_at after
-- Kafka acknowledged it. acked_at/ack_status: the vehicle's latest acknowledgement of it.
CREATE TABLE dispatch_plans (
    tenant_id   text        NOT NULL,
    vehicle_id  text        NOT NULL,
    version     integer     NOT NULL CHECK (version > 0),
    depot_id    text        NOT NULL,
    trigger     text        NOT NULL DEFAULT '',  -- what caused the re-optimisation
    payload     jsonb       NOT NULL,             -- the route_plan command's payload
    stops       integer     NOT NULL,
    command_seq bigint      NOT NULL,             -- downlink seq of the command
    created_at  timestamptz NOT NULL DEFAULT now(),
    pushed_at   timestamptz,
    acked_at    timestamptz,
    ack_status  text CHECK (ack_status IN ('accepted', 'applied', 'rejected', 'failed')),
    PRIMARY KEY (tenant_id, vehicle_id, version)
);

-- Every acknowledgement a vehicle sent for a route plan, as received (duplicates from QoS 1
-- redelivery share the vehicle's ack seq and are stored once).
CREATE TABLE plan_acks (
    tenant_id   text        NOT NULL,
    vehicle_id  text        NOT NULL,
    ack_seq     bigint      NOT NULL,  -- the vehicle's command-ack counter
    version     integer     NOT NULL,
    status      text        NOT NULL CHECK (status IN ('accepted', 'applied', 'rejected', 'failed')),
    reason      text,
    acked_at    timestamptz NOT NULL,  -- the vehicle's clock
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vehicle_id, ack_seq)
);
CREATE INDEX plan_acks_version ON plan_acks (tenant_id, vehicle_id, version);

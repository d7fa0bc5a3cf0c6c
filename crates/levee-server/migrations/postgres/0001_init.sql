-- Levee server schema, PostgreSQL dialect (keep in step with ../sqlite/0001_init.sql).
-- Times are milliseconds since the Unix epoch (BIGINT) except metric rows,
-- which are keyed by whole seconds. Flags are 0/1 integers in both dialects.

CREATE TABLE tenants (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    created_ms    BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    BIGINT NOT NULL REFERENCES tenants(id),
    user_id      BIGINT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT,
    revoked_ms   BIGINT
);

CREATE TABLE enrollment_tokens (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    token_hash  BYTEA NOT NULL UNIQUE,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    used_ms     BIGINT,
    node_id     BIGINT,
    created_by  BIGINT NOT NULL
);

CREATE TABLE nodes (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    agent_key_hash  BYTEA NOT NULL UNIQUE,
    version         TEXT NOT NULL,
    interfaces      TEXT NOT NULL,
    enrolled_ms     BIGINT NOT NULL,
    last_seen_ms    BIGINT,
    online          BIGINT NOT NULL DEFAULT 0,
    baselines       TEXT,
    policy_version  BIGINT NOT NULL DEFAULT 0,
    queued_events   BIGINT NOT NULL DEFAULT 0,
    dropped_events  BIGINT NOT NULL DEFAULT 0,
    revoked_ms      BIGINT,
    UNIQUE (tenant_id, name)
);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    node_id      BIGINT,
    event_id     TEXT NOT NULL,
    ts_ms        BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    incident_id  TEXT,
    body         TEXT NOT NULL,
    received_ms  BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_node_event ON events (tenant_id, node_id, event_id);
CREATE INDEX events_tenant_ts ON events (tenant_id, ts_ms);

CREATE TABLE correlations (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    key          TEXT NOT NULL,
    state        TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    resolved_ms  BIGINT
);
CREATE INDEX correlations_tenant ON correlations (tenant_id, state);

CREATE TABLE incidents (
    id                 BIGSERIAL PRIMARY KEY,
    tenant_id          BIGINT NOT NULL,
    node_id            BIGINT NOT NULL,
    agent_incident_id  TEXT NOT NULL,
    target             TEXT NOT NULL,
    metric             TEXT NOT NULL,
    family             TEXT,
    confidence         BIGINT,
    state              TEXT NOT NULL,
    started_ms         BIGINT NOT NULL,
    updated_ms         BIGINT NOT NULL,
    resolved_ms        BIGINT,
    value              DOUBLE PRECISION NOT NULL,
    baseline           DOUBLE PRECISION NOT NULL,
    peak               DOUBLE PRECISION NOT NULL,
    total_packets      BIGINT,
    total_bytes        BIGINT,
    last_event         TEXT NOT NULL,
    correlation_id     BIGINT,
    UNIQUE (node_id, agent_incident_id)
);
CREATE INDEX incidents_tenant_state ON incidents (tenant_id, state);

CREATE TABLE mitigations (
    id                 BIGSERIAL PRIMARY KEY,
    tenant_id          BIGINT NOT NULL,
    node_id            BIGINT NOT NULL,
    mitigation_id      TEXT NOT NULL,
    incident_id        TEXT,
    executor           TEXT,
    rule               TEXT,
    state              TEXT NOT NULL,
    created_ms         BIGINT NOT NULL,
    updated_ms         BIGINT NOT NULL,
    last_event         TEXT NOT NULL,
    UNIQUE (node_id, mitigation_id)
);
CREATE INDEX mitigations_tenant ON mitigations (tenant_id, updated_ms);

CREATE TABLE pcaps (
    incident_id  BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    data         BYTEA NOT NULL,
    uploaded_ms  BIGINT NOT NULL
);

CREATE TABLE commands (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    node_id     BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    args        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    created_by  BIGINT NOT NULL,
    acked_ms    BIGINT
);
CREATE INDEX commands_pending ON commands (node_id, acked_ms);

CREATE TABLE policies (
    tenant_id   BIGINT PRIMARY KEY,
    version     BIGINT NOT NULL,
    body        TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

-- One row per node, target (interface name or `host`) and second.
CREATE TABLE metrics_1s (
    node_id      BIGINT NOT NULL,
    target       TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    rx_pps       DOUBLE PRECISION,
    rx_bps       DOUBLE PRECISION,
    tx_pps       DOUBLE PRECISION,
    tx_bps       DOUBLE PRECISION,
    tcp_pps      DOUBLE PRECISION,
    udp_pps      DOUBLE PRECISION,
    icmp_pps     DOUBLE PRECISION,
    syn_recv     DOUBLE PRECISION,
    connections  DOUBLE PRECISION,
    PRIMARY KEY (node_id, target, ts)
);
CREATE INDEX metrics_1s_ts ON metrics_1s (ts);

-- Minute averages of metrics_1s, plus the peaks of the two rx rates.
CREATE TABLE metrics_1m (
    node_id      BIGINT NOT NULL,
    target       TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    rx_pps       DOUBLE PRECISION,
    rx_bps       DOUBLE PRECISION,
    tx_pps       DOUBLE PRECISION,
    tx_bps       DOUBLE PRECISION,
    tcp_pps      DOUBLE PRECISION,
    udp_pps      DOUBLE PRECISION,
    icmp_pps     DOUBLE PRECISION,
    syn_recv     DOUBLE PRECISION,
    connections  DOUBLE PRECISION,
    rx_pps_max   DOUBLE PRECISION,
    rx_bps_max   DOUBLE PRECISION,
    samples      BIGINT NOT NULL,
    PRIMARY KEY (node_id, target, ts)
);
CREATE INDEX metrics_1m_ts ON metrics_1m (ts);

-- Progress of the singleton jobs (e.g. the downsampling watermark).
CREATE TABLE job_state (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);

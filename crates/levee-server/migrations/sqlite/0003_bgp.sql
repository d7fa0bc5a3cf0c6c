-- BGP escalation in the server (issue 6): per tenant, the admin's tuning
-- (thresholds per tenant and attack family, rule cap; JSON), withdraw
-- requests (a counter the leader acknowledges) and the leader's status
-- snapshot (live rules, escalation state per incident, last error; JSON),
-- so any replica answers GET /api/v1/bgp.
CREATE TABLE bgp_tenants (
    tenant_id           BIGINT PRIMARY KEY,
    tuning              TEXT NOT NULL DEFAULT '{}',
    tuning_version      BIGINT NOT NULL DEFAULT 0,
    tuning_updated_ms   BIGINT,
    withdraw_requested  BIGINT NOT NULL DEFAULT 0,
    withdraw_done       BIGINT NOT NULL DEFAULT 0,
    status              TEXT,
    status_ms           BIGINT
);

-- The leader reads each BGP tenant's new incident events by id.
CREATE INDEX events_tenant_id ON events (tenant_id, id);

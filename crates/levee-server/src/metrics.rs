//! Prometheus metrics of the server, served at `/metrics` (text format).
//! Only aggregate counts: no tenant, node or user names appear here.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template, e.g. `/api/v1/nodes/{id}` (never the raw path).
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub events: Family<ResultLabels, Counter>,
    pub samples: Counter,
    pub write_batch_nodes: Histogram,
    pub write_seconds: Histogram,
    pub auth_failures: Counter,
    pub rate_limited: Counter,
    pub nodes_online: Gauge,
    pub nodes_offline: Gauge,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("levee");
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            events: Family::default(),
            samples: Counter::default(),
            write_batch_nodes: batch_histogram(),
            write_seconds: latency_histogram(),
            auth_failures: Counter::default(),
            rate_limited: Counter::default(),
            nodes_online: Gauge::default(),
            nodes_offline: Gauge::default(),
            leader: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            m.http_duration.clone(),
        );
        registry.register(
            "ingest_events",
            "Agent events by result (accepted, duplicate)",
            m.events.clone(),
        );
        registry.register(
            "ingest_samples",
            "Per-second telemetry samples stored",
            m.samples.clone(),
        );
        registry.register(
            "db_write_batch_nodes",
            "Nodes per telemetry group commit",
            m.write_batch_nodes.clone(),
        );
        registry.register(
            "db_write_duration_seconds",
            "Duration of a telemetry group commit",
            m.write_seconds.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests with a missing, unknown or revoked credential",
            m.auth_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429",
            m.rate_limited.clone(),
        );
        registry.register(
            "nodes_online",
            "Enrolled nodes online",
            m.nodes_online.clone(),
        );
        registry.register(
            "nodes_offline",
            "Enrolled nodes offline",
            m.nodes_offline.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica runs the singleton jobs",
            m.leader.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

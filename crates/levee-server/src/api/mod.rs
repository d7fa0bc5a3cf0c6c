//! The HTTP API. Every route under `/api/v1` is declared with its OpenAPI
//! description next to the handler and registered through `utoipa-axum`, so
//! the served document (`/api/v1/openapi.json`) and the router cannot
//! disagree. Outside `/api/v1`: `/healthz` and `/metrics`.
//!
//! Access rules: agent routes take an agent key, all other routes a user's
//! API token; objects of another tenant are "not found" (404), never
//! "forbidden", so ids reveal nothing; roles gate writes (403).

pub mod admin;
pub mod agent;
pub mod bgp;
pub mod error;
pub mod extract;
pub mod incidents;
pub mod nodes;
pub mod system;

use crate::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::time::Instant;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Levee server API",
        description = "Control plane of Levee: agents report telemetry and events; operators query nodes, \
                       metrics, incidents, correlations, events and mitigations. Bearer tokens: API tokens \
                       (`lvt_...`) for people and scripts, agent keys (`lva_...`) for agents.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "agent", description = "Agent uplink (agent keys)"),
        (name = "auth", description = "Login, tokens, users, tenants"),
        (name = "nodes", description = "Node inventory, metrics, commands"),
        (name = "incidents", description = "Incidents, correlations, events, mitigations, PCAPs"),
        (name = "policy", description = "Tenant policy sent to agents"),
        (name = "bgp", description = "BGP escalation of the tenant (FlowSpec, RTBH, scrubbing), run by the server")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, format) in [("api_token", "lvt_..."), ("agent_key", "lva_...")] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format(format)
                        .build(),
                ),
            );
        }
    }
}

/// The `/api/v1` routes and their OpenAPI document.
pub fn api_routes(state: AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let pcap_limit = state.cfg.pcap_max_bytes;
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(agent::enroll))
        .routes(routes!(agent::telemetry))
        .routes(routes!(agent::events))
        .routes(routes!(agent::heartbeat))
        .routes(routes!(admin::login))
        .routes(routes!(admin::me))
        .routes(routes!(admin::list_tenants, admin::create_tenant))
        .routes(routes!(admin::get_tenant))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::get_user, admin::delete_user))
        .routes(routes!(admin::list_tokens, admin::create_token))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(
            admin::list_enrollment_tokens,
            admin::create_enrollment_token
        ))
        .routes(routes!(admin::delete_enrollment_token))
        .routes(routes!(admin::get_policy, admin::put_policy))
        .routes(routes!(bgp::get_bgp))
        .routes(routes!(bgp::put_thresholds))
        .routes(routes!(bgp::withdraw))
        .routes(routes!(nodes::list_nodes))
        .routes(routes!(nodes::get_node, nodes::delete_node))
        .routes(routes!(nodes::node_metrics))
        .routes(routes!(nodes::list_commands, nodes::create_command))
        .routes(routes!(incidents::list_incidents))
        .routes(routes!(incidents::get_incident))
        .routes(routes!(incidents::list_correlations))
        .routes(routes!(incidents::get_correlation))
        .routes(routes!(incidents::list_events))
        .routes(routes!(incidents::list_mitigations))
        .routes(routes!(incidents::get_mitigation))
        .routes(routes!(incidents::download_pcap))
        .split_for_parts();
    // PCAP uploads are the one large body; their route gets its own limit.
    let (pcap_router, pcap_doc) = OpenApiRouter::new()
        .routes(routes!(agent::upload_pcap))
        .split_for_parts();
    let mut doc = doc;
    doc.merge(pcap_doc);
    let router = router
        .layer(DefaultBodyLimit::max(state.cfg.body_limit_bytes))
        .merge(pcap_router.layer(DefaultBodyLimit::max(pcap_limit)));
    (router, doc)
}

/// The whole service: API, OpenAPI document, health, metrics, request metrics.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes(state.clone());
    let doc = std::sync::Arc::new(doc);
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", axum::routing::get(system::healthz))
        .route("/metrics", axum::routing::get(system::metrics))
        .fallback(system::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts and times every request by route template.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_duration
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&crate::metrics::HttpLabels {
            route,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// Page sizes: default and maximum.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// A `limit` parameter clamped to 1..=MAX_LIMIT (or a 400 naming it).
pub fn limit(raw: Option<i64>) -> Result<i64, error::ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(error::ApiError::field(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        )),
    }
}

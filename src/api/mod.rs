//! The HTTP surface: every VIS route under `/t/vbc.prod/vis/v1` and `/vis/v1` (trailing slash or
//! not), the ingestion route, `/healthz` and `/openapi.json`. Handlers are thin: parse, call the
//! store, shape the answer. Every error leaves in the VIS error shape ([`error`]).
//!
//! May depend on: `domain`, `metrics`, `telephony` (the call sink and the simulated telephony),
//! the `store::Store` trait (never a backend), axum/tower.

mod calls;
mod control;
pub mod error;
mod extract;
mod ingest;
mod params;
mod profile;
pub mod rate_limit;
mod webhooks;

use crate::domain::target::TargetPolicy;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::telephony::CallSink;
use crate::telephony::sim::SimTelephony;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use error::error_response;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::NormalizePathLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::BODY_LIMIT;
pub use rate_limit::RateLimit;

/// Settings the handlers need.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// How long a webhook lives after creation or renewal.
    pub webhook_ttl: Duration,
    /// How long an expired webhook is kept before it is deleted.
    pub purge_grace: Duration,
    /// Which delivery targets are allowed (webhook URLs that are refused IP literals get a 422).
    pub targets: TargetPolicy,
    /// Most webhooks one user may have (creating one more is a 422); 0: no cap.
    pub max_webhooks_per_user: u32,
}

/// What every handler receives.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<ApiSettings>,
    /// Signalled when webhooks are created or renewed, so the purge task can recompute its wake-up.
    pub webhooks_changed: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Requests per second per token, checked right after authentication.
    pub rate_limit: Arc<RateLimit>,
    /// Where call reports go (the ingestion route and the simulated telephony share it).
    pub sink: CallSink,
    pub sim: Arc<SimTelephony>,
}

/// The VIS prefixes every VIS route is served under.
pub const VIS_PREFIX: &str = "/t/vbc.prod/vis/v1";
pub const VIS_ALIAS: &str = "/vis/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callhook",
        description = "A self-hostable call-events platform, wire-compatible with the Vonage Integration \
            Platform (VIS) API. Every VIS route is also served under /vis/v1. Errors always use ErrorResponse.",
    ),
    modifiers(&BearerAuth),
    tags((name = "Webhooks"), (name = "Calls"), (name = "Events"), (name = "Users"), (name = "Accounts"),
        (name = "Ingestion", description = "callhook's own: how a telephony source reports calls"),
        (name = "Replay", description = "callhook's own: deliver skipped events again"),
        (name = "Simulated telephony", description = "callhook's own: make simulated calls ring users"),
        (name = "Operations"))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.info.license = None;
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn vis_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::delete))
        .routes(routes!(webhooks::renew))
        .routes(routes!(profile::user))
        .routes(routes!(profile::account))
        .routes(routes!(calls::list, control::place))
        .routes(routes!(calls::count))
        .routes(routes!(calls::get, control::end))
        .routes(routes!(control::answer))
        .routes(routes!(control::hold, control::unhold))
        .routes(routes!(control::vm_transfer))
        .routes(routes!(control::transfer))
        .routes(routes!(calls::events))
        .routes(routes!(calls::events_count))
        .routes(routes!(calls::event))
}

/// The status of a healthy server.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "health",
    summary = "Health check: 200 while the store answers",
    responses((status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The store does not answer", body = error::ErrorResponse)))]
async fn healthz(State(app): State<AppState>) -> Result<Json<Health>, error::ApiError> {
    app.store.ping().await?;
    Ok(Json(Health { status: "ok" }))
}

#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "metrics",
    summary = "Prometheus metrics of the delivery engine",
    responses((status = 200, description = "Prometheus text exposition", body = String,
            content_type = "text/plain; version=0.0.4"),
        (status = 503, description = "The store does not answer", body = error::ErrorResponse)))]
async fn metrics(State(app): State<AppState>) -> Result<Response, error::ApiError> {
    let backlog = app.store.backlog().await?;
    let now = crate::domain::Timestamp::now();
    let oldest = backlog
        .oldest
        .map(|t| Duration::from_millis(now.since(t) as u64));
    let mut response = app.metrics.render(backlog.pending, oldest).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

fn build() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(VIS_PREFIX, vis_routes())
        .routes(routes!(ingest::report))
        .routes(routes!(webhooks::replay))
        .routes(routes!(control::ring))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .split_for_parts();
    let (alias, _) = vis_routes().split_for_parts();
    (router.nest(VIS_ALIAS, alias), doc)
}

async fn no_route(request: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", request.method(), request.uri().path()),
        Vec::new(),
    )
}

/// Safety net: any error response that is not already JSON (a framework rejection, a 405)
/// is rewritten in the VIS error shape.
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed on this route"),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut answer = error_response(status, message, Vec::new());
    if let Some(allow) = response.headers().get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error",
        Vec::new(),
    )
}

/// The complete application: routes, OpenAPI, error shaping, panic catching, slash trimming.
pub fn app(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let (router, doc) = build();
    let doc = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    let router = router
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    let mut response = doc.as_str().to_owned().into_response();
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
            }),
        )
        .fallback(no_route)
        .layer(middleware::from_fn(json_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state);
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let service = axum::ServiceExt::<Request>::into_make_service(app(state));
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

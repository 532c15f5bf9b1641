//! `/self/webhooks`: create, list, get, delete and renew the caller's webhook subscriptions.

use super::AppState;
use super::error::{ApiError, Failures};
use super::extract::{Id, JsonBody, User};
use crate::domain::FieldError;
use crate::domain::Timestamp;
use crate::domain::webhook::{MetadataPolicy, SigningAlgo, Webhook, WebhookSpec, WebhookView};
use crate::store::{Created, Replay};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;

/// The body of a create request (documentation only: the handler validates field by field).
#[derive(utoipa::ToSchema)]
#[schema(as = WebhookCreate)]
#[allow(dead_code)]
pub struct WebhookCreateDoc {
    /// Absolute http(s) URL that receives the events.
    #[schema(example = "https://www.example.com/webhook")]
    url: String,
    /// Only `CALL` exists; defaults to `["CALL"]`.
    #[schema(example = json!(["CALL"]))]
    events: Option<Vec<String>>,
    /// Defaults to `HMAC_SHA256` when a `signingKey` is given, else `NONE`.
    signing_algo: Option<SigningAlgo>,
    signing_key: Option<String>,
    /// Defaults to `NONE`.
    metadata_policy: Option<MetadataPolicy>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook {id}"))
}

#[utoipa::path(post, path = "/self/webhooks", tag = "Webhooks", operation_id = "createWebhook",
    summary = "Create a new webhook subscription",
    request_body(content = WebhookCreateDoc, content_type = "application/json"),
    responses((status = 201, description = "Created", body = WebhookView), Failures),
    security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    User(owner): User,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let spec = WebhookSpec::try_from(&body).map_err(ApiError::Validation)?;
    if let Some(message) = app.settings.targets.refuse_literal(&spec.url) {
        return Err(ApiError::Validation(vec![FieldError::new("url", message)]));
    }
    let now = Timestamp::now();
    let expire_at = now.plus(app.settings.webhook_ttl);
    let webhook = Webhook {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: owner.account_id.clone(),
        user_id: owner.user_id.clone(),
        spec,
        expire_at,
        created_at: now,
        created_by: owner.user_id.clone(),
        renewed_at: None,
        renewed_by: None,
        purge_at: expire_at.plus(app.settings.purge_grace),
        statistics: Default::default(),
    };
    let cap = Some(app.settings.max_webhooks_per_user).filter(|&n| n > 0);
    if let Created::AtCap(existing) = app.store.create_webhook(&webhook, cap).await? {
        return Err(ApiError::Validation(vec![FieldError::new(
            "webhooks",
            format!(
                "this user already has {existing} webhooks, the most this server allows; \
                 delete one first"
            ),
        )]));
    }
    app.webhooks_changed.notify_one();
    Ok((StatusCode::CREATED, Json(WebhookView::from(&webhook))))
}

#[utoipa::path(get, path = "/self/webhooks", tag = "Webhooks", operation_id = "listWebhooks",
    summary = "List web hooks",
    responses((status = 200, description = "Every webhook of the caller", body = [WebhookView]), Failures),
    security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    User(owner): User,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let webhooks = app.store.list_webhooks(&owner).await?;
    Ok(Json(webhooks.iter().map(WebhookView::from).collect()))
}

#[utoipa::path(get, path = "/self/webhooks/{id}", tag = "Webhooks", operation_id = "viewWebhook",
    summary = "Get web hook details",
    params(("id" = String, Path, description = "Unique identifier of the webhook")),
    responses((status = 200, description = "The webhook", body = WebhookView), Failures),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<WebhookView>, ApiError> {
    let webhook = app
        .store
        .get_webhook(&owner, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(WebhookView::from(&webhook)))
}

#[utoipa::path(delete, path = "/self/webhooks/{id}", tag = "Webhooks", operation_id = "destroyWebhook",
    summary = "Remove a web hook",
    params(("id" = String, Path, description = "Unique identifier of the webhook")),
    responses((status = 204, description = "Deleted"), Failures),
    security(("bearer" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    if app.store.delete_webhook(&owner, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[utoipa::path(put, path = "/self/webhooks/{id}/renew", tag = "Webhooks", operation_id = "renewWebhook",
    summary = "Renews a web hook",
    description = "Moves expireAt and purgeAt forward, sets renewedAt/renewedBy and clears statistics.failed. Takes no body.",
    params(("id" = String, Path, description = "Webhook ID")),
    responses((status = 200, description = "The renewed webhook", body = WebhookView), Failures),
    security(("bearer" = [])))]
pub async fn renew(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
) -> Result<Json<WebhookView>, ApiError> {
    let now = Timestamp::now();
    let expire_at = now.plus(app.settings.webhook_ttl);
    let purge_at = expire_at.plus(app.settings.purge_grace);
    let webhook = app
        .store
        .renew_webhook(&owner, &id, now, expire_at, purge_at)
        .await?
        .ok_or_else(|| not_found(&id))?;
    app.webhooks_changed.notify_one();
    Ok(Json(WebhookView::from(&webhook)))
}

/// `{"replayed": n}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Replayed {
    replayed: u64,
}

#[utoipa::path(post, path = "/callhook/v1/webhooks/{id}/replay", tag = "Replay", operation_id = "replayWebhook",
    summary = "Deliver a webhook's skipped events again",
    description = "Queues again, in their original order, the deliveries this webhook skipped while it was \
        failed or expired (those whose event happened at or after `since`, or all). The webhook must be \
        live: renew it first (409 otherwise).",
    params(("id" = String, Path, description = "Webhook ID"),
        ("since" = Option<String>, Query, description = "RFC 3339 time, e.g. 2026-11-27T10:00:00Z")),
    responses((status = 200, description = "How many deliveries were queued again", body = Replayed), Failures),
    security(("bearer" = [])))]
pub async fn replay(
    State(app): State<AppState>,
    User(owner): User,
    Id(id): Id,
    RawQuery(query): RawQuery,
) -> Result<Json<Replayed>, ApiError> {
    let since = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "since")
        .map(|(_, v)| {
            Timestamp::parse(&v).ok_or_else(|| {
                ApiError::Validation(vec![FieldError::new(
                    "since",
                    "must be an RFC 3339 time, e.g. 2026-11-27T10:00:00Z",
                )])
            })
        })
        .transpose()?;
    match app
        .store
        .replay_skipped(&owner, &id, since, Timestamp::now())
        .await?
    {
        Replay::NoSuchWebhook => Err(not_found(&id)),
        Replay::NotLive => Err(ApiError::Conflict(
            "the webhook is failed or expired: renew it first".into(),
        )),
        Replay::Queued(replayed) => Ok(Json(Replayed { replayed })),
    }
}

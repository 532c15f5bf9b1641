//! `/self` and `/self/account`: the caller's user and account, shaped as in the VIS spec.

use super::AppState;
use super::error::{ApiError, Failures};
use super::extract::User;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// The built-in communications provider every user and account is attached to.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uci {
    id: i64,
    ucp_label: &'static str,
    health: Health,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
}

fn uci(kind: &'static str) -> Uci {
    Uci {
        id: 1,
        ucp_label: "callhook",
        health: Health { status: "OK" },
        kind,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleView {
    code: &'static str,
    name: &'static str,
}

/// `GET /self`. `acountLabel` is spelt as in the VIS spec.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserView {
    id: String,
    account_id: String,
    #[serde(rename = "acountLabel", skip_serializing_if = "Option::is_none")]
    acount_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_number: Option<String>,
    status: &'static str,
    ucis: Vec<Uci>,
    roles: Vec<RoleView>,
}

/// `GET /self/account`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Account)]
pub struct AccountView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    ucis: Vec<Uci>,
    status: &'static str,
}

#[utoipa::path(get, path = "/self", tag = "Users", operation_id = "getUser", summary = "User info",
    responses((status = 200, description = "The caller", body = UserView), Failures),
    security(("bearer" = [])))]
pub async fn user(
    State(app): State<AppState>,
    User(owner): User,
) -> Result<Json<UserView>, ApiError> {
    let profile = app.store.user_profile(&owner).await?.unwrap_or_default();
    Ok(Json(UserView {
        id: owner.user_id,
        account_id: owner.account_id,
        acount_label: profile.account_name,
        first_name: profile.first_name,
        last_name: profile.last_name,
        email_address: profile.email,
        contact_number: profile.contact_number,
        status: "ACTIVE",
        ucis: vec![uci("USER_UCI")],
        roles: vec![RoleView {
            code: "AU",
            name: "Account User",
        }],
    }))
}

#[utoipa::path(get, path = "/self/account", tag = "Accounts", operation_id = "getAccount", summary = "Account info",
    responses((status = 200, description = "The caller's account", body = AccountView), Failures),
    security(("bearer" = [])))]
pub async fn account(
    State(app): State<AppState>,
    User(owner): User,
) -> Result<Json<AccountView>, ApiError> {
    let profile = app
        .store
        .account_profile(&owner.account_id)
        .await?
        .unwrap_or_default();
    Ok(Json(AccountView {
        id: owner.account_id,
        name: profile.name,
        org: profile.org,
        ucis: vec![uci("ACCOUNT_UCI")],
        status: "ACTIVE",
    }))
}

//! Webhook fixtures: the seed's create body and the contract's `Webhook` key order.

use serde_json::{Value, json};

use super::Server;

/// The contract's key order of a `Webhook`.
pub const WEBHOOK_KEY_ORDER: [&str; 16] = [
    "id",
    "userId",
    "accountId",
    "url",
    "status",
    "events",
    "signingAlgo",
    "signingKey",
    "metadataPolicy",
    "expireAt",
    "createdAt",
    "createdBy",
    "renewedAt",
    "renewedBy",
    "purgeAt",
    "statistics",
];

/// The seed's create body, byte for byte in its whitespace style, with a concrete URL.
pub const SEED_BODY: &str = "{\n \"url\": \"https://example.ngrok.io/webhook\",\n \"events\": [\n \"CALL\"\n ],\n \"signingAlgo\": \"HMAC_SHA256\",\n \"signingKey\": \"string\",\n \"metadataPolicy\": \"NONE\"\n}";

/// The exact key list a webhook must have, given which optional keys are present.
pub fn webhook_keys(signing_key: bool, renewed: bool) -> Vec<&'static str> {
    WEBHOOK_KEY_ORDER
        .iter()
        .copied()
        .filter(|k| signing_key || *k != "signingKey")
        .filter(|k| renewed || (*k != "renewedAt" && *k != "renewedBy"))
        .collect()
}

/// The smallest valid create body.
pub fn minimal_webhook(url: &str) -> Value {
    json!({ "url": url })
}

/// Asserts the user has no webhook: a refused request stored nothing.
pub async fn assert_no_webhooks(server: &Server, token: &str, context: &str) {
    let list = server.webhooks(token).await;
    assert!(
        list.is_empty(),
        "{context}: bad request must store nothing, list is {list:?}"
    );
}

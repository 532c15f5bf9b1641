//! The `/self/webhooks` routes and the `Webhook` and `WebhookCreate` shapes.
//!
//! Decoding is lenient where real services differ: ids may be strings or integers, absent or
//! `null` values are `None`, unknown keys are ignored (the [`Answer`] keeps the body as sent).

use super::{Answer, ClientError, VisClient};
use serde::{Deserialize, Deserializer, Serialize};

/// A webhook subscription as the API returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(deserialize_with = "id")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_id")]
    pub user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub account_id: Option<String>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub signing_algo: Option<String>,
    #[serde(default)]
    pub signing_key: Option<String>,
    #[serde(default)]
    pub metadata_policy: Option<String>,
    #[serde(default)]
    pub expire_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub created_by: Option<String>,
    #[serde(default)]
    pub renewed_at: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub renewed_by: Option<String>,
    #[serde(default)]
    pub purge_at: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub statistics: Statistics,
}

/// A webhook's delivery statistics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    #[serde(default)]
    pub total_attempts: Option<u64>,
    #[serde(default)]
    pub total_successes: Option<u64>,
    #[serde(default)]
    pub total_failures: Option<u64>,
    /// True once a delivery failed for good: the webhook gets nothing until renewed or
    /// re-created.
    #[serde(default, deserialize_with = "or_default")]
    pub failed: bool,
    #[serde(default)]
    pub last_success: Option<String>,
    #[serde(default)]
    pub last_failure: Option<String>,
    #[serde(default)]
    pub last_http_error_code: Option<String>,
    #[serde(default)]
    pub last_error_message: Option<String>,
}

impl Webhook {
    /// `statistics.failed`.
    pub fn is_failed(&self) -> bool {
        self.statistics.failed
    }

    /// The create body that makes a fresh copy of this webhook (the seed's recovery recipe): the
    /// same `url`, `events`, `signingAlgo`, `signingKey` and `metadataPolicy`, absent ones left out.
    pub fn recreate_body(&self) -> WebhookCreate {
        WebhookCreate {
            url: self.url.clone(),
            events: self.events.clone(),
            signing_algo: self.signing_algo.clone(),
            signing_key: self.signing_key.clone(),
            metadata_policy: self.metadata_policy.clone(),
        }
    }
}

/// The body of `POST /self/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCreate {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_policy: Option<String>,
}

impl WebhookCreate {
    /// A webhook for `url` subscribed to `["CALL"]`, unsigned, default metadata policy.
    pub fn new(url: impl Into<String>) -> WebhookCreate {
        WebhookCreate {
            url: url.into(),
            events: Some(vec!["CALL".into()]),
            ..WebhookCreate::default()
        }
    }

    /// Signs deliveries with HMAC-SHA256 keyed with `key`.
    pub fn signing_key(mut self, key: impl Into<String>) -> WebhookCreate {
        self.signing_algo = Some("HMAC_SHA256".into());
        self.signing_key = Some(key.into());
        self
    }

    /// `NONE`, `HEADER` or `BODY`.
    pub fn metadata_policy(mut self, policy: impl Into<String>) -> WebhookCreate {
        self.metadata_policy = Some(policy.into());
        self
    }
}

impl VisClient {
    /// `GET /self/webhooks/`: every webhook of the token's user.
    pub async fn list_webhooks(&self) -> Result<Answer<Vec<Webhook>>, ClientError> {
        self.get(self.url(&["self", "webhooks", ""])).await
    }

    /// `POST /self/webhooks/`: 201 and the new webhook.
    pub async fn create_webhook(
        &self,
        body: &WebhookCreate,
    ) -> Result<Answer<Webhook>, ClientError> {
        self.post(self.url(&["self", "webhooks", ""]), body).await
    }

    /// `GET /self/webhooks/{id}`.
    pub async fn get_webhook(&self, id: &str) -> Result<Answer<Webhook>, ClientError> {
        self.get(self.url(&["self", "webhooks", id])).await
    }

    /// `DELETE /self/webhooks/{id}`: 204.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ClientError> {
        self.delete(self.url(&["self", "webhooks", id])).await
    }

    /// `PUT /self/webhooks/{id}/renew`: moves `expireAt` forward and clears `failed`.
    pub async fn renew_webhook(&self, id: &str) -> Result<Answer<Webhook>, ClientError> {
        self.put(self.url(&["self", "webhooks", id, "renew"])).await
    }
}

/// An id given as a string or an integer.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyId {
    Text(String),
    Number(serde_json::Number),
}

fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match AnyId::deserialize(d)? {
        AnyId::Text(s) => s,
        AnyId::Number(n) => n.to_string(),
    })
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<AnyId>::deserialize(d)?.map(|v| match v {
        AnyId::Text(s) => s,
        AnyId::Number(n) => n.to_string(),
    }))
}

/// `null` as the default value.
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The seed's example list entry (values filled in).
    const SEED_ENTRY: &str = r#"{"id":"w1","userId":"24785","accountId":"376","url":"https://x.ngrok.io/webhook",
      "status":"ACTIVE","events":["CALL"],"signingAlgo":"HMAC_SHA256","signingKey":"string",
      "metadataPolicy":"NONE","expireAt":"2030-06-21T11:06:21.038Z","createdAt":"2020-06-23T11:06:21.038Z",
      "purgeAt":"2040-09-16T11:06:21.038Z","statistics":{"totalAttempts":8,"totalSuccesses":5,
      "totalFailures":3,"failed":true,"lastSuccess":"2020-06-23T11:28:12.434Z",
      "lastFailure":"2020-06-23T17:21:48.207Z","lastHttpErrorCode":"500 INTERNAL_SERVER_ERROR",
      "lastErrorMessage":"500 INTERNAL SERVER ERROR: [<!DOCTYPE HTML>... (19777 bytes)]"}}"#;

    #[test]
    fn the_seeds_failed_webhook_decodes_and_recreates_with_the_same_settings() {
        let w: Webhook = serde_json::from_str(SEED_ENTRY).unwrap();
        assert!(w.is_failed());
        assert_eq!(w.statistics.total_attempts, Some(8));
        assert_eq!(
            serde_json::to_value(w.recreate_body()).unwrap(),
            json!({"url": "https://x.ngrok.io/webhook", "events": ["CALL"],
                   "signingAlgo": "HMAC_SHA256", "signingKey": "string", "metadataPolicy": "NONE"})
        );
    }

    #[test]
    fn integer_ids_nulls_and_unknown_keys_are_tolerated() {
        let w: Webhook = serde_json::from_value(json!({
            "id": 17, "userId": 24785, "accountId": null, "url": "https://x", "extra": {"a": 1},
            "statistics": null
        }))
        .unwrap();
        assert_eq!(w.id, "17");
        assert_eq!(w.user_id.as_deref(), Some("24785"));
        assert_eq!(w.account_id, None);
        assert!(!w.is_failed());
        assert_eq!(
            serde_json::to_value(w.recreate_body()).unwrap(),
            json!({"url": "https://x"})
        );
    }

    #[test]
    fn a_create_body_is_signed_only_when_a_key_is_given() {
        assert_eq!(
            serde_json::to_value(WebhookCreate::new("https://x")).unwrap(),
            json!({"url": "https://x", "events": ["CALL"]})
        );
        let signed = WebhookCreate::new("https://x")
            .signing_key("k")
            .metadata_policy("HEADER");
        assert_eq!(
            serde_json::to_value(signed).unwrap(),
            json!({"url": "https://x", "events": ["CALL"], "signingAlgo": "HMAC_SHA256",
                   "signingKey": "k", "metadataPolicy": "HEADER"})
        );
    }
}

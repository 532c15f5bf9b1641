//! The hardened outbound HTTP client: timeouts, at most 5 redirects (302 as GET, 307 as POST),
//! the target-address policy checked on every address actually dialled (after DNS, and on IP
//! literals in the URL and in redirects), no proxies, capped reading of answers, keep-alive pools.

use super::request::{self, BODY_EXCERPT, BodySize};
use crate::domain::target::TargetPolicy;
use crate::store::{DeliveryJob, Failure};
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Redirect hops followed before an attempt fails.
pub const MAX_REDIRECTS: usize = 5;
/// Error bodies are read up to this size to report their length; the rest is not read.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Success bodies are read (and dropped) up to this size so the connection can be reused.
const MAX_DRAIN: usize = 64 * 1024;

/// The User-Agent of every delivery.
pub const USER_AGENT: &str = concat!("callhook/", env!("CARGO_PKG_VERSION"));

/// Client settings.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub targets: TargetPolicy,
}

/// A delivery target that the address policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to addresses the target policy ({policy}) refuses")]
struct TargetRefused {
    host: String,
    policy: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_REDIRECTS} redirects")]
struct TooManyRedirects;

/// Resolves names, keeping only the addresses the policy allows.
struct PolicyResolver {
    policy: TargetPolicy,
    /// Name lookups run on Tokio's blocking threads, which the SQLite reads share: a few slow
    /// or hanging resolvers (a webhook on a badly resolving name) must never take them all.
    lookups: Arc<Semaphore>,
}

/// Name lookups in progress at once, at most (the blocking threads number 16).
const LOOKUPS: usize = 4;

impl PolicyResolver {
    fn new(policy: TargetPolicy) -> PolicyResolver {
        PolicyResolver {
            policy,
            lookups: Arc::new(Semaphore::new(LOOKUPS)),
        }
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let lookups = self.lookups.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let _turn = lookups.acquire_owned().await?;
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                let refused = TargetRefused {
                    host,
                    policy: policy.as_str(),
                };
                return Err(Box::new(refused) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn ip_literal(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Sends deliveries.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    targets: TargetPolicy,
}

impl Sender {
    pub fn new(settings: ClientSettings) -> Result<Sender, reqwest::Error> {
        // reqwest is built without a default crypto provider; ring is ours. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let targets = settings.targets;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(TooManyRedirects);
            }
            match ip_literal(attempt.url()) {
                Some(ip) if !targets.allows(ip) => attempt.error(TargetRefused {
                    host: ip.to_string(),
                    policy: targets.as_str(),
                }),
                _ => attempt.follow(),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.response_timeout)
            .timeout(settings.connect_timeout + settings.response_timeout)
            .redirect(redirects)
            .dns_resolver(Arc::new(PolicyResolver::new(targets)))
            .no_proxy()
            .tcp_nodelay(true)
            // Below the 5 s keep-alive timeout of Node.js servers, so an idle connection is not reused
            // just as the receiver closes it.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()?;
        Ok(Sender { client, targets })
    }

    /// One attempt of `job`: the status of a 2xx answer, else what went wrong (in at most
    /// [`request::MAX_FAILURE_MESSAGE`] bytes).
    pub async fn send(&self, job: &DeliveryJob) -> Result<u16, Failure> {
        self.attempt(job).await.map_err(request::capped)
    }

    async fn attempt(&self, job: &DeliveryJob) -> Result<u16, Failure> {
        let url = reqwest::Url::parse(&job.url).map_err(|e| Failure {
            code: "INVALID_URL".into(),
            message: format!("the webhook URL cannot be used: {e}"),
        })?;
        if let Some(ip) = ip_literal(&url).filter(|ip| !self.targets.allows(*ip)) {
            return Err(refused(&ip.to_string(), self.targets));
        }
        let outgoing = request::build(job);
        let mut builder = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(outgoing.body);
        for (name, value) in outgoing.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| describe(&e, self.targets))?;
        let status = response.status();
        if status.is_success() {
            let mut drained = 0;
            while drained < MAX_DRAIN {
                match response.chunk().await {
                    Ok(Some(chunk)) => drained += chunk.len(),
                    _ => break,
                }
            }
            return Ok(status.as_u16());
        }
        let declared = response.content_length();
        let mut excerpt = Vec::new();
        let mut total = 0usize;
        let complete = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len();
                    if excerpt.len() < BODY_EXCERPT * 4 {
                        excerpt.extend_from_slice(&chunk[..chunk.len().min(BODY_EXCERPT * 4)]);
                    }
                    if total > MAX_ERROR_BODY {
                        break false;
                    }
                }
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        let size = match (complete, declared) {
            (true, _) => BodySize::Exact(total),
            (false, Some(n)) => BodySize::Exact(n as usize),
            (false, None) => BodySize::AtLeast(total),
        };
        Err(request::http_failure(
            status.as_u16(),
            status.canonical_reason(),
            &excerpt,
            size,
        ))
    }
}

fn refused(host: &str, policy: TargetPolicy) -> Failure {
    Failure {
        code: "TARGET_NOT_ALLOWED".into(),
        message: format!(
            "{host} is not an allowed delivery target under --targets {}",
            policy.as_str()
        ),
    }
}

/// Turns a transport error into a failure with a clear code.
fn describe(e: &reqwest::Error, policy: TargetPolicy) -> Failure {
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    let mut io_kind = None;
    while let Some(cause) = source {
        if let Some(r) = cause.downcast_ref::<TargetRefused>() {
            return refused(&r.host, policy);
        }
        if cause.downcast_ref::<TooManyRedirects>().is_some() {
            return Failure {
                code: "TOO_MANY_REDIRECTS".into(),
                message: format!("gave up after {MAX_REDIRECTS} redirects"),
            };
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        source = cause.source();
    }
    let detail = full_chain(e);
    let (code, message) = if e.is_connect() && e.is_timeout() {
        ("CONNECT_TIMEOUT", format!("connecting timed out: {detail}"))
    } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        (
            "CONNECTION_REFUSED",
            format!("connection refused: {detail}"),
        )
    } else if e.is_timeout() {
        ("RESPONSE_TIMEOUT", format!("no answer in time: {detail}"))
    } else if e.is_connect() {
        ("CONNECTION_ERROR", format!("cannot connect: {detail}"))
    } else {
        (
            "CONNECTION_ERROR",
            format!("the connection failed: {detail}"),
        )
    };
    Failure {
        code: code.into(),
        message,
    }
}

fn full_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

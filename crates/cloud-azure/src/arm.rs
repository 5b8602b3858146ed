//! A thin Azure Resource Manager client over `azure_core`'s pipeline: requests, long-running
//! operations, `nextLink` paging and ARM error bodies mapped to [`BackendError`] kinds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::HeaderName;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, RawResponse, Request, Url,
};
use frankenetes_compute::{BackendError, BackendErrorKind};
use serde_json::Value;

use crate::AciConfig;

/// The token scope of Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// Refuses any request that is not HTTPS to the configured ARM host and port, so the bearer
/// token (added by the next policy) never reaches another host, whatever URL a response names.
#[derive(Debug)]
struct HostGuard {
    origin: String,
}

#[async_trait::async_trait]
impl Policy for HostGuard {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let origin = origin_of(request.url());
        if origin != self.origin {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                format!(
                    "refusing to send the ARM token to {origin}: only {} is configured",
                    self.origin
                ),
            ));
        }
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// `scheme://host:port` of a URL (port always explicit).
pub(crate) fn origin_of(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// One response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// The ARM client: the configured endpoint, a pipeline with retry, the host guard and the
/// bearer token policy.
#[derive(Debug, Clone)]
pub(crate) struct Arm {
    pipeline: Pipeline,
    pub(crate) config: AciConfig,
}

impl Arm {
    pub(crate) fn new(config: AciConfig, credential: Arc<dyn TokenCredential>) -> Self {
        let guard: Arc<dyn Policy> = Arc::new(HostGuard {
            origin: origin_of(&config.endpoint),
        });
        let auth: Arc<dyn Policy> =
            Arc::new(BearerTokenAuthorizationPolicy::new(credential, [ARM_SCOPE]));
        let options: ClientOptions = config.client_options.clone();
        let pipeline = Pipeline::new(
            option_env!("CARGO_PKG_NAME"),
            option_env!("CARGO_PKG_VERSION"),
            options,
            Vec::new(),
            vec![guard, auth],
            None,
        );
        Self { pipeline, config }
    }

    /// `{endpoint}{path}?api-version={version}`.
    pub(crate) fn url(&self, path: &str, api_version: &str) -> Result<Url, BackendError> {
        let mut url = self.config.endpoint.join(path).map_err(|e| {
            BackendError::new(
                BackendErrorKind::Other,
                format!("azure: bad URL {path}: {e}"),
            )
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        Ok(url)
    }

    /// Follows a URL the service handed back (LRO, `nextLink`) only when it is on the
    /// configured ARM origin.
    pub(crate) fn follow(&self, what: &str, link: &str) -> Result<Url, BackendError> {
        let url = Url::parse(link).map_err(|e| {
            BackendError::new(
                BackendErrorKind::Other,
                format!("azure: {what} is not a URL ({e})"),
            )
        })?;
        let want = origin_of(&self.config.endpoint);
        if origin_of(&url) != want {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!(
                    "azure: {what} points at {}, not the configured ARM endpoint {want}; refusing to send the token there",
                    origin_of(&url)
                ),
            ));
        }
        Ok(url)
    }

    /// Sends one request (retried by the pipeline on 408/429/5xx and connection errors) and
    /// reads the whole reply. `what` names the call in errors.
    pub(crate) async fn send(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, BackendError> {
        let mut req = Request::new(url, method);
        req.insert_header("accept", "application/json");
        if let Some(b) = body {
            req.insert_header("content-type", "application/json");
            let bytes = serde_json::to_vec(b).map_err(|e| {
                BackendError::new(BackendErrorKind::Other, format!("azure: {what}: {e}"))
            })?;
            req.set_body(bytes);
        }
        let resp: RawResponse = self
            .pipeline
            .send(
                &Context::new(),
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| transport_error(what, &e))?;
        let status = u16::from(resp.status());
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
            .collect();
        let body = resp.into_body().to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends and maps any non-2xx reply to an error.
    pub(crate) async fn call(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, BackendError> {
        let reply = self.send(what, method, url, body).await?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(arm_error(what, &reply))
        }
    }

    /// Waits for a long-running operation started by `first` to finish: follows
    /// `Azure-AsyncOperation` when present, else `Location`; honours `Retry-After` (capped by
    /// the poll options) and gives up after the poll timeout.
    pub(crate) async fn wait(&self, what: &str, first: &Reply) -> Result<(), BackendError> {
        let (link, async_op) = match (
            first.header("azure-asyncoperation"),
            first.header("location"),
        ) {
            (Some(a), _) => (a.to_owned(), true),
            (None, Some(l)) if first.status == 202 || first.status == 201 => (l.to_owned(), false),
            _ => return Ok(()),
        };
        let url = self.follow(&format!("{what}: operation URL"), &link)?;
        let start = Instant::now();
        let mut delay = self.poll_delay(first.retry_after());
        loop {
            if start.elapsed() + delay > self.config.poll.timeout {
                return Err(BackendError::transient(
                    format!(
                        "azure: {what}: still running after {}s; run the command again to keep waiting",
                        start.elapsed().as_secs()
                    ),
                    Some(delay),
                ));
            }
            tokio::time::sleep(delay).await;
            let reply = self
                .send(&format!("{what}: poll"), Method::Get, url.clone(), None)
                .await?;
            if async_op {
                if !(200..300).contains(&reply.status) {
                    return Err(arm_error(what, &reply));
                }
                let body = reply.json();
                let status = body.get("status").and_then(Value::as_str).unwrap_or("");
                match status {
                    "Succeeded" => return Ok(()),
                    "Failed" | "Canceled" => return Err(operation_failed(what, status, &body)),
                    _ => {}
                }
            } else {
                match reply.status {
                    202 => {}
                    200..=299 => return Ok(()),
                    _ => return Err(arm_error(what, &reply)),
                }
            }
            delay = self.poll_delay(reply.retry_after());
        }
    }

    fn poll_delay(&self, hint: Option<Duration>) -> Duration {
        let p = &self.config.poll;
        hint.unwrap_or(p.interval).clamp(p.interval, p.max_delay)
    }

    /// Every item of a pageable list, following `nextLink` (on the ARM origin only).
    pub(crate) async fn list_all(
        &self,
        what: &str,
        first: Url,
    ) -> Result<Vec<Value>, BackendError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 1000 {
                return Err(BackendError::new(
                    BackendErrorKind::Other,
                    format!(
                        "azure: {what}: more than 1000 pages; the service keeps sending nextLink"
                    ),
                ));
            }
            let reply = self.call(what, Method::Get, url, None).await?;
            let mut body = reply.json();
            if let Some(Value::Array(v)) = body.get_mut("value").map(Value::take) {
                items.extend(v);
            }
            if let Some(link) = body.get("nextLink").and_then(Value::as_str)
                && !link.is_empty()
            {
                next = Some(self.follow(&format!("{what}: nextLink"), link)?);
            }
        }
        Ok(items)
    }
}

/// The header carrying ARM's error code when the body has none.
const X_MS_ERROR_CODE: HeaderName = HeaderName::from_static("x-ms-error-code");

/// Maps an ARM error reply to a [`BackendError`], keeping ARM's code and message.
pub(crate) fn arm_error(what: &str, reply: &Reply) -> BackendError {
    let body = reply.json();
    let err = body.get("error").unwrap_or(&Value::Null);
    let code = err
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| reply.header(X_MS_ERROR_CODE.as_str()))
        .unwrap_or("")
        .to_owned();
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut e = map_code(what, reply.status, &code, &message);
    if e.kind == BackendErrorKind::Transient {
        e.retry_after = reply.retry_after();
    }
    e
}

/// The kind of an ARM error, from its HTTP status, code and message.
pub(crate) fn map_code(what: &str, status: u16, code: &str, message: &str) -> BackendError {
    use BackendErrorKind as K;
    let lower = message.to_ascii_lowercase();
    let (kind, hint) = match code {
        "ResourceNotFound" | "ResourceGroupNotFound" | "NotFound" => (K::NotFound, ""),
        "DnsNameLabelAlreadyTaken" => (
            K::AlreadyExists,
            "; DNS labels are unique per region across Azure: change spec.backend.azure.dnsLabelPrefix",
        ),
        "InaccessibleImage" => (
            K::Other,
            "; check the image name and tag, and that the registry is public or has credentials",
        ),
        "QuotaExceeded" | "OperationNotAllowed" if lower.contains("quota") => (
            K::QuotaExceeded,
            "; ask for more quota or use another region (spec.backend.azure.location)",
        ),
        "ServiceUnavailable" | "ContainerGroupQuotaReached" if lower.contains("quota") => (
            K::QuotaExceeded,
            "; ask for more quota or use another region (spec.backend.azure.location)",
        ),
        "ServiceUnavailable"
        | "InsufficientCapacity"
        | "RegistryErrorResponse"
        | "InternalServerError"
        | "TooManyRequests" => (K::Transient, ""),
        "AuthorizationFailed"
        | "InvalidAuthenticationToken"
        | "ExpiredAuthenticationToken"
        | "AuthenticationFailed" => (
            K::Other,
            "; check spec.backend.azure.credential and that it has Contributor on the resource group",
        ),
        "MissingSubscriptionRegistration" => (
            K::Other,
            "; register the provider: az provider register -n Microsoft.ContainerInstance (and Microsoft.Storage)",
        ),
        _ => match status {
            404 => (K::NotFound, ""),
            408 | 429 | 500..=599 => (K::Transient, ""),
            _ => (K::Other, ""),
        },
    };
    let code_part = if code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("{code} (HTTP {status})")
    };
    let msg = if message.is_empty() {
        format!("azure: {what}: {code_part}{hint}")
    } else {
        format!("azure: {what}: {code_part}: {message}{hint}")
    };
    BackendError::new(kind, msg)
}

/// A failed or canceled async operation: ARM's `error` plus ACI's `properties.events`.
fn operation_failed(what: &str, status: &str, body: &Value) -> BackendError {
    let err = body.get("error").unwrap_or(&Value::Null);
    let code = err.get("code").and_then(Value::as_str).unwrap_or(status);
    let message = err.get("message").and_then(Value::as_str).unwrap_or("");
    let mut e = map_code(&format!("{what}: operation {status}"), 200, code, message);
    let events: Vec<String> = body
        .pointer("/properties/events")
        .and_then(Value::as_array)
        .map(|evs| {
            evs.iter()
                .filter_map(|ev| ev.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !events.is_empty() {
        e.message = format!("{} [events: {}]", e.message, events.join(", "));
    }
    if e.kind == BackendErrorKind::NotFound {
        e.kind = BackendErrorKind::Other;
    }
    e
}

/// A transport or credential failure (after the pipeline's retries).
fn transport_error(what: &str, e: &azure_core::Error) -> BackendError {
    use azure_core::error::ErrorKind as E;
    match e.kind() {
        E::Io | E::Connection => {
            BackendError::transient(format!("azure: {what}: cannot reach ARM: {e}"), None)
        }
        E::Credential => BackendError::new(
            BackendErrorKind::Other,
            format!(
                "azure: {what}: no token: {e}; check spec.backend.azure.credential (`az login` for azureCli)"
            ),
        ),
        _ => BackendError::new(BackendErrorKind::Other, format!("azure: {what}: {e}")),
    }
}

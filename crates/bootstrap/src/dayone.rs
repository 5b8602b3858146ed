//! Day one on a running cluster, through the `kube` crate (rustls): the day-one objects applied
//! with server-side apply under one field manager — `super-admin.conf` only for the binding
//! that gives `admin.conf`'s group its rights, `admin.conf` for the rest — and bootstrap tokens
//! (create with a TTL, list, delete) with the `kubeadm join` line that uses them.
//!
//! ```no_run
//! use frankenetes_bootstrap::dayone::{self, ApplyOptions};
//! use frankenetes_manifests::addons::{self, AddonOptions};
//! use frankenetes_pki::{Pki, PkiPlan};
//! use frankenetes_spec::ClusterSpec;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = ClusterSpec::example();
//! let bundle = std::path::Path::new(".frankenetes/kubelius/bundle");
//! let (pki, _) = frankenetes_pki::sync(&PkiPlan::from(&spec), bundle, Default::default())?;
//! let objects = addons::objects(&spec, &pki, &AddonOptions::default())?;
//! let admin = dayone::client(&bundle.join("cluster/admin.conf"), None).await?;
//! let super_admin = dayone::client(&bundle.join("cluster/super-admin.conf"), None).await?;
//! let report = dayone::apply(&objects, &admin, &super_admin, &ApplyOptions::default()).await?;
//! assert_eq!(report.applied.len(), objects.len());
//!
//! // A token for a worker, and the line to run there.
//! let token = dayone::create_token(&admin, Some(std::time::Duration::from_secs(3600)), "worker-01").await?;
//! let line = dayone::join_command(&spec, pki.ca(frankenetes_pki::CaId::Kubernetes).unwrap().cert_pem(), &token)?;
//! println!("{}", line.as_str());   // the user's to see; never logged
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use frankenetes_manifests::addons::{Credential, FIELD_MANAGER, Object};
use frankenetes_manifests::token::{self, BootstrapToken};
use frankenetes_spec::ClusterSpec;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use zeroize::Zeroizing;

/// Errors of the day-one phase and of the token commands; each names the object or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kubeconfig could not be read or used.
    #[error("{}: {message}", .path.display())]
    Kubeconfig {
        /// The kubeconfig.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The apiserver refused an object.
    #[error("{object}: {message}")]
    Rejected {
        /// `ClusterRoleBinding kubeadm:cluster-admins`.
        object: String,
        /// The HTTP status.
        status: u16,
        /// What the apiserver said and what to do.
        message: String,
    },
    /// The apiserver could not be reached (after retrying).
    #[error("{object}: cannot reach the apiserver: {message}")]
    Unreachable {
        /// The object being applied.
        object: String,
        /// The transport error.
        message: String,
    },
    /// Bad input (a token id, the CA).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A `kube` client for a kubeconfig, optionally talking to `server` (`https://host:port`)
/// instead of the kubeconfig's (the sequencer uses one apiserver directly, as its `/readyz`
/// gate does). The server's certificate is verified against the kubeconfig's CA.
pub async fn client(kubeconfig: &Path, server: Option<&str>) -> Result<kube::Client, Error> {
    crate::install_crypto_provider();
    let err = |message: String| Error::Kubeconfig {
        path: kubeconfig.to_owned(),
        message,
    };
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| err(e.to_string()))?;
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| err(e.to_string()))?;
    if let Some(s) = server {
        cfg.cluster_url = s.parse().map_err(|e| err(format!("server {s}: {e}")))?;
    }
    cfg.read_timeout = Some(Duration::from_secs(20));
    kube::Client::try_from(cfg).map_err(|e| err(e.to_string()))
}

/// How [`apply`] retries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// How long an object is retried on answers that clear up by themselves: 403 with
    /// `admin.conf` (the new binding reaches the authorizer's cache), 404 (a system namespace
    /// not created yet), 429, 5xx, and connection errors. 409 is never retried.
    pub retry_for: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            retry_for: Duration::from_secs(30),
        }
    }
}

impl ApplyOptions {
    /// Retries for `d` (zero: never).
    #[must_use]
    pub fn retry_for(mut self, d: Duration) -> Self {
        self.retry_for = d;
        self
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Each object applied (`ConfigMap kube-public/cluster-info`), in order.
    pub applied: Vec<String>,
    /// Requests sent, retries included.
    pub attempts: usize,
}

fn resource(o: &Object) -> ApiResource {
    let (group, version) = match o.api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), o.api_version.clone()),
    };
    ApiResource {
        group,
        version,
        api_version: o.api_version.clone(),
        kind: o.kind.clone(),
        plural: o.plural.clone(),
    }
}

fn credential_name(c: Credential) -> &'static str {
    match c {
        Credential::SuperAdmin => "super-admin.conf",
        _ => "admin.conf",
    }
}

/// Why a refusal happened and what to do, per status.
fn explain(object: &str, credential: Credential, status: &kube::core::Status) -> Error {
    let said = if status.message.is_empty() {
        status.reason.clone()
    } else {
        status.message.clone()
    };
    let message = match status.code {
        403 => format!(
            "forbidden for {} ({said}); {}",
            credential_name(credential),
            match credential {
                Credential::SuperAdmin =>
                    "super-admin.conf must be in system:masters: regenerate it with `frankenetes pki`",
                _ =>
                    "admin.conf's group kubeadm:cluster-admins needs the ClusterRoleBinding kubeadm:cluster-admins (applied first, with super-admin.conf)",
            }
        ),
        409 => format!(
            "conflict: another field manager owns fields that {FIELD_MANAGER} sets ({said}); \
             remove them from the object, or take them over with `kubectl apply --server-side --force-conflicts --field-manager={FIELD_MANAGER}`"
        ),
        code => format!(
            "the apiserver answered {code} {} ({said}); check its log and run `frankenetes up` again",
            status.reason
        ),
    };
    Error::Rejected {
        object: object.to_owned(),
        status: status.code,
        message,
    }
}

fn retryable(credential: Credential, status: u16) -> bool {
    matches!(status, 404 | 429 | 500..=599) || (status == 403 && credential == Credential::Admin)
}

/// Applies `objects` in order with server-side apply (field manager [`FIELD_MANAGER`], no
/// forced conflicts), each with its [`Credential`]. Re-running sends the same applies and
/// changes nothing. The first failure stops it and names the object.
pub async fn apply(
    objects: &[Object],
    admin: &kube::Client,
    super_admin: &kube::Client,
    opts: &ApplyOptions,
) -> Result<ApplyReport, Error> {
    let mut report = ApplyReport::default();
    let params = PatchParams::apply(FIELD_MANAGER);
    for o in objects {
        let client = match o.credential {
            Credential::SuperAdmin => super_admin,
            _ => admin,
        };
        let ar = resource(o);
        let api: Api<DynamicObject> = match &o.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let what = o.to_string();
        let deadline = Instant::now() + opts.retry_for;
        let mut delay = Duration::from_millis(100);
        loop {
            report.attempts += 1;
            let err = match api.patch(&o.name, &params, &Patch::Apply(&o.body)).await {
                Ok(_) => break,
                Err(kube::Error::Api(status)) => {
                    if retryable(o.credential, status.code) && Instant::now() < deadline {
                        tracing::debug!(object = %what, code = status.code, "retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    explain(&what, o.credential, &status)
                }
                Err(e) => {
                    if Instant::now() < deadline {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    Error::Unreachable {
                        object: what.clone(),
                        message: transport_cause(&e),
                    }
                }
            };
            return Err(err);
        }
        tracing::debug!(object = %what, credential = credential_name(o.credential), "applied");
        report.applied.push(what);
    }
    Ok(report)
}

/// A bootstrap token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The public id.
    pub id: String,
    /// RFC 3339 expiry, if any.
    pub expiration: Option<String>,
    /// `authentication`, `signing`.
    pub usages: Vec<String>,
    /// Extra groups.
    pub groups: Vec<String>,
    /// What it is for.
    pub description: String,
}

fn secrets(client: &kube::Client) -> Api<Secret> {
    Api::namespaced(client.clone(), "kube-system")
}

fn api_error(object: &str, e: kube::Error) -> Error {
    match e {
        kube::Error::Api(status) => explain(object, Credential::Admin, &status),
        e => Error::Unreachable {
            object: object.to_owned(),
            message: transport_cause(&e),
        },
    }
}

/// What went wrong under a transport error, in a sentence: the innermost causes
/// (`Connection refused (os error 111)`), not the client library's wrappers
/// (`ServiceError: client error (Connect)`).
pub(crate) fn transport_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        chain.push(c.to_string());
        cur = c.source();
    }
    // The last two links name the cause (`tcp connect error: Connection refused`).
    let tail: Vec<&String> = chain.iter().rev().take(2).collect();
    match tail.as_slice() {
        [last, before] if !before.contains(last.as_str()) => format!("{before}: {last}"),
        [last, ..] => (*last).clone(),
        [] => String::new(),
    }
}

/// Makes a new bootstrap token on the running cluster (`admin.conf`'s client), valid for `ttl`
/// (`None`: never expires — prefer a TTL), in kubeadm's default node-token group. A new id is
/// drawn if one exists already.
pub async fn create_token(
    client: &kube::Client,
    ttl: Option<Duration>,
    description: &str,
) -> Result<BootstrapToken, Error> {
    let expiration = match ttl {
        Some(d) => Some(
            time::OffsetDateTime::now_utc()
                + time::Duration::try_from(d).map_err(|e| Error::Invalid(format!("--ttl: {e}")))?,
        ),
        None => None,
    };
    for _ in 0..5 {
        let t = BootstrapToken::generate().map_err(|e| Error::Invalid(e.to_string()))?;
        let secret = t.to_secret(expiration, description);
        let what = format!("Secret kube-system/{}", t.secret_name());
        match secrets(client)
            .create(&PostParams::default(), &secret)
            .await
        {
            Ok(_) => return Ok(t),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(api_error(&what, e)),
        }
    }
    Err(Error::Invalid(
        "five token ids in a row already existed; try again".into(),
    ))
}

fn field(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// The cluster's bootstrap tokens (ids, expiry, usages, groups; never secrets), by id.
pub async fn list_tokens(client: &kube::Client) -> Result<Vec<TokenInfo>, Error> {
    let lp = ListParams::default().fields(&format!("type={}", token::SECRET_TYPE));
    let list = secrets(client)
        .list(&lp)
        .await
        .map_err(|e| api_error("Secrets in kube-system", e))?;
    let mut out: Vec<TokenInfo> = list
        .items
        .iter()
        .filter(|s| s.type_.as_deref() == Some(token::SECRET_TYPE))
        .filter_map(|s| {
            let id = field(s, "token-id")?;
            let usages = ["authentication", "signing"]
                .into_iter()
                .filter(|u| field(s, &format!("usage-bootstrap-{u}")).as_deref() == Some("true"))
                .map(str::to_owned)
                .collect();
            Some(TokenInfo {
                id,
                expiration: field(s, "expiration"),
                usages,
                groups: field(s, "auth-extra-groups")
                    .map(|g| g.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
                description: field(s, "description").unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Deletes a bootstrap token given its id or the whole `id.secret`. `Ok(false)`: there was none.
pub async fn delete_token(client: &kube::Client, id_or_token: &str) -> Result<bool, Error> {
    let id = if id_or_token.contains('.') {
        BootstrapToken::parse(id_or_token)
            .map_err(|e| Error::Invalid(e.to_string()))?
            .id()
            .to_owned()
    } else if BootstrapToken::is_valid_id(id_or_token) {
        id_or_token.to_owned()
    } else {
        return Err(Error::Invalid(format!(
            "{id_or_token:?} is not a token id ([a-z0-9]{{6}})"
        )));
    };
    let name = format!("{}{id}", token::SECRET_PREFIX);
    match secrets(client)
        .delete(&name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(api_error(&format!("Secret kube-system/{name}"), e)),
    }
}

/// The `kubeadm join` line for `token`: the spec's control-plane endpoint and the pin of the
/// cluster CA (`ca_pem`, the bundle's `cluster/pki/ca.crt`). It holds the secret.
pub fn join_command(
    spec: &ClusterSpec,
    ca_pem: &str,
    token: &BootstrapToken,
) -> Result<Zeroizing<String>, Error> {
    let hash = token::ca_cert_hash(ca_pem).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(token::join_command(
        &spec.control_plane_endpoint().to_string(),
        token,
        &hash,
    ))
}

impl fmt::Display for TokenInfo {
    /// One line: id, expiry, usages, groups, description.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {:<22} {:<27} {} {}",
            self.id,
            self.expiration.as_deref().unwrap_or("<never>"),
            self.usages.join(","),
            self.groups.join(","),
            self.description
        )
    }
}

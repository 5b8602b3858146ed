//! A fake Azure Resource Manager on 127.0.0.1, for tests and for the `aci_control_plane`
//! example's `--replay`: HTTPS with a certificate from a throwaway CA (made by
//! `frankenetes-pki`), answering with the official ARM example payloads (`fixtures/`, compiled
//! in; absolute URLs rewritten to itself) and recording every request.
//!
//! Two layers: scripted replies (method + path fragment → reply, consumed in order) for LRO,
//! throttling, errors and paging; under them a small stateful model of container groups (PUT
//! stores, GET/list return, DELETE removes, stop/start change the state) so that the compute
//! conformance suite and whole control-plane lifecycles run. Everything the model answers is
//! shaped like the official examples. Subscription [`SUB`], resource group [`RG`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use frankenetes_cloud_azure::testing::FakeArm;
//! use frankenetes_compute::{ClusterTag, ComputeBackend};
//!
//! let arm = FakeArm::start().await?;
//! let backend = arm.backend();
//! assert!(backend.list(&ClusterTag::new("demo")).await.expect("list").is_empty());
//! assert_eq!(arm.recorded()[0].method, "GET");
//! # Ok(()) }
//! ```
//!
//! Not a stable API: it changes with the tests that use it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{AciBackend, AciConfig, PollOptions};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The subscription the replay serves (the examples' all-zero id).
pub const SUB: &str = "00000000-0000-0000-0000-000000000000";
/// The resource group the replay serves.
pub const RG: &str = "demo";
/// The bearer token [`FakeCredential`] hands out (tests check it is never logged).
pub const TOKEN: &str = "replay-bearer-token-do-not-log";

/// An official example payload (or a `synthesized/` one) by file name, parsed.
///
/// # Panics
/// On a name that is not in `fixtures/`.
pub fn fixture(name: &str) -> Value {
    let text = crate::fixtures::text(name).unwrap_or_else(|| panic!("no fixture {name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

/// One reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers (`https://management.azure.com` in values is rewritten to the server).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
}

impl Reply {
    /// A reply with a status and an optional body.
    pub fn new(status: u16, body: Option<Value>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }
    /// Sets a header, replacing any of the same name (names are case-insensitive): a fixture's
    /// own `Azure-AsyncOperation`, say, pointing at management.azure.com.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        self.headers.push((k.into(), v.into()));
        self
    }
    /// `responses.<status>` of a fixture file (`default` for the synthesized errors, served
    /// with `status`).
    pub fn from_fixture(file: &str, key: &str, status: u16) -> Self {
        let f = fixture(file);
        let r = &f["responses"][key];
        assert!(!r.is_null(), "{file} has no response {key}");
        let headers = r
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            status,
            headers,
            body: r.get("body").cloned(),
        }
    }
}

struct Script {
    method: &'static str,
    path_contains: String,
    reply: Reply,
}

#[derive(Default)]
struct State {
    scripts: VecDeque<Script>,
    groups: BTreeMap<String, Value>,
    ops: BTreeMap<String, Value>,
    recorded: Vec<Recorded>,
    next_op: u32,
    page_size: usize,
}

/// The server; stopped (task aborted) on drop.
pub struct FakeArm {
    /// `https://127.0.0.1:<port>`: the ARM endpoint to configure.
    pub base: String,
    /// The throwaway CA the server's certificate chains to.
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeArm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it (rcgen directly: the
/// replay needs no PKI of ours).
fn tls() -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("a P-256 key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "frankenetes ARM replay CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a P-256 key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("server params");
    params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().expect("an IP"))];
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .expect("a server config");
    (cfg, ca.pem())
}

impl FakeArm {
    /// Starts the server on a free port of 127.0.0.1 (stopped when dropped).
    pub async fn start() -> std::io::Result<Self> {
        let (cfg, ca_pem) = tls();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(Mutex::new(State {
            page_size: 2,
            ..Default::default()
        }));
        let st = state.clone();
        let b = base.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let st = st.clone();
                let b = b.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = serve(tls, st, b).await;
                    }
                });
            }
        });
        Ok(Self {
            base,
            ca_pem,
            state,
            task,
        })
    }

    /// Queue a scripted reply for the next request whose method matches and whose path
    /// contains `path_contains`.
    pub fn script(&self, method: &'static str, path_contains: &str, reply: Reply) {
        self.state.lock().unwrap().scripts.push_back(Script {
            method,
            path_contains: path_contains.into(),
            reply,
        });
    }

    /// Every request so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// How many groups a list page holds (2 by default, so paging is exercised).
    pub fn set_page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n;
    }

    /// A group stored as if created elsewhere (for adoption and foreign-tag tests).
    pub fn insert_group(&self, name: &str, group: Value) {
        self.state.lock().unwrap().groups.insert(name.into(), group);
    }

    /// The backend, trusting the throwaway CA, with fast polls and retries.
    pub fn backend(&self) -> AciBackend {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let options = ClientOptions {
            transport: Some(Transport::new(Arc::new(client))),
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(10),
                max_retries: 3,
                max_total_elapsed: azure_core::time::Duration::seconds(20),
                max_delay: azure_core::time::Duration::seconds(2),
            }),
            ..Default::default()
        };
        let poll = PollOptions {
            interval: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(20),
        };
        let config = AciConfig::new(SUB, RG, "westeurope")
            .with_endpoint(&self.base)
            .unwrap()
            .with_poll(poll)
            .with_client_options(options);
        AciBackend::new(config, Arc::new(FakeCredential))
    }
}

/// A credential that always returns [`TOKEN`], valid for an hour.
#[derive(Debug)]
pub struct FakeCredential;

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new(TOKEN),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    state: Arc<Mutex<State>>,
    base: String,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // headers
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_owned();
        let target = first.next().unwrap_or("").to_owned();
        let mut headers = BTreeMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let need = head_end + 4 + len;
        while buf.len() < need {
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body_bytes = buf[head_end + 4..need].to_vec();
        buf.drain(..need);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (target.clone(), String::new()),
        };
        let body = if body_bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&body_bytes).ok()
        };
        let rec = Recorded {
            method,
            path,
            query,
            headers,
            body,
        };
        let reply = handle(&state, &rec, &base);
        state.lock().unwrap().recorded.push(rec);
        let body = reply
            .body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let body = rewrite(&String::from_utf8_lossy(&body), &base).into_bytes();
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            reply.status,
            body.len()
        );
        if !body.is_empty() {
            out.push_str("content-type: application/json\r\n");
        }
        for (k, v) in reply.headers {
            out.push_str(&format!("{k}: {}\r\n", rewrite(&v, &base)));
        }
        out.push_str("\r\n");
        s.write_all(out.as_bytes()).await?;
        s.write_all(&body).await?;
        s.flush().await?;
    }
}

/// Absolute URLs of the fixtures point at the real ARM; point them here.
fn rewrite(s: &str, base: &str) -> String {
    s.replace("https://management.azure.com", base)
        .replace("api-version=apiVersion", "api-version=2026-05-01")
}

fn not_found(kind: &str, name: &str) -> Reply {
    Reply::new(
        404,
        Some(json!({ "error": { "code": "ResourceNotFound", "message":
            format!("The Resource 'Microsoft.ContainerInstance/{kind}/{name}' under resource group '{RG}' was not found.") } })),
    )
}

fn handle(state: &Mutex<State>, req: &Recorded, base: &str) -> Reply {
    let mut st = state.lock().unwrap();
    if let Some(i) = st
        .scripts
        .iter()
        .position(|s| s.method == req.method && req.path.contains(&s.path_contains))
    {
        return st.scripts.remove(i).unwrap().reply;
    }
    let p = req.path.as_str();
    if let Some(op) = p.split("/operations/").nth(1) {
        return match st.ops.get(op) {
            Some(b) => Reply::new(200, Some(b.clone())),
            None => not_found("operations", op),
        };
    }
    if p.contains("/fileServices/default/shares/") && req.method == "PUT" {
        return Reply::from_fixture("FileSharesPut.json", "201", 201);
    }
    if p.ends_with("/listKeys") && req.method == "POST" {
        return Reply::from_fixture("StorageAccountListKeys.json", "200", 200);
    }
    if p.ends_with(CG) && req.method == "GET" {
        return list_groups(&st, req, base);
    }
    let Some(rest) = p.split(&format!("{CG}/")).nth(1) else {
        return no_route(req);
    };
    let (name, action) = match rest.split_once('/') {
        Some((n, a)) => (n, Some(a)),
        None => (rest, None),
    };
    match (req.method.as_str(), action) {
        ("PUT", None) => put_group(&mut st, req, base, name),
        ("GET", None) => get_group(&st, name),
        ("DELETE", None) => delete_group(&mut st, base, name),
        ("POST", Some("stop")) => match st.groups.get_mut(name) {
            Some(g) => {
                g["properties"]["x-replay-state"] = json!("Stopped");
                Reply::from_fixture("ContainerGroupsStop.json", "204", 204)
            }
            None => not_found("containerGroups", name),
        },
        ("POST", Some("start")) => start_group(&mut st, base, name),
        _ => no_route(req),
    }
}

/// The container groups' collection path under a resource group.
const CG: &str = "/providers/Microsoft.ContainerInstance/containerGroups";

fn no_route(req: &Recorded) -> Reply {
    Reply::new(
        400,
        Some(
            json!({"error": {"code": "BadRequest", "message": format!("replay: no route for {} {}", req.method, req.path)}}),
        ),
    )
}

/// The `locations` URL under which group operations in the resource group are polled.
fn group_locations(base: &str) -> String {
    format!(
        "{base}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerInstance/locations/westeurope"
    )
}

/// One page of the groups (`$skiptoken` is the offset), with a `nextLink` while more remain.
fn list_groups(st: &State, req: &Recorded, base: &str) -> Reply {
    let p = req.path.as_str();
    let skip: usize = req
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("$skiptoken="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let all: Vec<Value> = st
        .groups
        .values()
        .cloned()
        .map(strip_instance_view)
        .collect();
    let size = st.page_size.max(1);
    let page: Vec<Value> = all.iter().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": page });
    if skip + size < all.len() {
        body["nextLink"] = json!(format!(
            "{base}{p}?api-version=2026-05-01&$skiptoken={}",
            skip + size
        ));
    }
    Reply::new(200, Some(body))
}

/// Create or replace a group: the request as the official 201 body shapes it.
fn put_group(st: &mut State, req: &Recorded, base: &str, name: &str) -> Reply {
    let id = format!("/subscriptions/{SUB}/resourceGroups/{RG}{CG}/{name}");
    let Some(body) = req.body.clone() else {
        return Reply::new(
            400,
            Some(json!({"error": {"code": "InvalidRequestContent", "message": "no body"}})),
        );
    };
    // Shape of the official 201 body: the request plus id/name/type, provisioningState,
    // the address, and write-only secrets removed.
    let mut g = fixture("ContainerGroupsCreateOrUpdate.json")["responses"]["201"]["body"].clone();
    g["id"] = json!(id);
    g["name"] = json!(name);
    g["location"] = body["location"].clone();
    g["tags"] = body.get("tags").cloned().unwrap_or(json!({}));
    let mut props = body["properties"].clone();
    props["provisioningState"] = json!("Succeeded");
    if let Some(ip) = props.get_mut("ipAddress") {
        ip["ip"] = json!("10.0.0.1");
        if let Some(label) = ip.get("dnsNameLabel").and_then(Value::as_str) {
            let loc = body["location"].as_str().unwrap_or("");
            ip["fqdn"] = json!(format!("{label}.{loc}.azurecontainer.io"));
        }
    }
    strip_secrets(&mut props);
    g["properties"] = props;
    g.as_object_mut().unwrap().remove("identity");
    g.as_object_mut().unwrap().remove("zones");
    let existed = st.groups.insert(name.to_owned(), g.clone()).is_some();
    let loc = body["location"].as_str().unwrap_or("westeurope");
    let op = succeeded_operation(
        st,
        &format!(
            "{base}/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/{loc}"
        ),
    );
    Reply::new(if existed { 200 } else { 201 }, Some(g)).header("Azure-AsyncOperation", &op)
}

/// A group with its `instanceView` state (running unless stopped).
fn get_group(st: &State, name: &str) -> Reply {
    match st.groups.get(name) {
        Some(g) => {
            let mut g = g.clone();
            let state = g["properties"]["x-replay-state"]
                .as_str()
                .unwrap_or("Running")
                .to_owned();
            g["properties"]
                .as_object_mut()
                .unwrap()
                .remove("x-replay-state");
            g["properties"]["instanceView"] = json!({ "state": state, "events": [] });
            Reply::new(200, Some(g))
        }
        None => not_found("containerGroups", name),
    }
}

fn delete_group(st: &mut State, base: &str, name: &str) -> Reply {
    match st.groups.remove(name) {
        Some(_) => {
            let op = succeeded_operation(st, &group_locations(base));
            Reply::from_fixture("ContainerGroupsDelete.json", "202", 202)
                .header("azure-asyncoperation", &op)
        }
        None => Reply::from_fixture("ContainerGroupsDelete.json", "204", 204),
    }
}

fn start_group(st: &mut State, base: &str, name: &str) -> Reply {
    match st.groups.get_mut(name) {
        Some(g) => {
            g["properties"]["x-replay-state"] = json!("Running");
            let op = succeeded_operation(st, &group_locations(base));
            Reply::from_fixture("ContainerGroupsStart.json", "202", 202)
                .header("azure-asyncoperation", &op)
        }
        None => not_found("containerGroups", name),
    }
}

/// Records a new long-running operation that has already succeeded (the official example of a
/// succeeded `Azure-AsyncOperation` status) and returns its status URL under `locations`
/// (`…/locations/westeurope`).
fn succeeded_operation(st: &mut State, locations: &str) -> String {
    st.next_op += 1;
    let op = format!("op-{}", st.next_op);
    st.ops.insert(
        op.clone(),
        fixture("synthesized/AsyncOperation_Succeeded.json")["responses"]["200"]["body"].clone(),
    );
    format!("{locations}/operations/{op}?api-version=2026-05-01")
}

fn strip_instance_view(mut g: Value) -> Value {
    if let Some(p) = g.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("instanceView");
        p.remove("x-replay-state");
    }
    g
}

/// What ARM never returns: secret volume contents, storage keys, secure env values.
fn strip_secrets(props: &mut Value) {
    if let Some(vols) = props.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vols {
            if v.get("secret").is_some() {
                v["secret"] = json!({});
            }
            if let Some(af) = v.get_mut("azureFile").and_then(Value::as_object_mut) {
                af.remove("storageAccountKey");
            }
        }
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = props.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(env) = c
                    .pointer_mut("/properties/environmentVariables")
                    .and_then(Value::as_array_mut)
                {
                    for e in env {
                        if let Some(o) = e.as_object_mut() {
                            o.remove("secureValue");
                        }
                    }
                }
            }
        }
    }
}

/// Replace every secret value in a request body with a marker, for snapshots.
pub fn redact_body(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, val) in m.iter_mut() {
                    match k.as_str() {
                        "secret" => {
                            if let Value::Object(files) = val {
                                for (_, f) in files.iter_mut() {
                                    *f = json!("<redacted>");
                                }
                            }
                        }
                        "storageAccountKey" | "secureValue" => *val = json!("<redacted>"),
                        _ => walk(val),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

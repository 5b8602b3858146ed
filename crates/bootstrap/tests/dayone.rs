//! The day-one phase and the token commands against a recorded-response apiserver: an HTTPS
//! server on 127.0.0.11 whose serving certificate, client CA and clients' certificates come
//! from our own PKI. It records every request (method, path, query, content type, the client
//! certificate's CN, body) and answers like an apiserver would (server-side apply stores and
//! echoes, create/list/delete of Secrets), or with a queued failure.
//!
//! Plus, behind `FRANKENETES_BIN_DIR`, the whole `up` against real Kubernetes binaries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use frankenetes_bootstrap::dayone::{self, ApplyOptions};
use frankenetes_manifests::addons::{self, AddonOptions, Credential, FIELD_MANAGER, Object};
use frankenetes_manifests::token;
use frankenetes_pki::{CaId, Pki, PkiPlan};
use frankenetes_spec::ClusterSpec;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, PartialEq)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    content_type: String,
    /// The CN of the client certificate.
    credential: String,
    body: Value,
}

#[derive(Default)]
struct State {
    log: Vec<Recorded>,
    /// Path → statuses to answer, in order, before answering normally.
    fail: HashMap<String, VecDeque<u16>>,
    /// Path → stored object.
    store: BTreeMap<String, Value>,
}

type Shared = Arc<Mutex<State>>;

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn answer(state: &Shared, rec: &Recorded) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    if let Some(code) = s.fail.get_mut(&rec.path).and_then(VecDeque::pop_front) {
        return match code {
            403 => status(
                403,
                "Forbidden",
                "User \"kubernetes-admin\" cannot patch resource",
            ),
            409 => status(
                409,
                "Conflict",
                "Apply failed with 1 conflict: conflict with \"kubectl\": .data.kubeconfig",
            ),
            c => status(
                c,
                "InternalError",
                "Internal error occurred: etcdserver: request timed out",
            ),
        };
    }
    match rec.method.as_str() {
        "PATCH" => {
            let mut obj = rec.body.clone();
            let prev = s.store.get(&rec.path).cloned();
            let rv = match &prev {
                // Unchanged apply: same resourceVersion, as a real apiserver does.
                Some(p) if strip(p) == strip(&obj) => p["metadata"]["resourceVersion"].clone(),
                _ => json!(format!("{}", s.store.len() + 100)),
            };
            obj["metadata"]["resourceVersion"] = rv;
            s.store.insert(rec.path.clone(), obj.clone());
            (200, obj)
        }
        "POST" => {
            let name = rec.body["metadata"]["name"].as_str().unwrap_or_default();
            let path = format!("{}/{name}", rec.path);
            if s.store.contains_key(&path) {
                return status(409, "AlreadyExists", "already exists");
            }
            s.store.insert(path, rec.body.clone());
            (201, rec.body.clone())
        }
        "GET" => {
            let prefix = format!("{}/", rec.path);
            let items: Vec<Value> = s
                .store
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, v)| v.clone())
                .collect();
            (
                200,
                json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": items}),
            )
        }
        "DELETE" => match s.store.remove(&rec.path) {
            Some(_) => (
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            ),
            None => status(404, "NotFound", "not found"),
        },
        _ => status(405, "MethodNotAllowed", "not recorded"),
    }
}

fn strip(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    v
}

fn common_name(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn handle(
    req: Request<Incoming>,
    cn: String,
    state: Shared,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = percent_decode(req.uri().path());
    let query = req.uri().query().unwrap_or_default().to_owned();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    let rec = Recorded {
        method,
        path,
        query,
        content_type,
        credential: cn,
        body,
    };
    let (code, out) = answer(&state, &rec);
    state.lock().unwrap().log.push(rec);
    Ok(Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&out).unwrap())))
        .unwrap())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The recorded apiserver and what it needs: the PKI, the rendered kubeconfigs, the URL.
struct Fixture {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    pki: Pki,
    spec: ClusterSpec,
    url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn fixture() -> Fixture {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let spec = ClusterSpec::example();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().to_owned();
    let (pki, _) =
        frankenetes_pki::sync(&PkiPlan::from(&spec), &bundle, Default::default()).unwrap();
    frankenetes_manifests::render(&spec, &pki)
        .unwrap()
        .write(&bundle)
        .unwrap();
    let ca = pki.ca(CaId::Kubernetes).unwrap();
    let serving = pki.leaf("control-01/apiserver").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca.cert_pem()) {
        roots.add(c).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut serving.key_pem().as_bytes())
        .unwrap()
        .unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(serving.cert_pem()), key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    // 127.0.0.11 is control-01's address: the serving certificate names it.
    let listener = tokio::net::TcpListener::bind("127.0.0.11:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let state: Shared = Arc::default();
    let st = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let st = st.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cn = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| common_name(c))
                    .unwrap_or_default();
                let svc =
                    hyper::service::service_fn(move |req| handle(req, cn.clone(), st.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Fixture {
        _dir: dir,
        bundle,
        pki,
        spec,
        url,
        state,
        task,
    }
}

impl Fixture {
    async fn clients(&self) -> (kube::Client, kube::Client) {
        let admin = dayone::client(&self.bundle.join("cluster/admin.conf"), Some(&self.url))
            .await
            .unwrap();
        let sa = dayone::client(
            &self.bundle.join("cluster/super-admin.conf"),
            Some(&self.url),
        )
        .await
        .unwrap();
        (admin, sa)
    }

    fn objects(&self) -> Vec<Object> {
        addons::objects(&self.spec, &self.pki, &AddonOptions::default()).unwrap()
    }

    fn take_log(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }

    fn fail(&self, path: &str, codes: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .fail
            .insert(path.to_owned(), codes.iter().copied().collect());
    }

    fn ca_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(self.pki.ca(CaId::Kubernetes).unwrap().cert_pem())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_is_applied_with_its_credential_and_a_rerun_changes_nothing() {
    let f = fixture().await;
    let (admin, sa) = f.clients().await;
    let objects = f.objects();
    let report = dayone::apply(&objects, &admin, &sa, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(report.applied.len(), objects.len());
    assert_eq!(report.attempts, objects.len());
    let first = f.take_log();
    assert_eq!(first.len(), objects.len(), "{first:#?}");
    let ca = f.ca_b64();
    for (i, (o, r)) in objects.iter().zip(&first).enumerate() {
        assert_eq!(r.method, "PATCH", "{o}");
        assert_eq!(r.path, o.path(), "{o}");
        assert!(
            r.query
                .split('&')
                .any(|q| q == format!("fieldManager={FIELD_MANAGER}")),
            "{o}: {}",
            r.query
        );
        assert!(
            !r.query.contains("force=true"),
            "{o}: conflicts are never forced"
        );
        assert_eq!(r.content_type, "application/apply-patch+yaml", "{o}");
        let want = match o.credential {
            Credential::SuperAdmin => "kubernetes-super-admin",
            _ => "kubernetes-admin",
        };
        assert_eq!(r.credential, want, "{o}");
        assert_eq!(r.body, o.body, "{o}: the body is the rendered object");
        // Reviewed: the request as sent (the CA, which differs per run, redacted).
        let mut shown = r.clone();
        shown.body =
            serde_json::from_str(&serde_json::to_string(&r.body).unwrap().replace(&ca, "<CA>"))
                .unwrap();
        insta::assert_yaml_snapshot!(
            format!("apply__{i:02}__{}__{}", o.kind, o.name.replace(':', "_")),
            shown
        );
    }
    // Only the one binding used super-admin.
    assert_eq!(
        first
            .iter()
            .filter(|r| r.credential == "kubernetes-super-admin")
            .map(|r| r.path.as_str())
            .collect::<Vec<_>>(),
        ["/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeadm:cluster-admins"]
    );
    let stored = f.state.lock().unwrap().store.clone();

    // Second run: the same applies, nothing else, and no object changed.
    dayone::apply(&objects, &admin, &sa, &ApplyOptions::default())
        .await
        .unwrap();
    let second = f.take_log();
    assert_eq!(second, first, "a re-run sends exactly the same applies");
    assert_eq!(
        f.state.lock().unwrap().store,
        stored,
        "a re-run changed an object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_object_and_say_what_to_do() {
    let f = fixture().await;
    let (admin, sa) = f.clients().await;
    let objects = f.objects();
    let no_retry = ApplyOptions::default().retry_for(Duration::ZERO);
    let cases = [
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeadm:cluster-admins",
            403,
            "ClusterRoleBinding kubeadm:cluster-admins: forbidden for super-admin.conf",
            "system:masters",
        ),
        (
            addons::CLUSTER_INFO_PATH,
            409,
            "ConfigMap kube-public/cluster-info: conflict",
            "--force-conflicts",
        ),
        (
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
            500,
            "Deployment kube-system/coredns: the apiserver answered 500",
            "etcdserver: request timed out",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeadm:kubelet-bootstrap",
            403,
            "ClusterRoleBinding kubeadm:kubelet-bootstrap: forbidden for admin.conf",
            "kubeadm:cluster-admins",
        ),
    ];
    for (path, code, starts, hint) in cases {
        f.fail(path, &[code]);
        let e = dayone::apply(&objects, &admin, &sa, &no_retry)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.status(), Some(code), "{text}");
        assert!(text.starts_with(starts), "{text}");
        assert!(text.contains(hint), "{text}");
        // It stopped at the failing object.
        let log = f.take_log();
        assert_eq!(log.last().unwrap().path, path);
    }
    // Passing troubles are retried: a 500 and then an RBAC cache miss, then success.
    f.fail(
        "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
        &[500, 403],
    );
    let r = dayone::apply(&objects, &admin, &sa, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(r.attempts, objects.len() + 2);
    // A 409 is never retried.
    f.fail(addons::CLUSTER_INFO_PATH, &[409]);
    let e = dayone::apply(&objects, &admin, &sa, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_listed_and_deleted_without_showing_secrets() {
    let f = fixture().await;
    let (admin, _) = f.clients().await;
    let before = time::OffsetDateTime::now_utc();
    let t = dayone::create_token(&admin, Some(Duration::from_secs(3600)), "worker-01")
        .await
        .unwrap();
    let log = f.take_log();
    assert_eq!(log.len(), 1);
    let r = &log[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v1/namespaces/kube-system/secrets")
    );
    assert_eq!(r.credential, "kubernetes-admin");
    assert_eq!(r.body["type"], token::SECRET_TYPE);
    assert_eq!(
        r.body["metadata"]["name"],
        format!("bootstrap-token-{}", t.id())
    );
    let data = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(r.body["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(data("token-secret"), t.secret());
    assert_eq!(data("auth-extra-groups"), token::DEFAULT_NODE_TOKEN_GROUP);
    let exp = time::OffsetDateTime::parse(
        &data("expiration"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ttl = exp - before;
    assert!(
        ttl > time::Duration::minutes(59) && ttl <= time::Duration::minutes(61),
        "{ttl}"
    );

    let list = dayone::list_tokens(&admin).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, t.id());
    assert_eq!(list[0].usages, ["authentication", "signing"]);
    assert_eq!(list[0].description, "worker-01");
    let shown = format!("{list:?} {}", list[0]);
    assert!(!shown.contains(t.secret()), "{shown}");
    let l = f.take_log();
    assert_eq!(l[0].method, "GET");
    assert!(
        l[0].query
            .contains("fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken")
            || l[0]
                .query
                .contains("fieldSelector=type=bootstrap.kubernetes.io/token"),
        "{}",
        l[0].query
    );

    // The join line: the endpoint, the token, and the CA pin (checked against openssl in the
    // manifests tests).
    let ca = f.pki.ca(CaId::Kubernetes).unwrap().cert_pem();
    let line = dayone::join_command(&f.spec, ca, &t).unwrap();
    assert_eq!(
        line.as_str(),
        format!(
            "kubeadm join 127.0.0.11:6443 --token {}.{} --discovery-token-ca-cert-hash {}",
            t.id(),
            t.secret(),
            token::ca_cert_hash(ca).unwrap()
        )
    );

    assert!(
        dayone::delete_token(&admin, &t.to_token_string())
            .await
            .unwrap()
    );
    assert!(!dayone::delete_token(&admin, t.id()).await.unwrap());
    assert!(dayone::list_tokens(&admin).await.unwrap().is_empty());
    let e = dayone::delete_token(&admin, "NOT-A-TOKEN")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a token id"), "{e}");
    let e = dayone::delete_token(&admin, "abcdef.short")
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("short"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_apiserver_names_the_object() {
    let f = fixture().await;
    let admin = dayone::client(
        &f.bundle.join("cluster/admin.conf"),
        Some("https://127.0.0.11:1"),
    )
    .await
    .unwrap();
    let e = dayone::apply(
        &f.objects(),
        &admin,
        &admin,
        &ApplyOptions::default().retry_for(Duration::ZERO),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("ClusterRoleBinding kubeadm:cluster-admins: cannot reach the apiserver"),
        "{e}"
    );
    let Err(e) = dayone::client(Path::new("/nonexistent/admin.conf"), None).await else {
        panic!("a missing kubeconfig was accepted");
    };
    assert!(e.to_string().starts_with("/nonexistent/admin.conf"), "{e}");
}

/// Stops every process the opt-in test started, also when it fails.
struct Guard(frankenetes_bootstrap::LocalBackend);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

/// Opt-in: with `FRANKENETES_BIN_DIR` pointing at kube-apiserver, kube-controller-manager and
/// kube-scheduler, `up` applies the day-one objects to a real control plane: the admin
/// kubeconfig then has its rights, anonymous users can read `cluster-info` (and nothing else),
/// a second `up` converges, and tokens are created, listed and deleted.
#[tokio::test(flavor = "multi_thread")]
async fn real_binaries_get_the_day_one_objects() {
    use frankenetes_bootstrap::{
        Cluster, DownOptions, LocalBackend, LocalPlatform, Options, Phase,
    };
    use k8s_openapi::api::core::v1::{ConfigMap, Node};
    let Some(bin) = std::env::var_os("FRANKENETES_BIN_DIR") else {
        eprintln!(
            "skipped: set FRANKENETES_BIN_DIR to a directory with kube-apiserver, kube-controller-manager and kube-scheduler to run it"
        );
        return;
    };
    let yaml = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {name: dayone}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    - {name: control-01, ip: 127.0.0.121}\n";
    let spec = ClusterSpec::from_yaml(yaml).unwrap().spec;
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path()).gate_timeout(Duration::from_secs(180));
    let c = Cluster::new(
        spec.clone(),
        LocalPlatform::new(dir.path()).bin_dir(Some(bin.into())),
        opts,
    );
    let _guard = Guard(LocalBackend::new(dir.path().join("run")));
    let report = c.up().await.unwrap();
    assert!(report.phases.contains(&Phase::DayOne), "{report:?}");
    let bundle = dir.path().join("bundle");
    let admin = dayone::client(&bundle.join("cluster/admin.conf"), None)
        .await
        .unwrap();
    // admin.conf (kubeadm:cluster-admins) has its rights.
    kube::Api::<Node>::all(admin.clone())
        .list(&Default::default())
        .await
        .unwrap();
    // Anonymous: cluster-info yes, anything else no.
    let ca = std::fs::read_to_string(bundle.join("cluster/pki/ca.crt")).unwrap();
    let mut cfg = kube::Config::new("https://127.0.0.121:6443".parse().unwrap());
    cfg.root_cert = Some(certs(&ca).into_iter().map(|c| c.to_vec()).collect());
    let anon = kube::Client::try_from(cfg).unwrap();
    let public = kube::Api::<ConfigMap>::namespaced(anon.clone(), "kube-public");
    let info = public.get("cluster-info").await.unwrap();
    assert!(info.data.unwrap()["kubeconfig"].contains("certificate-authority-data"));
    let system = kube::Api::<ConfigMap>::namespaced(anon, "kube-system");
    assert!(system.get("kubeadm-config").await.is_err());
    // Converges.
    let again = c.up().await.unwrap();
    assert!(again.phases.contains(&Phase::DayOne), "{again:?}");
    let t = dayone::create_token(&admin, Some(Duration::from_secs(600)), "test")
        .await
        .unwrap();
    assert!(
        dayone::list_tokens(&admin)
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == t.id())
    );
    assert!(dayone::delete_token(&admin, t.id()).await.unwrap());
    c.down(DownOptions::default()).await.unwrap();
}

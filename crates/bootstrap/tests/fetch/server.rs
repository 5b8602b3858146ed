//! The test server: HTTPS on 127.0.0.1 (tokio-rustls, a test CA from rcgen), one request per
//! connection, routes that answer, cut the body half-way, stall or redirect, and a log of every
//! request path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frankenetes_bootstrap::fetch::{Arch, Cache, FetchOptions};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
pub(crate) const PREFIX: &str = "/release/v1.35.0/bin/linux/amd64";

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A made-up Kubernetes binary of `version`: a shell script that answers `--version` as the
/// real ones do (kubectl refuses it and answers `version --client`), padded to 300 KiB so a
/// transfer takes many reads.
pub(crate) fn fake_binary(name: &str, version: &str) -> Vec<u8> {
    let version_case = if name == "kubectl" {
        format!(
            "  --version) echo 'error: unknown flag: --version' >&2; exit 1 ;;\n  \
             version) echo 'Client Version: {version}'; echo 'Kustomize Version: v5.7.1' ;;\n"
        )
    } else {
        format!("  --version) echo 'Kubernetes {version}' ;;\n")
    };
    let mut s = format!(
        "#!/bin/sh\ncase \"$1\" in\n{version_case}  *) echo 'fake {name}' ;;\nesac\nexit 0\n"
    );
    while s.len() < 300 * 1024 {
        s.push_str("# padding padding padding padding padding padding padding padding padding\n");
    }
    s.into_bytes()
}

#[derive(Clone, Default)]
pub(crate) struct Route {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The next this-many responses stop half-way through the body and drop the connection.
    pub(crate) cut: usize,
    /// Send the headers, then nothing.
    pub(crate) stall: bool,
    /// Answer `302 Found` to this location (dl.k8s.io redirects to its CDN so).
    pub(crate) location: Option<String>,
}

#[derive(Default)]
pub(crate) struct State {
    routes: Mutex<HashMap<String, Route>>,
    requests: Mutex<Vec<String>>,
}

/// An HTTPS server on 127.0.0.1; its tasks (and every connection's) are aborted on drop, also
/// when a test fails.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    ca_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub(crate) async fn start() -> Server {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fetch test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("mirror-ca.pem");
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();

        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let st = st.clone();
                conns.spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, &st).await;
                    }
                });
            }
        });
        Server {
            addr,
            state,
            task,
            ca_pem,
            _dir: dir,
        }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}/release", self.addr.port())
    }

    pub(crate) fn route(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), route);
    }

    /// Serves `name` (a fake binary of `version`) and a checksum file, right or `wrong_sum`.
    pub(crate) fn publish(&self, name: &str, version: &str, wrong_sum: bool) -> Vec<u8> {
        let body = fake_binary(name, version);
        let sum = if wrong_sum {
            sha256_hex(b"something else")
        } else {
            sha256_hex(&body)
        };
        self.route(&format!("{PREFIX}/{name}"), ok(body.clone()));
        self.route(&format!("{PREFIX}/{name}.sha256"), ok(sum.into_bytes()));
        body
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    pub(crate) fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|p| *p == path).count()
    }

    pub(crate) fn options(&self, cache: &Path) -> FetchOptions {
        let mut o = FetchOptions::new(Cache::new(cache));
        o.base_url = self.base_url();
        o.ca_cert = Some(self.ca_pem.clone());
        o.arch = Some(Arch::Amd64);
        o.connect_timeout = Duration::from_secs(5);
        o.read_timeout = Duration::from_secs(5);
        o.retries = 0;
        o.backoff = Duration::from_millis(10);
        o
    }
}

pub(crate) fn ok(body: Vec<u8>) -> Route {
    Route {
        status: 200,
        body,
        ..Route::default()
    }
}

/// One request per connection: read the head, answer, close.
async fn serve(mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, st: &State) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
    st.requests.lock().unwrap().push(path.clone());
    let route = {
        let mut routes = st.routes.lock().unwrap();
        match routes.get_mut(&path) {
            Some(r) => {
                let snapshot = r.clone();
                r.cut = r.cut.saturating_sub(1);
                snapshot
            }
            None => Route {
                status: 404,
                body: b"404 page not found\n".to_vec(),
                ..Route::default()
            },
        }
    };
    let reason = match route.status {
        200 => "OK",
        302 => "Found",
        _ => "Not Found",
    };
    let location = route
        .location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let header = format!(
        "HTTP/1.1 {} {reason}\r\n{location}Content-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        route.status,
        route.body.len()
    );
    if tls.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    if route.stall {
        let _ = tls.flush().await;
        std::future::pending::<()>().await;
    }
    if route.cut > 0 {
        let _ = tls.write_all(&route.body[..route.body.len() / 2]).await;
        let _ = tls.flush().await;
        // Dropped without close_notify: the connection is cut, as by a network failure.
        return;
    }
    let _ = tls.write_all(&route.body).await;
    let _ = tls.shutdown().await;
}

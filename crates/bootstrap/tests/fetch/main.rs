//! `fetch` against a real HTTPS server on 127.0.0.1 (tokio-rustls, a test CA from rcgen)
//! serving made-up binaries (shell scripts that answer `--version`) and their checksum files,
//! counting requests; `binary_version` and `locate` with real processes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod server;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frankenetes_bootstrap::fetch::{self, Arch, Binary, Cache, Error, FetchEvent, Origin, Search};
use frankenetes_spec::KubernetesVersion;
use tokio::net::TcpListener;

use server::{PREFIX, Route, Server, fake_binary, ok, sha256_hex};

fn v(s: &str) -> KubernetesVersion {
    s.parse().unwrap()
}

type Events = Arc<Mutex<Vec<FetchEvent>>>;

fn recorder() -> (Events, impl Fn(FetchEvent)) {
    let events: Events = Arc::default();
    let e = events.clone();
    (events, move |ev| e.lock().unwrap().push(ev))
}

/// The names in a cache directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Runs a binary the test just wrote, retrying while a concurrent fork in this process still
/// holds it open for writing (ETXTBSY).
fn run(path: &Path, arg: &str) -> String {
    for _ in 0..50 {
        match std::process::Command::new(path).arg(arg).output() {
            Ok(out) => return String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    panic!("{} stayed busy", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_checksums_are_cached_executable_and_a_second_run_makes_no_request() {
    let server = Server::start().await;
    let wanted = [Binary::KubeApiserver, Binary::Kubelet, Binary::Kubectl];
    let bodies: Vec<Vec<u8>> = wanted
        .iter()
        .map(|b| server.publish(b.name(), "v1.35.0", false))
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let options = server.options(cache.path());
    let (events, progress) = recorder();

    let got = fetch::fetch(&wanted, &v("v1.35.0"), &options, progress)
        .await
        .unwrap();

    let dir = cache.path().join("v1.35.0/linux-amd64");
    assert_eq!(got.len(), 3);
    for ((f, b), body) in got.iter().zip(wanted).zip(&bodies) {
        assert_eq!(f.binary, b);
        assert!(f.downloaded);
        assert_eq!(f.path, dir.join(b.name()));
        assert_eq!(std::fs::read(&f.path).unwrap(), *body);
        assert_eq!(f.sha256, sha256_hex(body));
        let mode = std::fs::metadata(&f.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{}", f.path.display());
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("{b}.sha256"))).unwrap(),
            format!("{}  {b}\n", sha256_hex(body))
        );
    }
    // It runs, as what it is.
    assert_eq!(
        run(&dir.join("kubelet"), "--version"),
        "Kubernetes v1.35.0\n"
    );
    assert_eq!(
        fetch::binary_version(&dir.join("kubectl")).unwrap(),
        v("v1.35.0")
    );
    assert_eq!(
        listing(&dir),
        [
            ".lock",
            "kube-apiserver",
            "kube-apiserver.sha256",
            "kubectl",
            "kubectl.sha256",
            "kubelet",
            "kubelet.sha256"
        ]
    );
    // Checksum, then binary, once each.
    let mut expected: Vec<String> = Vec::new();
    for b in wanted {
        expected.push(format!("{PREFIX}/{b}.sha256"));
        expected.push(format!("{PREFIX}/{b}"));
    }
    assert_eq!(server.requests(), expected);
    // Progress: started with the announced size, bytes up to it, verified.
    let events = events.lock().unwrap().clone();
    let kubelet_len = bodies[1].len() as u64;
    let kubelet: Vec<&FetchEvent> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                FetchEvent::Started {
                    binary: Binary::Kubelet,
                    ..
                } | FetchEvent::Bytes {
                    binary: Binary::Kubelet,
                    ..
                } | FetchEvent::Verified {
                    binary: Binary::Kubelet,
                    ..
                }
            )
        })
        .collect();
    assert!(
        matches!(kubelet[0], FetchEvent::Started { total: Some(t), url, .. }
            if *t == kubelet_len && url.ends_with("/v1.35.0/bin/linux/amd64/kubelet")),
        "{kubelet:?}"
    );
    assert!(kubelet.len() > 3, "a 300 KiB body comes in several reads");
    assert!(matches!(kubelet[kubelet.len() - 2],
        FetchEvent::Bytes { received, total: Some(t), .. } if *received == kubelet_len && *t == kubelet_len));
    assert!(
        matches!(kubelet[kubelet.len() - 1], FetchEvent::Verified { sha256, .. } if *sha256 == sha256_hex(&bodies[1]))
    );

    // A second run: no request at all, everything from the cache.
    let (events, progress) = recorder();
    let again = fetch::fetch(&wanted, &v("v1.35.0"), &options, progress)
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 6, "{:?}", server.requests());
    assert!(again.iter().all(|f| !f.downloaded));
    assert_eq!(
        again.iter().map(|f| &f.sha256).collect::<Vec<_>>(),
        got.iter().map(|f| &f.sha256).collect::<Vec<_>>()
    );
    assert_eq!(
        *events.lock().unwrap(),
        wanted
            .iter()
            .map(|b| FetchEvent::Cached {
                binary: *b,
                path: dir.join(b.name())
            })
            .collect::<Vec<_>>()
    );
    // Even with the server gone.
    drop(server);
    let third = fetch::fetch(&wanted, &v("v1.35.0"), &options, |_| {}).await;
    assert!(third.is_ok(), "{third:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_checksum_is_refused_and_nothing_is_cached() {
    let server = Server::start().await;
    let body = server.publish("kube-proxy", "v1.35.0", true);
    let cache = tempfile::tempdir().unwrap();
    let mut options = server.options(cache.path());
    options.retries = 3;

    let err = fetch::fetch(&[Binary::KubeProxy], &v("v1.35.0"), &options, |_| {})
        .await
        .unwrap_err();

    let (actual, published) = (sha256_hex(&body), sha256_hex(b"something else"));
    match &err {
        Error::Checksum {
            binary,
            expected,
            actual: got,
            url,
        } => {
            assert_eq!(*binary, Binary::KubeProxy);
            assert_eq!(*expected, published);
            assert_eq!(*got, actual);
            assert_eq!(
                *url,
                format!("{}/v1.35.0/bin/linux/amd64/kube-proxy", server.base_url())
            );
        }
        other => panic!("not a checksum error: {other:?}"),
    }
    let msg = err.to_string();
    for part in ["kube-proxy", &actual, &published, "nothing was cached"] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
    // Not retried (a mismatch is not transient), and nothing left behind.
    assert_eq!(server.count(&format!("{PREFIX}/kube-proxy")), 1);
    assert_eq!(
        listing(&cache.path().join("v1.35.0/linux-amd64")),
        [".lock"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_half_way_leaves_nothing_and_a_retry_completes() {
    let server = Server::start().await;
    let body = server.publish("kubelet", "v1.35.0", false);
    let binary_path = format!("{PREFIX}/kubelet");
    let mut route = ok(body.clone());
    route.cut = 1;
    server.route(&binary_path, route);
    let cache_dir = tempfile::tempdir().unwrap();
    let options = server.options(cache_dir.path());
    let version = v("v1.35.0");

    // No retries allowed: the cut is the error, and no part of the file is kept or usable.
    let err = fetch::fetch(&[Binary::Kubelet], &version, &options, |_| {})
        .await
        .unwrap_err();
    let url = format!("{}/v1.35.0/bin/linux/amd64/kubelet", server.base_url());
    assert!(
        matches!(&err, Error::Transfer { url: u, attempts: 1, .. } if *u == url),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "download of {url} failed: the transfer stopped after "
        )) && msg.contains(&format!(" of {} bytes", body.len())),
        "{msg}"
    );
    let dir = cache_dir.path().join("v1.35.0/linux-amd64");
    assert_eq!(listing(&dir), [".lock"]);
    let cache = Cache::new(cache_dir.path());
    assert_eq!(
        cache
            .verified(Binary::Kubelet, &version, Arch::Amd64)
            .unwrap(),
        None
    );
    let mut search = Search::new(None, &cache);
    search.path = Vec::new();
    search.arch = Some(Arch::Amd64);
    assert!(matches!(
        search.locate_one(Binary::Kubelet, &version),
        Err(Error::NotFound { .. })
    ));

    // The next run completes.
    let got = fetch::fetch(&[Binary::Kubelet], &version, &options, |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&got[0].path).unwrap(), body);

    // With retries, one run gets over a cut: it starts over after the backoff.
    let other_cache = tempfile::tempdir().unwrap();
    let mut options = server.options(other_cache.path());
    options.retries = 2;
    let mut route = ok(body.clone());
    route.cut = 1;
    server.route(&binary_path, route);
    let before = server.count(&binary_path);
    let (events, progress) = recorder();
    let got = fetch::fetch(&[Binary::Kubelet], &version, &options, progress)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&got[0].path).unwrap(), body);
    assert_eq!(server.count(&binary_path) - before, 2);
    let events = events.lock().unwrap();
    let retry = events
        .iter()
        .find_map(|e| match e {
            FetchEvent::Retrying {
                attempt: 1,
                cause,
                delay,
                ..
            } => Some((cause.clone(), *delay)),
            _ => None,
        })
        .expect("a Retrying event");
    assert!(retry.0.starts_with(&url), "{retry:?}");
    assert_eq!(retry.1, Duration::from_millis(10));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, FetchEvent::Started { .. }))
            .count(),
        2
    );
    assert_eq!(
        listing(&other_cache.path().join("v1.35.0/linux-amd64")),
        [".lock", "kubelet", "kubelet.sha256"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_temp_files_are_removed_and_a_damaged_entry_is_fetched_again() {
    let server = Server::start().await;
    let body = server.publish("kube-scheduler", "v1.35.0", false);
    let cache = tempfile::tempdir().unwrap();
    let options = server.options(cache.path());
    let version = v("v1.35.0");
    fetch::fetch(&[Binary::KubeScheduler], &version, &options, |_| {})
        .await
        .unwrap();
    let dir = cache.path().join("v1.35.0/linux-amd64");

    // What a run killed mid-download leaves: its temporary files.
    std::fs::write(dir.join(".kube-scheduler.tmp-4242-0"), &body[..1000]).unwrap();
    std::fs::write(dir.join(".kube-scheduler.sha256.tmp-4242-1"), "abc").unwrap();
    let requests = server.requests().len();
    let got = fetch::fetch(&[Binary::KubeScheduler], &version, &options, |_| {})
        .await
        .unwrap();
    assert!(!got[0].downloaded);
    assert_eq!(
        server.requests().len(),
        requests,
        "a cache hit makes no request"
    );
    assert_eq!(
        listing(&dir),
        [".lock", "kube-scheduler", "kube-scheduler.sha256"]
    );

    // A cached binary changed after it was verified is not a hit: it is downloaded again.
    let path = dir.join("kube-scheduler");
    let mut damaged = body.clone();
    damaged[100] ^= 1;
    std::fs::write(&path, &damaged).unwrap();
    let c = Cache::new(cache.path());
    assert_eq!(
        c.verified(Binary::KubeScheduler, &version, Arch::Amd64)
            .unwrap(),
        None
    );
    let got = fetch::fetch(&[Binary::KubeScheduler], &version, &options, |_| {})
        .await
        .unwrap();
    assert!(got[0].downloaded);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(server.requests().len(), requests + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_errors_name_the_url_and_the_cause() {
    let server = Server::start().await;
    server.publish("kubelet", "v1.35.0", false);
    let cache = tempfile::tempdir().unwrap();
    let version = v("v1.35.0");

    // Nothing listens: refused, retried, then named.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut options = server.options(cache.path());
    options.base_url = format!("https://127.0.0.1:{port}/release");
    options.retries = 1;
    let (events, progress) = recorder();
    let err = fetch::fetch(&[Binary::Kubelet], &version, &options, progress)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not connect to https://127.0.0.1:{port}/release/v1.35.0/bin/linux/amd64/kubelet.sha256: \
             connection refused (2 attempts)"
        )
    );
    assert_eq!(events.lock().unwrap().len(), 1, "one Retrying event");

    // A server whose CA we were not told about: a TLS failure, not retried, with what to do.
    let mut options = server.options(cache.path());
    options.ca_cert = None;
    options.retries = 3;
    let err = fetch::fetch(&[Binary::Kubelet], &version, &options, |_| {})
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Connect { attempts: 1, .. }), "{err:?}");
    assert!(
        msg.contains("TLS handshake failed")
            && msg.contains("not signed by a CA this machine trusts"),
        "{msg}"
    );

    // A version the mirror does not have: 404, not retried, with the likely reason.
    let mut options = server.options(cache.path());
    options.retries = 3;
    let err = fetch::fetch(&[Binary::Kubelet], &v("v1.99.0"), &options, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}/v1.99.0/bin/linux/amd64/kubelet.sha256 answered HTTP 404 Not Found: is v1.99.0 a released",
            server.base_url()
        )),
        "{msg}"
    );
    assert_eq!(
        server.count("/release/v1.99.0/bin/linux/amd64/kubelet.sha256"),
        1
    );

    // A transfer that stalls: the read timeout, named.
    let mut route = ok(vec![0; 1000]);
    route.stall = true;
    server.route(&format!("{PREFIX}/kube-proxy.sha256"), route);
    let mut options = server.options(cache.path());
    options.read_timeout = Duration::from_millis(300);
    let err = fetch::fetch(&[Binary::KubeProxy], &version, &options, |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with("kube-proxy.sha256 failed: the transfer stopped after 0 of 1000 bytes: no data for 300ms (read timeout) (1 attempt)"),
        "{err}"
    );

    // A checksum file that is not one.
    server.route(&format!("{PREFIX}/kubectl"), ok(b"x".to_vec()));
    server.route(
        &format!("{PREFIX}/kubectl.sha256"),
        ok(b"<html>oops</html>".to_vec()),
    );
    let err = fetch::fetch(&[Binary::Kubectl], &version, &options, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumFile { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("kubectl.sha256 does not hold a SHA-256"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_as_to_the_release_cdn() {
    let server = Server::start().await;
    let body = server.publish("kube-controller-manager", "v1.35.0", false);
    let cdn = "/cdn/v1.35.0/bin/linux/amd64/kube-controller-manager";
    server.route(cdn, ok(body.clone()));
    let binary_path = format!("{PREFIX}/kube-controller-manager");
    server.route(
        &binary_path,
        Route {
            status: 302,
            location: Some(format!("https://127.0.0.1:{}{cdn}", server.addr.port())),
            ..Route::default()
        },
    );
    let cache = tempfile::tempdir().unwrap();
    let got = fetch::fetch(
        &[Binary::KubeControllerManager],
        &v("v1.35.0"),
        &server.options(cache.path()),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&got[0].path).unwrap(), body);
    assert_eq!(server.count(&binary_path), 1);
    assert_eq!(server.count(cdn), 1);
}

fn write_script(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locate_checks_versions_and_says_how_to_fix_a_mismatch() {
    let server = Server::start().await;
    server.publish("kube-proxy", "v1.35.0", false);
    server.publish("kubelet", "v1.35.0", false);
    let cache_dir = tempfile::tempdir().unwrap();
    let options = server.options(cache_dir.path());
    let wanted = v("v1.35.0");
    fetch::fetch(&[Binary::KubeProxy], &wanted, &options, |_| {})
        .await
        .unwrap();
    let cache = Cache::new(cache_dir.path());
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = tmp.path().join("bin");
    let path_dir = tmp.path().join("path");

    // binary_version: `--version`, and kubectl's `version --client`.
    let old = write_script(&bin_dir, "kubelet", &fake_binary("kubelet", "v1.34.2"));
    assert_eq!(fetch::binary_version(&old).unwrap(), v("v1.34.2"));
    let kubectl = write_script(&path_dir, "kubectl", &fake_binary("kubectl", "v1.35.0"));
    assert_eq!(fetch::binary_version(&kubectl).unwrap(), wanted);
    let junk = write_script(tmp.path(), "junk", b"#!/bin/sh\necho hello\n");
    let err = fetch::binary_version(&junk).unwrap_err();
    assert!(matches!(err, Error::VersionOutput { .. }), "{err:?}");
    assert!(err.to_string().contains("hello"), "{err}");
    let err = fetch::binary_version(&tmp.path().join("absent")).unwrap_err();
    assert!(matches!(err, Error::Run { .. }), "{err:?}");

    let search = |bin: Option<&Path>| {
        let mut s = Search::new(bin, &cache);
        s.path = vec![path_dir.clone()];
        s.arch = Some(Arch::Amd64);
        s
    };

    // --bin-dir holds another version: an error naming it, both versions and the fixes.
    let err = search(Some(&bin_dir))
        .locate(&[Binary::Kubelet], &wanted)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::VersionMismatch { binary: Binary::Kubelet, path, found, .. }
            if *path == old && *found == v("v1.34.2")),
        "{err:?}"
    );
    for part in [
        &old.display().to_string(),
        "v1.34.2",
        "v1.35.0",
        "frankenetes fetch",
        "--bin-dir",
    ] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }

    // PATH holds another version, the cache the right one: the cache's, the other passed over.
    let stale = write_script(
        &path_dir,
        "kube-proxy",
        &fake_binary("kube-proxy", "v1.34.2"),
    );
    let found = search(None)
        .locate(&[Binary::KubeProxy, Binary::Kubectl], &wanted)
        .unwrap();
    assert_eq!(found[0].origin, Origin::Cache);
    assert_eq!(
        found[0].path,
        cache.path(Binary::KubeProxy, &wanted, Arch::Amd64)
    );
    assert_eq!(
        found[0].passed_over,
        [(stale.clone(), "Kubernetes v1.34.2".to_owned())]
    );
    assert_eq!((found[1].origin, &found[1].path), (Origin::Path, &kubectl));
    assert_eq!(found[1].version, wanted);

    // PATH holds another version and the cache nothing: the mismatch is the error.
    write_script(&path_dir, "kubelet", &fake_binary("kubelet", "v1.33.0"));
    let err = search(None)
        .locate(&[Binary::Kubelet], &wanted)
        .unwrap_err();
    assert!(
        matches!(&err, Error::VersionMismatch { found, .. } if *found == v("v1.33.0")),
        "{err:?}"
    );

    // Found nowhere: every missing binary named, and how to get them.
    let err = search(None)
        .locate(&[Binary::KubeApiserver, Binary::KubeScheduler], &wanted)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "kube-apiserver, kube-scheduler v1.35.0 not found in PATH or the cache ({}); run \
             `frankenetes fetch` to download them, or pass --bin-dir",
            cache.dir(&wanted, Arch::Amd64).display()
        )
    );

    // After `fetch`, the cache's kubelet wins over PATH's old one.
    fetch::fetch(&[Binary::Kubelet], &wanted, &options, |_| {})
        .await
        .unwrap();
    let found = search(None).locate_one(Binary::Kubelet, &wanted).unwrap();
    assert_eq!(found.origin, Origin::Cache);
    // ... but not over an explicit --bin-dir.
    assert!(
        search(Some(&bin_dir))
            .locate_one(Binary::Kubelet, &wanted)
            .is_err()
    );
}

//! A real `moto_server` on 127.0.0.1 for tests (feature `testing`; not stable API): started on
//! a free port, stopped by its PID when the [`Moto`] value drops (also when a test panics),
//! with moto's request recorder to prove which calls an operation made.
//!
//! ```no_run
//! use frankenetes_cloud_aws::testing::{Moto, fedora_coreos_images};
//!
//! let moto = Moto::start_with_images(&fedora_coreos_images()); // or Moto::start(): moto's own AMIs
//! let sdk = moto.sdk("eu-west-3");
//! moto.record();
//! // ... run something against `sdk` ...
//! assert!(moto.recorded_writes().is_empty());
//! ```
//!
//! `moto_server` is looked up in `~/.cache/frankenetes/py/bin` (where
//! `scripts/install-deps.sh` puts it), then on `PATH`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test harness fails by panicking

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::FEDORA_COREOS_OWNER;

/// An AMI moto lists (through `MOTO_AMIS_PATH`, which replaces moto's own list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `ami-...`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The owner's account.
    pub owner: String,
    /// `x86_64` or `arm64`.
    pub arch: String,
}

/// The AMI id the tests give as `ami:` (and the x86_64 one of [`fedora_coreos_images`]).
pub const FEDORA_COREOS_X86_64: &str = "ami-0fc0ffee0fc0ffee0";
/// The arm64 one of [`fedora_coreos_images`].
pub const FEDORA_COREOS_ARM64: &str = "ami-0a4a4a4a4a4a4a4a4";

/// Fedora CoreOS AMIs as the Fedora account publishes them (owner [`FEDORA_COREOS_OWNER`],
/// name `fedora-coreos-<version>-<arch>`): the stable ones the lookup must pick
/// ([`FEDORA_COREOS_X86_64`], [`FEDORA_COREOS_ARM64`]), an older stable build, and newer
/// `next` and development builds it must not prefer. Moto bundles none.
pub fn fedora_coreos_images() -> Vec<Image> {
    let img = |id: &str, name: &str, arch: &str| Image {
        id: id.into(),
        name: name.into(),
        owner: FEDORA_COREOS_OWNER.into(),
        arch: arch.into(),
    };
    vec![
        img(
            FEDORA_COREOS_X86_64,
            "fedora-coreos-43.20261102.3.0-x86_64",
            "x86_64",
        ),
        img(
            FEDORA_COREOS_ARM64,
            "fedora-coreos-43.20261102.3.0-aarch64",
            "arm64",
        ),
        img(
            "ami-0010101010101010a",
            "fedora-coreos-43.20261020.3.0-x86_64",
            "x86_64",
        ),
        img(
            "ami-0111111111111111a",
            "fedora-coreos-44.20261110.1.0-x86_64",
            "x86_64",
        ),
        img(
            "ami-0dddddddddddddddd",
            "fedora-coreos-43.20261112.dev.0-x86_64",
            "x86_64",
        ),
    ]
}

/// A `moto_server` on a free loopback port, killed by PID on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn moto_binary() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cache/frankenetes/py/bin/moto_server");
    if cached.exists() {
        return cached;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("moto_server"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("moto_server not found in ~/.cache/frankenetes/py/bin or PATH: run scripts/install-deps.sh")
        })
}

impl Moto {
    /// Moto with its own AMIs (Amazon Linux and the like; no Fedora CoreOS).
    pub fn start() -> Moto {
        Self::spawn(None)
    }

    /// Moto listing these AMIs only.
    pub fn start_with_images(images: &[Image]) -> Moto {
        Self::spawn(Some(images))
    }

    fn spawn(images: Option<&[Image]>) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // moto's working directory (the recorder writes its log there), outside the tree.
        let dir = std::env::temp_dir().join(format!("frankenetes-moto-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(moto_binary());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(&dir)
            .env("MOTO_RECORDER_FILEPATH", dir.join("recording"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(images) = images {
            let list: Vec<serde_json::Value> = images
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "ami_id": i.id, "name": i.name, "owner_id": i.owner, "architecture": i.arch,
                        "state": "available", "public": true, "image_type": "machine",
                        "virtualization_type": "hvm", "hypervisor": "xen", "root_device_type": "ebs",
                        "root_device_name": "/dev/xvda", "description": i.name,
                    })
                })
                .collect();
            let path = dir.join("amis.json");
            std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
            cmd.env("MOTO_AMIS_PATH", path);
        }
        let child = cmd.spawn().expect("start moto_server");
        let moto = Moto { child, port, dir };
        let start = Instant::now();
        while !moto.http("GET", "/moto-api/").is_ok_and(|(s, _)| s == 200) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the endpoint for every service.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A hermetic SDK configuration for this server (static test keys, nothing read from the
    /// environment).
    pub fn sdk(&self, region: &str) -> aws_config::SdkConfig {
        crate::static_sdk_config(&self.url(), region, "testing", "testing")
    }

    /// A minimal HTTP/1.1 request (moto's control API, a presigned URL); the status and body.
    pub fn http(&self, method: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(buf.len());
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = buf.get(split + 4..).unwrap_or_default().to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Ok((status, dechunk(&body)));
        }
        Ok((status, body))
    }

    /// Starts moto's request recorder afresh: every API request from now on is logged.
    pub fn record(&self) {
        for path in [
            "/moto-api/recorder/reset-recording",
            "/moto-api/recorder/start-recording",
        ] {
            let (s, _) = self.http("POST", path).unwrap();
            assert_eq!(s, 200, "{path}");
        }
    }

    /// The API actions recorded since [`Moto::record`], in order: query-API actions by name
    /// (`CreateVpc`), REST calls (S3) as `METHOD url`.
    pub fn recorded_actions(&self) -> Vec<String> {
        let (s, body) = self
            .http("GET", "/moto-api/recorder/download-recording")
            .unwrap();
        assert_eq!(s, 200);
        let mut actions = Vec::new();
        for line in String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let url = v["url"].as_str().unwrap_or_default().to_owned();
            let mut body = v["body"].as_str().unwrap_or_default().to_owned();
            if v["body_encoded"].as_bool() == Some(true) {
                body = String::from_utf8_lossy(&STANDARD.decode(&body).unwrap_or_default())
                    .to_string();
            }
            let query = url
                .split_once('?')
                .map(|(_, q)| q.to_owned())
                .unwrap_or_default();
            let action = [query.as_str(), body.as_str()]
                .iter()
                .flat_map(|s| s.split('&'))
                .find_map(|kv| kv.strip_prefix("Action="))
                .map(str::to_owned);
            if let Some(a) = action {
                actions.push(a);
            } else if !url.contains("/moto-api/") {
                actions.push(format!(
                    "{} {url}",
                    v["method"].as_str().unwrap_or_default()
                ));
            }
        }
        actions
    }

    /// The recorded actions that are not reads ([`is_read`]).
    pub fn recorded_writes(&self) -> Vec<String> {
        self.recorded_actions()
            .into_iter()
            .filter(|a| !is_read(a))
            .collect()
    }
}

/// Whether a recorded action only reads: `Describe*`, `Get*`, `List*`, and S3's `GET`/`HEAD`.
pub fn is_read(action: &str) -> bool {
    ["Describe", "Get", "List", "GET ", "HEAD "]
        .iter()
        .any(|p| action.starts_with(p))
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = rest.get(eol + 2 + size + 2..).unwrap_or_default();
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

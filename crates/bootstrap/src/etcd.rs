//! etcd over its v3 API with mutual TLS: health (member list, status, a put/get/delete probe),
//! and snapshots streamed to a file with a checksum.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::Error;

/// The files a client authenticates with.
#[derive(Debug, Clone)]
pub struct EtcdAuth {
    /// The etcd CA.
    pub ca: PathBuf,
    /// Client certificate (the healthcheck client's).
    pub cert: PathBuf,
    /// Client key.
    pub key: PathBuf,
}

impl EtcdAuth {
    /// kubeadm's healthcheck client in a PKI directory (`.../etc/kubernetes/pki`).
    pub fn healthcheck(pki_dir: &Path) -> Self {
        Self {
            ca: pki_dir.join("etcd/ca.crt"),
            cert: pki_dir.join("etcd/healthcheck-client.crt"),
            key: pki_dir.join("etcd/healthcheck-client.key"),
        }
    }
}

fn read(p: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(p).map_err(|source| Error::Io {
        path: p.to_owned(),
        source,
    })
}

/// Connects to `endpoints` (`https://ip:2379`) with mutual TLS.
pub async fn connect(
    endpoints: &[String],
    auth: &EtcdAuth,
    timeout: Duration,
) -> Result<Client, Error> {
    crate::install_crypto_provider();
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read(&auth.ca)?))
        .identity(Identity::from_pem(read(&auth.cert)?, read(&auth.key)?));
    let opts = ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    Client::connect(endpoints, Some(opts))
        .await
        .map_err(|e| Error::Etcd(format!("cannot connect to {}: {e}", endpoints.join(","))))
}

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdHealth {
    /// Member names the cluster reports (started members only).
    pub members: Vec<String>,
    /// Per endpoint: its status answer or the error.
    pub endpoints: Vec<(String, Result<String, String>)>,
    /// Whether a put/get/delete of a probe key went through.
    pub probe_ok: bool,
}

impl EtcdHealth {
    /// Whether `expected` members are started, every endpoint answers, and the probe worked.
    pub fn is_healthy(&self, expected: usize) -> bool {
        self.members.len() == expected
            && self.endpoints.iter().all(|(_, r)| r.is_ok())
            && self.probe_ok
    }
}

/// Checks the cluster: member list, each endpoint's status, and a probe key written, read
/// back and deleted.
pub async fn health(endpoints: &[String], auth: &EtcdAuth) -> Result<EtcdHealth, Error> {
    let timeout = Duration::from_secs(2);
    let mut client = connect(endpoints, auth, timeout).await?;
    let list = client
        .member_list()
        .await
        .map_err(|e| Error::Etcd(format!("member list: {e}")))?;
    let members = list
        .members()
        .iter()
        .filter(|m| !m.name().is_empty())
        .map(|m| m.name().to_owned())
        .collect();
    // Every endpoint at once: a slow member does not delay the others' answers.
    let per = futures_util::future::join_all(endpoints.iter().map(|ep| async move {
        let r = match connect(std::slice::from_ref(ep), auth, timeout).await {
            Ok(mut c) => c
                .status()
                .await
                .map(|s| format!("leader {:x}, raft index {}", s.leader(), s.raft_index()))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (ep.clone(), r)
    }))
    .await;
    let key = "/frankenetes/health-probe";
    let probe_ok = async {
        client.put(key, "ok", None).await.ok()?;
        let got = client.get(key, None).await.ok()?;
        let ok = got.kvs().first().is_some_and(|kv| kv.value() == b"ok");
        client.delete(key, None).await.ok()?;
        Some(ok)
    }
    .await
    .unwrap_or(false);
    Ok(EtcdHealth {
        members,
        endpoints: per,
        probe_ok,
    })
}

/// Streams a snapshot from `endpoint` to `file`: written to a temporary file, checked against
/// the stream's own end, renamed into place, with `<file>.sha256` beside it. Returns the
/// SHA-256 (hex).
pub async fn snapshot(endpoint: &str, auth: &EtcdAuth, file: &Path) -> Result<String, Error> {
    let mut client = connect(&[endpoint.to_owned()], auth, Duration::from_secs(10)).await?;
    // A linearizable read on this member first: it answers only once the member has applied
    // everything the cluster committed before the read, so the snapshot holds every write
    // acknowledged before `snapshot` was called (a follower may lag the leader by a few
    // entries; a snapshot straight from it once missed the last acknowledged write).
    client
        .get("/frankenetes/snapshot-barrier", None)
        .await
        .map_err(|e| Error::Etcd(format!("snapshot: catching up with the cluster: {e}")))?;
    let mut stream = client
        .snapshot()
        .await
        .map_err(|e| Error::Etcd(format!("snapshot: {e}")))?;
    let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Missing directories 0755 whatever the umask; an existing one is left as it is.
        frankenetes_bundle::fs::create_dir_for(parent).map_err(|e| Error::Io {
            path: parent.to_owned(),
            source: std::io::Error::other(e),
        })?;
    }
    // The whole database: readable by its owner only, from the first byte.
    let std_file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|f| {
                f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
                Ok(f)
            })
            .map_err(|source| Error::Io {
                path: tmp.clone(),
                source,
            })?
    };
    let mut out = tokio::fs::File::from_std(std_file);
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let mut finished = false;
    let result: Result<(), Error> = async {
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|e| Error::Etcd(format!("snapshot stream: {e}")))?
        {
            let blob = msg.blob();
            hash.update(blob);
            total += blob.len() as u64;
            out.write_all(blob).await.map_err(|source| Error::Io {
                path: tmp.clone(),
                source,
            })?;
            if msg.remaining_bytes() == 0 {
                finished = true;
            }
        }
        out.sync_all().await.map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if !finished || total == 0 {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Etcd("the snapshot stream ended early".into()));
    }
    std::fs::rename(&tmp, file).map_err(|source| Error::Io {
        path: file.to_owned(),
        source,
    })?;
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sum = PathBuf::from(format!("{}.sha256", file.display()));
    frankenetes_bundle::fs::write_atomic(&sum, format!("{digest}  {name}\n").as_bytes(), 0o600)?;
    Ok(digest)
}

/// A member as etcd's member list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// Its member ID.
    pub id: u64,
    /// Its name; empty while an added member has not started yet.
    pub name: String,
    /// Where its peers reach it.
    pub peer_urls: Vec<String>,
}

fn members_of(list: &[etcd_client::Member]) -> Vec<Member> {
    list.iter()
        .map(|m| Member {
            id: m.id(),
            name: m.name().to_owned(),
            peer_urls: m.peer_urls().to_vec(),
        })
        .collect()
}

/// The cluster's members, from whichever of `endpoints` answers.
pub async fn members(endpoints: &[String], auth: &EtcdAuth) -> Result<Vec<Member>, Error> {
    let mut client = connect(endpoints, auth, Duration::from_secs(5)).await?;
    let list = client
        .member_list()
        .await
        .map_err(|e| Error::Etcd(format!("member list: {e}")))?;
    Ok(members_of(list.members()))
}

/// Removes member `id` (etcd's runtime reconfiguration; etcd refuses it when it would leave
/// the cluster without quorum).
pub async fn remove_member(endpoints: &[String], auth: &EtcdAuth, id: u64) -> Result<(), Error> {
    let mut client = connect(endpoints, auth, Duration::from_secs(5)).await?;
    client
        .member_remove(id)
        .await
        .map_err(|e| Error::Etcd(format!("member remove {id:x}: {e}")))?;
    Ok(())
}

/// Adds a member reached at `peer_urls`; returns its ID and the members afterwards (the new
/// one without a name until it starts).
pub async fn add_member(
    endpoints: &[String],
    auth: &EtcdAuth,
    peer_urls: Vec<String>,
) -> Result<(u64, Vec<Member>), Error> {
    let mut client = connect(endpoints, auth, Duration::from_secs(5)).await?;
    let r = client
        .member_add(peer_urls.clone(), None)
        .await
        .map_err(|e| Error::Etcd(format!("member add {}: {e}", peer_urls.join(","))))?;
    let id = r.member().map(etcd_client::Member::id).unwrap_or_default();
    Ok((id, members_of(r.member_list())))
}

/// Whether `endpoints` answer a linearizable read, which etcd serves only with a quorum
/// (nothing is written).
pub async fn has_quorum(endpoints: &[String], auth: &EtcdAuth) -> bool {
    let Ok(mut client) = connect(endpoints, auth, Duration::from_secs(2)).await else {
        return false;
    };
    client.get("/frankenetes/quorum-probe", None).await.is_ok()
}

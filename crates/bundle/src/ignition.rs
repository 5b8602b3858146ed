//! Ignition v3 configs for Fedora CoreOS machines, from files and systemd units: what a
//! machine's user data usually is. Node bundles (`frankenetes-manifests`) and the
//! NAT/WireGuard gateway (`frankenetes-netgw`) both become one here.
//!
//! ```
//! use frankenetes_bundle::ignition::{IgnitionFile, IgnitionUnit, build};
//!
//! let config = build(
//!     [IgnitionFile { path: "/etc/hostname", mode: 0o644, contents: b"gw\n" }],
//!     [IgnitionUnit { name: "wg-quick@wg0.service", enabled: true, mask: false, contents: None }],
//! );
//! let v: serde_json::Value = serde_json::from_str(&config).expect("JSON");
//! assert_eq!(v["ignition"]["version"], "3.3.0");
//! assert_eq!(v["storage"]["files"][0]["contents"]["source"], "data:;base64,Z3cK");
//! ```

use base64::Engine as _;
use serde::Serialize;

/// The Ignition spec version written (Fedora CoreOS accepts it; Debian's `ignition-validate`
/// 2.14 validates it).
pub const IGNITION_VERSION: &str = "3.3.0";

#[derive(Serialize)]
struct Config<'a> {
    ignition: Meta,
    #[serde(skip_serializing_if = "Passwd::is_empty")]
    passwd: Passwd<'a>,
    storage: Storage<'a>,
    systemd: Systemd<'a>,
}

#[derive(Serialize, Default)]
struct Passwd<'a> {
    users: Vec<User<'a>>,
}

impl Passwd<'_> {
    fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[derive(Serialize)]
struct User<'a> {
    name: &'a str,
    #[serde(rename = "sshAuthorizedKeys")]
    ssh_authorized_keys: &'a [String],
}

/// The user Fedora CoreOS logs its admin in as.
pub const ADMIN_USER: &str = "core";

#[derive(Serialize)]
struct Meta {
    version: &'static str,
}

#[derive(Serialize)]
struct Storage<'a> {
    files: Vec<File<'a>>,
}

#[derive(Serialize)]
struct File<'a> {
    path: &'a str,
    mode: u32,
    overwrite: bool,
    contents: Contents,
}

#[derive(Serialize)]
struct Contents {
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<Verification>,
}

#[derive(Serialize)]
struct Verification {
    /// `sha256-<hex>` (Ignition 3.x accepts `sha256` and `sha512`).
    hash: String,
}

#[derive(Serialize)]
struct Systemd<'a> {
    units: Vec<SystemdUnit<'a>>,
}

#[derive(Serialize)]
struct SystemdUnit<'a> {
    name: &'a str,
    enabled: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mask: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    contents: Option<String>,
}

/// One file for [`build`].
#[derive(Debug, Clone, Copy)]
pub struct IgnitionFile<'a> {
    /// Absolute path on the machine.
    pub path: &'a str,
    /// File mode.
    pub mode: u32,
    /// Contents.
    pub contents: &'a [u8],
}

/// One file for [`build_config`] that the machine downloads at first boot, verified against
/// its SHA-256 (see [`crate::RemoteFile`]).
#[derive(Debug, Clone, Copy)]
pub struct IgnitionRemoteFile<'a> {
    /// Absolute path on the machine.
    pub path: &'a str,
    /// File mode.
    pub mode: u32,
    /// The `https://` URL.
    pub url: &'a str,
    /// Its SHA-256 (lower-case hex).
    pub sha256: &'a str,
}

/// One systemd unit for [`build`]; `contents: None` enables a unit the OS ships.
#[derive(Debug, Clone)]
pub struct IgnitionUnit<'a> {
    /// Unit name.
    pub name: &'a str,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Whether it is masked.
    pub mask: bool,
    /// The unit file, or `None` for an OS-provided unit.
    pub contents: Option<String>,
}

/// An Ignition config from files and units (for bundles made by other crates, like the
/// gateway's).
pub fn build<'a>(
    files: impl IntoIterator<Item = IgnitionFile<'a>>,
    units: impl IntoIterator<Item = IgnitionUnit<'a>>,
) -> String {
    build_with_keys(files, units, &[])
}

/// [`build`], with OpenSSH public keys for [`ADMIN_USER`] (`passwd.users`).
pub fn build_with_keys<'a>(
    files: impl IntoIterator<Item = IgnitionFile<'a>>,
    units: impl IntoIterator<Item = IgnitionUnit<'a>>,
    ssh_authorized_keys: &[String],
) -> String {
    build_config(files, [], units, ssh_authorized_keys)
}

/// [`build_with_keys`], with files the machine downloads (`contents.source` and
/// `contents.verification.hash: sha256-…`), listed after the inline files.
pub fn build_config<'a>(
    files: impl IntoIterator<Item = IgnitionFile<'a>>,
    remote_files: impl IntoIterator<Item = IgnitionRemoteFile<'a>>,
    units: impl IntoIterator<Item = IgnitionUnit<'a>>,
    ssh_authorized_keys: &[String],
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let cfg = Config {
        ignition: Meta {
            version: IGNITION_VERSION,
        },
        passwd: Passwd {
            users: if ssh_authorized_keys.is_empty() {
                Vec::new()
            } else {
                vec![User {
                    name: ADMIN_USER,
                    ssh_authorized_keys,
                }]
            },
        },
        storage: Storage {
            files: files
                .into_iter()
                .map(|f| File {
                    path: f.path,
                    mode: f.mode,
                    overwrite: true,
                    contents: Contents {
                        source: format!("data:;base64,{}", b64.encode(f.contents)),
                        verification: None,
                    },
                })
                .chain(remote_files.into_iter().map(|f| File {
                    path: f.path,
                    mode: f.mode,
                    overwrite: true,
                    contents: Contents {
                        source: f.url.to_owned(),
                        verification: Some(Verification {
                            hash: format!("sha256-{}", f.sha256),
                        }),
                    },
                }))
                .collect(),
        },
        systemd: Systemd {
            units: units
                .into_iter()
                .map(|u| SystemdUnit {
                    name: u.name,
                    enabled: u.enabled,
                    mask: u.mask,
                    contents: u.contents,
                })
                .collect(),
        },
    };
    serde_json::to_string_pretty(&cfg).unwrap_or_default()
}

/// A node bundle as one config: every file (mode as given, contents as a base64 data URL),
/// `/etc/hostname` with the node's name unless the bundle has one, every download (URL and
/// SHA-256), and every unit (ours with its contents, shipped ones enabled, masked ones masked).
pub(crate) fn from_bundle(bundle: &crate::NodeBundle) -> String {
    let hostname = format!("{}\n", bundle.name);
    let hostname_file = bundle
        .file("/etc/hostname")
        .is_none()
        .then_some(IgnitionFile {
            path: "/etc/hostname",
            mode: crate::fs::PUBLIC_MODE,
            contents: hostname.as_bytes(),
        });
    build_config(
        bundle
            .files
            .iter()
            .map(|f| IgnitionFile {
                path: &f.path,
                mode: f.mode,
                contents: &f.contents,
            })
            .chain(hostname_file),
        bundle.remote_files.iter().map(|f| IgnitionRemoteFile {
            path: &f.path,
            mode: f.mode,
            url: &f.url,
            sha256: &f.sha256,
        }),
        bundle.units.iter().map(|u| IgnitionUnit {
            name: &u.name,
            enabled: u.enabled,
            mask: matches!(u.kind, crate::systemd::UnitKind::Masked),
            contents: u.contents(),
        }),
        &bundle.ssh_authorized_keys,
    )
}

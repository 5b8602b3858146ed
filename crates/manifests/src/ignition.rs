//! Ignition v3 configs for Fedora CoreOS, made directly from a node bundle (no butane).

use base64::Engine as _;
use serde::Serialize;

use crate::bundle::NodeBundle;

/// The Ignition spec version written (Fedora CoreOS accepts it; Debian's `ignition-validate`
/// 2.14 validates it).
pub const IGNITION_VERSION: &str = "3.3.0";

#[derive(Serialize)]
struct Config<'a> {
    ignition: Meta,
    storage: Storage<'a>,
    systemd: Systemd<'a>,
}

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
}

#[derive(Serialize)]
struct Systemd<'a> {
    units: Vec<SystemdUnit<'a>>,
}

#[derive(Serialize)]
struct SystemdUnit<'a> {
    name: &'a str,
    enabled: bool,
    contents: String,
}

/// The bundle as one Ignition config: every file (mode as given, contents as a base64 data
/// URL) and every unit (enabled or not). It holds private keys: store it like one.
pub fn to_ignition(bundle: &NodeBundle) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let cfg = Config {
        ignition: Meta {
            version: IGNITION_VERSION,
        },
        storage: Storage {
            files: bundle
                .files
                .iter()
                .map(|f| File {
                    path: &f.path,
                    mode: f.mode,
                    overwrite: true,
                    contents: Contents {
                        source: format!("data:;base64,{}", b64.encode(&*f.contents)),
                    },
                })
                .collect(),
        },
        systemd: Systemd {
            units: bundle
                .units
                .iter()
                .map(|u| SystemdUnit {
                    name: &u.name,
                    enabled: u.enabled,
                    contents: u.to_string(),
                })
                .collect(),
        },
    };
    serde_json::to_string_pretty(&cfg).unwrap_or_default()
}

//! Ignition v3 configs for Fedora CoreOS, made directly from a node bundle (no butane).

use crate::bundle::NodeBundle;

pub use frankenetes_compute::ignition::{IGNITION_VERSION, IgnitionFile, IgnitionUnit, build};

/// The bundle as one Ignition config: every file (mode as given, contents as a base64 data
/// URL) and every unit (enabled or not). It holds private keys: store it like one.
pub fn to_ignition(bundle: &NodeBundle) -> String {
    build(
        bundle.files.iter().map(|f| IgnitionFile {
            path: &f.path,
            mode: f.mode,
            contents: &f.contents,
        }),
        bundle.units.iter().map(|u| IgnitionUnit {
            name: &u.name,
            enabled: u.enabled,
            contents: Some(u.to_string()),
        }),
    )
}

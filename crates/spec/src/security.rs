//! `spec.security`: the hardened defaults and the explicit relaxations of them.

use serde::{Deserialize, Serialize};

use crate::ClusterSpec;

/// `spec.security`. Every field defaults to the hardened setting; each relaxation is a warning
/// in `plan`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SecuritySpec {}

impl SecuritySpec {
    /// Cross-field checks against the rest of the spec; `err(path, message)` per problem.
    pub(crate) fn validate(&self, _spec: &ClusterSpec, _err: &mut impl FnMut(String, String)) {}
}

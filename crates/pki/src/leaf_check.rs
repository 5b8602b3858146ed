//! Why a leaf on disk does not match its plan: what `sync` re-issues and `check` reports.

use frankenetes_spec::CaMode;

use crate::keys::PrivateKey;
use crate::plan::{LeafSpec, PkiPlan};
use crate::x509;

/// Why a leaf on disk does not match its plan; empty when it does.
pub(crate) fn leaf_problems(
    plan: &PkiPlan,
    leaf: &LeafSpec,
    ders: &[Vec<u8>],
    key: &PrivateKey,
    issuer: Option<&[u8]>,
) -> Vec<String> {
    let Ok(info) = x509::parse(&ders[0]) else {
        return vec!["cannot be parsed".into()];
    };
    let mut out = Vec::new();
    match issuer {
        Some(der) => {
            if let Err(e) = x509::verify_signed_by(&ders[0], der) {
                out.push(format!(
                    "not signed by the current {}: {e}",
                    leaf.issuer.name()
                ));
            } else {
                let want_chain = plan.ca_mode == CaMode::Intermediate;
                let has_chain = ders.get(1).is_some_and(|d| d.as_slice() == der);
                if want_chain != has_chain || ders.len() > 2 {
                    out.push(
                        if want_chain {
                            "the file lacks its intermediate CA"
                        } else {
                            "the file carries extra certificates"
                        }
                        .into(),
                    );
                }
            }
        }
        None => out.push(format!("its CA {} is new", leaf.issuer.name())),
    }
    if info.common_name.as_deref() != Some(leaf.common_name.as_str()) {
        out.push(format!(
            "CN is {:?}, expected {:?}",
            info.common_name.as_deref().unwrap_or_default(),
            leaf.common_name
        ));
    }
    if info.organizations != leaf.organizations {
        out.push(format!(
            "O is {:?}, expected {:?}",
            info.organizations, leaf.organizations
        ));
    }
    if let Some(m) = san_problem(&info.sans(), leaf) {
        out.push(m);
    }
    if info.server_auth != leaf.usage.server() || info.client_auth != leaf.usage.client() {
        out.push("extended key usage differs from its profile".into());
    }
    if key.algorithm() != Some(plan.key_algorithm) {
        out.push(format!(
            "key is {}, the spec asks for {}",
            key.describe(),
            plan.key_algorithm.as_str()
        ));
    }
    if info.not_after <= plan.now {
        out.push(format!(
            "expired on {}",
            crate::report::format_time(info.not_after)
        ));
    }
    out
}

/// How the SANs on disk differ from the plan's, if they do.
fn san_problem(have: &[String], leaf: &LeafSpec) -> Option<String> {
    let mut have = have.to_vec();
    let mut want: Vec<String> = leaf.sans.iter().map(ToString::to_string).collect();
    have.sort();
    want.sort();
    if have == want {
        return None;
    }
    let join = |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let missing: Vec<&String> = want.iter().filter(|w| !have.contains(w)).collect();
    let extra: Vec<&String> = have.iter().filter(|h| !want.contains(h)).collect();
    let mut m = "SANs differ from the spec".to_owned();
    if !missing.is_empty() {
        m.push_str(&format!(", missing {}", join(missing)));
    }
    if !extra.is_empty() {
        m.push_str(&format!(", not in the spec {}", join(extra)));
    }
    Some(m)
}

//! Every certificate of random specs, verified by verifiers that did not make them:
//! `rustls-webpki` builds and checks each chain up to its root (signatures, path length, key
//! usage, validity), and `x509-parser` reads subjects, SANs and usages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::net::IpAddr;

use frankenetes_pki::{CaId, Pki, PkiPlan, Usage};
use frankenetes_spec::{CaMode, ClusterName, ClusterSpec, KeyAlgorithm, NodeName, NodeSpec};
use proptest::prelude::*;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::*;

fn spec(
    cp: usize,
    workers: usize,
    v6: bool,
    mode: CaMode,
    alg: KeyAlgorithm,
    dns_endpoint: bool,
) -> ClusterSpec {
    let ip = |i: usize| -> IpAddr {
        if v6 {
            format!("fd00:10::{:x}", i + 1).parse().unwrap()
        } else {
            format!("10.10.16.{}", i + 11).parse().unwrap()
        }
    };
    let nodes = |prefix: &str, n: usize, off: usize| -> Vec<NodeSpec> {
        (0..n)
            .map(|i| {
                NodeSpec::new(
                    NodeName::try_from(format!("{prefix}-{i:02}")).unwrap(),
                    ip(i + off),
                )
            })
            .collect()
    };
    let mut s = ClusterSpec::new(
        ClusterName::try_from("prop").unwrap(),
        "v1.35.0".parse().unwrap(),
        nodes("control", cp, 0),
    );
    s.workers = nodes("worker", workers, 100);
    s.pki.ca_mode = mode;
    s.pki.key_algorithm = alg;
    if v6 {
        s.network.service_cidr = "fd00:96::/112".parse().unwrap();
    }
    if dns_endpoint {
        s.control_plane_endpoint = Some("api.prop.example:6443".parse().unwrap());
    }
    s.validate().expect("generated spec is valid");
    s
}

fn x509(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).expect("parses").1
}

/// Checks one PKI completely; returns the number of leaves checked.
fn verify_all(spec: &ClusterSpec, pki: &Pki) -> usize {
    let plan = pki.plan();
    let root_id = if plan.ca_mode == CaMode::Intermediate {
        CaId::Root
    } else {
        CaId::Kubernetes
    };
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        plan.now.unix_timestamp().try_into().unwrap(),
    ));

    // CAs: shape and nesting.
    for ca in pki.cas() {
        let c = x509(ca.cert_der());
        let bc = c
            .basic_constraints()
            .unwrap()
            .expect("basicConstraints")
            .value;
        assert!(bc.ca, "{:?} is a CA", ca.id());
        let ku = c.key_usage().unwrap().expect("keyUsage").value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(
            c.extended_key_usage().unwrap().is_none(),
            "CAs carry no EKU"
        );
        match (plan.ca_mode, ca.id()) {
            (CaMode::Intermediate, CaId::Root) => assert_eq!(bc.path_len_constraint, Some(1)),
            (CaMode::Intermediate, _) => {
                assert_eq!(bc.path_len_constraint, Some(0));
                let root = x509(pki.ca(CaId::Root).unwrap().cert_der());
                c.verify_signature(Some(root.public_key()))
                    .expect("intermediate signed by root");
                assert!(c.validity().not_after <= root.validity().not_after);
            }
            _ => {
                assert_eq!(bc.path_len_constraint, None);
                c.verify_signature(None).expect("self-signed");
            }
        }
    }

    for leaf in pki.leaves() {
        let issuer_id = leaf.spec().issuer;
        let issuer = pki.ca(issuer_id).unwrap();
        // The trust anchor is the root in intermediate mode, the CA itself in kubeadm mode.
        let anchor_id = if plan.ca_mode == CaMode::Intermediate {
            root_id
        } else {
            issuer_id
        };
        let anchor_der = CertificateDer::from(pki.ca(anchor_id).unwrap().cert_der().to_vec());
        let anchors = [webpki::anchor_from_trusted_cert(&anchor_der)
            .unwrap()
            .to_owned()];
        // Intermediates come from the leaf's own file, as a TLS peer would send them.
        let chain: Vec<CertificateDer<'static>> = ::pem::parse_many(leaf.cert_pem())
            .unwrap()
            .into_iter()
            .map(|p| CertificateDer::from(p.into_contents()))
            .collect();
        assert_eq!(
            chain.len(),
            if plan.ca_mode == CaMode::Intermediate {
                2
            } else {
                1
            },
            "{}",
            leaf.name()
        );
        let ee_der = CertificateDer::from(leaf.cert_der().to_vec());
        let ee = EndEntityCert::try_from(&ee_der).unwrap();
        let usages: Vec<KeyUsage> = match leaf.spec().usage {
            Usage::Server => vec![KeyUsage::server_auth()],
            Usage::Client => vec![KeyUsage::client_auth()],
            _ => vec![KeyUsage::server_auth(), KeyUsage::client_auth()],
        };
        for u in usages {
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &chain[1..],
                now,
                u,
                None,
                None,
            )
            .unwrap_or_else(|e| panic!("{}: webpki rejects the chain: {e:?}", leaf.name()));
        }
        // The wrong usage must be refused (a client cert is no server cert and vice versa).
        let wrong = match leaf.spec().usage {
            Usage::Server => Some(KeyUsage::client_auth()),
            Usage::Client => Some(KeyUsage::server_auth()),
            _ => None,
        };
        if let Some(u) = wrong {
            assert!(
                ee.verify_for_usage(
                    webpki::ALL_VERIFICATION_ALGS,
                    &anchors,
                    &chain[1..],
                    now,
                    u,
                    None,
                    None
                )
                .is_err()
            );
        }

        // Independent reading of what is inside.
        let c = x509(leaf.cert_der());
        let cn: Vec<&str> = c
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(cn, [leaf.spec().common_name.as_str()]);
        let orgs: Vec<&str> = c
            .subject()
            .iter_organization()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            orgs,
            leaf.spec()
                .organizations
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        let mut sans: Vec<String> = match c.subject_alternative_name().unwrap() {
            None => vec![],
            Some(ext) => ext
                .value
                .general_names
                .iter()
                .map(|g| match g {
                    GeneralName::DNSName(d) => (*d).to_owned(),
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()
                    }
                    GeneralName::IPAddress(b) => {
                        IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()
                    }
                    other => panic!("unexpected SAN {other:?}"),
                })
                .collect(),
        };
        let mut want: Vec<String> = leaf.spec().sans.iter().map(ToString::to_string).collect();
        sans.sort();
        want.sort();
        assert_eq!(
            sans,
            want,
            "{}: SANs are exactly the derived ones",
            leaf.name()
        );
        for name in &want {
            let sn = ServerName::try_from(name.as_str()).unwrap();
            ee.verify_is_valid_for_subject_name(&sn)
                .unwrap_or_else(|e| panic!("{} not valid for {name}: {e:?}", leaf.name()));
        }
        let eku = c.extended_key_usage().unwrap().expect("EKU").value;
        assert_eq!(
            (eku.server_auth, eku.client_auth),
            (leaf.spec().usage.server(), leaf.spec().usage.client()),
            "{}",
            leaf.name()
        );
        let ku = c.key_usage().unwrap().expect("keyUsage").value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        assert_eq!(
            ku.key_encipherment(),
            plan.key_algorithm.is_rsa(),
            "keyEncipherment only for RSA"
        );
        assert!(
            !c.basic_constraints()
                .unwrap()
                .expect("basicConstraints")
                .value
                .ca
        );
        assert!(
            c.get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
                .unwrap()
                .is_some()
        );
        assert!(
            c.get_extension_unique(
                &x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER
            )
            .unwrap()
            .is_some()
        );
        let ic = x509(issuer.cert_der());
        assert!(
            c.validity().not_before >= ic.validity().not_before,
            "{}: starts inside its issuer",
            leaf.name()
        );
        assert!(
            c.validity().not_after <= ic.validity().not_after,
            "{}: ends inside its issuer",
            leaf.name()
        );
        assert!(
            c.tbs_certificate.raw_serial().len() >= 16
                && c.tbs_certificate.raw_serial()[0] & 0x80 == 0,
            "positive 126-bit serial"
        );
    }

    // Planned SANs are the ones spec derives: every control-plane name and IP reaches its apiserver.
    for n in &spec.control_plane {
        let leaf = pki.leaf(&format!("{}/apiserver", n.name)).unwrap();
        assert_eq!(leaf.spec().sans, spec.apiserver_sans(n));
    }
    // Serial numbers unique across the whole PKI.
    let mut serials: Vec<Vec<u8>> = pki
        .leaves()
        .iter()
        .map(|l| x509(l.cert_der()).tbs_certificate.raw_serial().to_vec())
        .collect();
    serials.extend(
        pki.cas()
            .iter()
            .map(|c| x509(c.cert_der()).tbs_certificate.raw_serial().to_vec()),
    );
    let n = serials.len();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), n, "serials are unique");
    pki.leaves().len()
}

fn algorithm() -> impl Strategy<Value = KeyAlgorithm> {
    prop_oneof![
        6 => Just(KeyAlgorithm::EcdsaP256),
        3 => Just(KeyAlgorithm::EcdsaP384),
        2 => Just(KeyAlgorithm::Rsa2048),
        1 => Just(KeyAlgorithm::Rsa3072),
        1 => Just(KeyAlgorithm::Rsa4096),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_leaf_verifies_up_to_its_root(
        cp in 1usize..=7, workers in 0usize..=3, v6 in any::<bool>(), intermediate in any::<bool>(),
        alg in algorithm(), dns_endpoint in any::<bool>(),
    ) {
        // Large RSA keys take long; keep those specs small so the suite stays fast.
        let (cp, workers) = if matches!(alg, KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096) { (1, workers.min(1)) } else { (cp, workers) };
        let mode = if intermediate { CaMode::Intermediate } else { CaMode::Kubeadm };
        let s = spec(cp, workers, v6, mode, alg, dns_endpoint);
        let pki = Pki::generate(&PkiPlan::from(&s)).unwrap();
        let leaves = verify_all(&s, &pki);
        prop_assert_eq!(leaves, cp * 9 + 2 * (cp + workers) + 3);
    }
}

/// A leaf is never allowed to outlive its issuer, even when the spec asks for it.
#[test]
fn leaves_are_clamped_to_their_ca() {
    let s = spec(
        1,
        0,
        false,
        CaMode::Intermediate,
        KeyAlgorithm::EcdsaP256,
        false,
    );
    let mut plan = PkiPlan::from(&s);
    plan.ca_validity = std::time::Duration::from_secs(30 * 24 * 3600);
    plan.cert_validity = std::time::Duration::from_secs(365 * 24 * 3600);
    let pki = Pki::generate(&plan).unwrap();
    verify_all(&s, &pki);
    let root_end = x509(pki.ca(CaId::Root).unwrap().cert_der())
        .validity()
        .not_after;
    for l in pki.leaves() {
        assert!(x509(l.cert_der()).validity().not_after <= root_end);
    }
}

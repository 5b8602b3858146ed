//! Signing: CA and leaf certificate parameters, handed to rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::Error;
use crate::keys::PrivateKey;
use crate::plan::{CaSpec, LeafSpec, Usage};

/// What a leaf certificate says about its subject: from the plan ([`Profile::of`]), or read
/// back from a certificate on disk (`renew`).
pub(crate) struct Profile<'a> {
    pub(crate) common_name: &'a str,
    pub(crate) organizations: &'a [String],
    pub(crate) sans: &'a [frankenetes_spec::San],
    pub(crate) usage: Usage,
}

impl<'a> Profile<'a> {
    /// The plan's profile of a leaf.
    pub(crate) fn of(leaf: &'a LeafSpec) -> Self {
        Self {
            common_name: &leaf.common_name,
            organizations: &leaf.organizations,
            sans: &leaf.sans,
            usage: leaf.usage,
        }
    }
}

/// A random, positive, 126-bit serial number (RFC 5280 asks for at most 20 octets and
/// CA/Browser Forum rules for at least 64 random bits).
pub(crate) fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::Crypto("the system random number generator failed".into()))?;
    // Positive and without a leading zero octet, so the DER integer is always 16 bytes.
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn subject(common_name: &str, organizations: &[String]) -> Result<DistinguishedName, Error> {
    let mut dn = DistinguishedName::new();
    // Go's (and so kubeadm's) order: O before CN. rcgen keeps one value per attribute type, so
    // a second organization is written through the custom type with the same OID (2.5.4.10).
    match organizations {
        [] => {}
        [o] => dn.push(DnType::OrganizationName, o.as_str()),
        [o1, o2] => {
            dn.push(DnType::OrganizationName, o1.as_str());
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), o2.as_str());
        }
        more => {
            return Err(Error::Unsupported(format!(
                "{common_name}: {} organizations; at most two are supported",
                more.len()
            )));
        }
    }
    dn.push(DnType::CommonName, common_name);
    Ok(dn)
}

pub(crate) fn ca_params(
    spec: &CaSpec,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject(&spec.common_name, &[])?;
    p.serial_number = Some(random_serial()?);
    p.not_before = not_before;
    p.not_after = not_after;
    p.is_ca = IsCa::Ca(match spec.path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    // kubeadm puts the CN in a DNS SAN of each CA; keep it for tools that look there.
    if spec.id != crate::CaId::Root {
        p.subject_alt_names = vec![SanType::DnsName(
            spec.common_name
                .clone()
                .try_into()
                .map_err(|_| Error::Unsupported(format!("CA name {}", spec.common_name)))?,
        )];
    }
    p.use_authority_key_identifier_extension = spec.parent.is_some();
    Ok(p)
}

pub(crate) fn leaf_params(
    leaf: &Profile<'_>,
    rsa: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject(leaf.common_name, leaf.organizations)?;
    p.serial_number = Some(random_serial()?);
    p.not_before = not_before;
    p.not_after = not_after;
    p.is_ca = IsCa::ExplicitNoCa;
    // keyEncipherment only means something for RSA key transport; ECDSA keys cannot do it.
    p.key_usages = if rsa {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    if leaf.usage.server() {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if leaf.usage.client() {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    p.subject_alt_names = leaf
        .sans
        .iter()
        .map(|s| match s {
            frankenetes_spec::San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            frankenetes_spec::San::Dns(d) => d
                .as_str()
                .to_owned()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|_| Error::Unsupported(format!("DNS name {d}"))),
        })
        .collect::<Result<_, _>>()?;
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// Signs `params` for `subject_key` with the CA whose certificate is `ca_der` and key `ca_key`.
pub(crate) fn sign(
    params: &CertificateParams,
    subject_key: &PrivateKey,
    issuer: Option<(&[u8], &PrivateKey)>,
) -> Result<Vec<u8>, Error> {
    let cert = match issuer {
        None => params.self_signed(subject_key.key_pair()),
        Some((ca_der, ca_key)) => {
            let issuer =
                Issuer::from_ca_cert_der(&ca_der.into(), ca_key.key_pair()).map_err(|e| {
                    Error::Crypto(format!("cannot use the CA certificate to sign: {e}"))
                })?;
            params.signed_by(subject_key.key_pair(), &issuer)
        }
    }
    .map_err(|e| Error::Crypto(format!("cannot sign: {e}")))?;
    Ok(cert.der().to_vec())
}

//! Reading certificates back, with `x509-parser` (not the library that wrote them): subject,
//! SANs, usages, validity, and signature checks against an issuer.

use std::net::IpAddr;

use ::time::OffsetDateTime;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// What a certificate says, as read by an independent parser.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertInfo {
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject organizations.
    pub organizations: Vec<String>,
    /// Issuer common name.
    pub issuer_common_name: Option<String>,
    /// DER of the subject name (to match issuers exactly).
    pub subject_raw: Vec<u8>,
    /// DER of the issuer name.
    pub issuer_raw: Vec<u8>,
    /// Serial number, big-endian bytes.
    pub serial: Vec<u8>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// basicConstraints path length.
    pub path_len: Option<u32>,
    /// DNS subject alternative names.
    pub dns_sans: Vec<String>,
    /// IP subject alternative names.
    pub ip_sans: Vec<IpAddr>,
    /// extendedKeyUsage serverAuth.
    pub server_auth: bool,
    /// extendedKeyUsage clientAuth.
    pub client_auth: bool,
    /// Whether an extendedKeyUsage extension is present at all.
    pub has_eku: bool,
    /// keyUsage bits: digitalSignature, keyEncipherment, keyCertSign, cRLSign.
    pub key_usage: KeyUsageBits,
    /// Subject key identifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// Authority key identifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
}

/// The keyUsage bits this PKI sets or checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KeyUsageBits {
    /// digitalSignature.
    pub digital_signature: bool,
    /// keyEncipherment.
    pub key_encipherment: bool,
    /// keyCertSign.
    pub key_cert_sign: bool,
    /// cRLSign.
    pub crl_sign: bool,
}

impl CertInfo {
    /// Every SAN as text, DNS names then addresses, in certificate order.
    pub fn sans(&self) -> Vec<String> {
        self.dns_sans
            .iter()
            .cloned()
            .chain(self.ip_sans.iter().map(ToString::to_string))
            .collect()
    }

    /// Whether the certificate is self-signed (issuer name equals subject name).
    pub fn is_self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }
}

/// Parses one DER certificate.
pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    let cn = |name: &X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
    };
    let mut info = CertInfo {
        common_name: cn(cert.subject()),
        organizations: cert
            .subject()
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_owned)
            .collect(),
        issuer_common_name: cn(cert.issuer()),
        subject_raw: cert.subject().as_raw().to_vec(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        serial: cert.raw_serial().to_vec(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        is_ca: false,
        path_len: None,
        dns_sans: Vec::new(),
        ip_sans: Vec::new(),
        server_auth: false,
        client_auth: false,
        has_eku: false,
        key_usage: KeyUsageBits::default(),
        subject_key_id: None,
        authority_key_id: None,
        spki: cert.public_key().raw.to_vec(),
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => {
                info.is_ca = bc.ca;
                info.path_len = bc.path_len_constraint;
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => info.dns_sans.push((*d).to_owned()),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => info
                                .ip_sans
                                .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                            16 => info
                                .ip_sans
                                .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                            n => return Err(format!("an IP SAN of {n} bytes")),
                        },
                        other => return Err(format!("unexpected SAN {other}")),
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                info.has_eku = true;
                info.server_auth = eku.server_auth;
                info.client_auth = eku.client_auth;
            }
            ParsedExtension::KeyUsage(ku) => {
                info.key_usage = KeyUsageBits {
                    digital_signature: ku.digital_signature(),
                    key_encipherment: ku.key_encipherment(),
                    key_cert_sign: ku.key_cert_sign(),
                    crl_sign: ku.crl_sign(),
                };
            }
            ParsedExtension::SubjectKeyIdentifier(k) => info.subject_key_id = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                info.authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Whether `child` carries a valid signature by `issuer`'s key (and names it as issuer).
pub fn verify_signed_by(child_der: &[u8], issuer_der: &[u8]) -> Result<(), String> {
    let (_, child) =
        X509Certificate::from_der(child_der).map_err(|e| format!("cannot parse: {e}"))?;
    let (_, issuer) =
        X509Certificate::from_der(issuer_der).map_err(|e| format!("cannot parse issuer: {e}"))?;
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "issued by {:?}, not by {:?}",
            child.issuer().to_string(),
            issuer.subject().to_string()
        ));
    }
    child
        .verify_signature(Some(issuer.public_key()))
        .map_err(|e| format!("signature does not verify: {e}"))
}

/// The PKI's algorithm of a SubjectPublicKeyInfo, when it is one the PKI can make.
pub fn key_algorithm(spki_der: &[u8]) -> Option<frankenetes_spec::KeyAlgorithm> {
    use frankenetes_spec::KeyAlgorithm as A;
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Some(A::Rsa2048),
            3072 => Some(A::Rsa3072),
            4096 => Some(A::Rsa4096),
            _ => None,
        },
        PublicKey::EC(point) => match point.key_size() {
            256 => Some(A::EcdsaP256),
            384 => Some(A::EcdsaP384),
            _ => None,
        },
        _ => None,
    }
}

/// `ECDSA P-256`, `RSA 2048`, … for a SubjectPublicKeyInfo.
pub fn describe_spki(spki_der: &[u8]) -> String {
    let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(spki_der) else {
        return "unknown key".into();
    };
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => match point.key_size() {
            256 => "ECDSA P-256".into(),
            384 => "ECDSA P-384".into(),
            n => format!("ECDSA {n}-bit"),
        },
        _ => "unknown key".into(),
    }
}

/// Every `CERTIFICATE` block of a PEM file, as DER.
pub fn pem_certs(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = ::pem::parse_many(text).map_err(|e| format!("not valid PEM: {e}"))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(certs)
}

/// PEM-encodes DER certificates, one block each.
pub fn to_pem(ders: &[&[u8]]) -> String {
    ders.iter()
        .map(|d| {
            ::pem::encode_config(
                &::pem::Pem::new("CERTIFICATE", d.to_vec()),
                ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
            )
        })
        .collect()
}

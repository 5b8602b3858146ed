//! EC2 user data from an Ignition config, within EC2's 16 KiB limit.
//!
//! EC2 limits user data to 16384 bytes before base64. A node's Ignition config carries its
//! certificates, kubeconfigs and manifests and is usually larger. Ignition's AWS provider reads
//! user data as it is: gzip-compressed user data was proposed twice and not merged
//! (coreos/ignition#398, 2017, and #1100, 2020; only the Akamai provider gained automatic gunzip,
//! #1934, 2024). What Ignition does support on every platform since spec 3.1.0 (Ignition 2.3.0,
//! "Support compression for CA certs and merged/replaced configs" and "compression for data
//! URIs") is a config whose `ignition.config.replace` points at a resource with
//! `"compression": "gzip"`. So a payload over the limit becomes a small stub config that
//! replaces itself with the gzip-compressed original carried inline as a `data:` URL; no bucket,
//! no instance role, nothing else to leak or delete.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Error;

/// EC2's limit on user data, in bytes, before base64.
pub const USER_DATA_LIMIT: usize = 16 * 1024;

/// The Ignition spec version of the stub (Fedora CoreOS has accepted 3.4.0 since 2022).
const STUB_VERSION: &str = "3.4.0";

/// How a payload was fitted into user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// As given (it fits).
    Plain,
    /// A stub Ignition config replacing itself with the gzip-compressed payload (a `data:` URL).
    GzipStub,
}

/// The user data (raw bytes, before base64) for `payload`, and how it was encoded. `unit`
/// names the machine in the error.
pub fn encode(unit: &str, payload: &[u8]) -> Result<(Vec<u8>, Encoding), Error> {
    if payload.len() <= USER_DATA_LIMIT {
        return Ok((payload.to_vec(), Encoding::Plain));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(payload);
    let compressed = gz.finish().unwrap_or_default();
    let stub = format!(
        r#"{{"ignition":{{"version":"{STUB_VERSION}","config":{{"replace":{{"compression":"gzip","source":"data:;base64,{}"}}}}}}}}"#,
        STANDARD.encode(&compressed)
    );
    if stub.len() > USER_DATA_LIMIT {
        return Err(Error::UserDataTooLarge {
            unit: unit.to_owned(),
            raw: payload.len(),
            encoded: stub.len(),
            limit: USER_DATA_LIMIT,
        });
    }
    Ok((stub.into_bytes(), Encoding::GzipStub))
}

/// The payload back from user data made by [`encode`] (for tests and `status`).
pub fn decode(user_data: &[u8]) -> Option<Vec<u8>> {
    let prefix = br#"{"ignition":{"version":""#;
    let marker = b"\"compression\":\"gzip\",\"source\":\"data:;base64,";
    if !user_data.starts_with(prefix) {
        return Some(user_data.to_vec());
    }
    let Some(at) = find(user_data, marker) else {
        return Some(user_data.to_vec());
    };
    let rest = &user_data[at + marker.len()..];
    let end = rest.iter().position(|b| *b == b'"')?;
    let compressed = STANDARD.decode(&rest[..end]).ok()?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut out)
        .ok()?;
    Some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_pass_unchanged() {
        let (ud, enc) = encode("control-01", br#"{"ignition":{"version":"3.4.0"}}"#).unwrap();
        assert_eq!(enc, Encoding::Plain);
        assert_eq!(ud, br#"{"ignition":{"version":"3.4.0"}}"#);
    }

    #[test]
    fn large_payloads_become_a_gzip_stub_that_round_trips() {
        let mut big = String::from(r#"{"ignition":{"version":"3.4.0"},"storage":{"files":["#);
        for i in 0..600 {
            big.push_str(&format!(r#"{{"path":"/etc/kubernetes/f{i}","mode":420}},"#));
        }
        big.push_str("]}}");
        assert!(big.len() > USER_DATA_LIMIT);
        let (ud, enc) = encode("control-01", big.as_bytes()).unwrap();
        assert_eq!(enc, Encoding::GzipStub);
        assert!(ud.len() <= USER_DATA_LIMIT);
        let stub: serde_json::Value = serde_json::from_slice(&ud).unwrap();
        assert_eq!(stub["ignition"]["config"]["replace"]["compression"], "gzip");
        assert_eq!(decode(&ud).unwrap(), big.as_bytes());
    }

    #[test]
    fn incompressible_payloads_are_refused_with_the_sizes() {
        // Pseudo-random bytes do not compress.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x & 0xff) as u8
            })
            .collect();
        let err = encode("control-02", &noise).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("control-02") && msg.contains("40000") && msg.contains("16384"),
            "{msg}"
        );
    }
}

//! WireGuard keys: X25519 key pairs and preshared keys, in the base64 form `wg genkey`,
//! `wg pubkey` and `wg genpsk` print.
//!
//! Private and preshared keys are zeroized on drop and never shown by `Debug`. Randomness comes
//! from a [`KeySource`]: [`OsRandom`] (the operating system, via `getrandom`) for real keys, or
//! [`SeededRandom`] for reproducible keys in tests and snapshots.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;

/// Where key material comes from.
///
/// Implement it to inject randomness; the crate ships [`OsRandom`] and [`SeededRandom`].
pub trait KeySource {
    /// Fills `out` with 32 random bytes.
    fn fill(&mut self, out: &mut [u8; 32]) -> Result<(), Error>;
}

/// The operating system's random number generator (`getrandom(2)` on Linux). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl KeySource for OsRandom {
    fn fill(&mut self, out: &mut [u8; 32]) -> Result<(), Error> {
        getrandom::fill(out).map_err(|e| Error::Random {
            reason: e.to_string(),
        })
    }
}

/// Deterministic key material from a seed: SHA-256 of the seed and a counter.
///
/// **Not secret**: anyone who knows the seed knows every key. For tests, snapshots and
/// examples only.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    seed: u64,
    counter: u64,
}

impl SeededRandom {
    /// A source that yields the same keys, in the same order, for the same seed.
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }
}

impl KeySource for SeededRandom {
    fn fill(&mut self, out: &mut [u8; 32]) -> Result<(), Error> {
        let mut h = Sha256::new();
        h.update(b"frankenetes-netgw seeded key source");
        h.update(self.seed.to_le_bytes());
        h.update(self.counter.to_le_bytes());
        self.counter += 1;
        out.copy_from_slice(&h.finalize());
        Ok(())
    }
}

fn decode_key(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if !frankenetes_spec::gateway::is_wireguard_key(s) {
        return Err(
            "is not a WireGuard key: expected 44 characters of base64 (32 bytes), as `wg genkey` and `wg pubkey` print"
                .into(),
        );
    }
    let bytes = Zeroizing::new(B64.decode(s).map_err(|e| e.to_string())?);
    let mut out = [0u8; 32];
    if bytes.len() != 32 {
        return Err(format!("decodes to {} bytes, not 32", bytes.len()));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// A WireGuard public key (a Curve25519 point), shown as base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for PublicKey {
    /// Base64, as `wg pubkey` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&B64.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = String;
    /// Parses base64 of 32 bytes; the error says what is wrong (the caller names the field).
    fn from_str(s: &str) -> Result<Self, String> {
        decode_key(s).map(Self)
    }
}

/// A WireGuard private key (an X25519 static secret). Zeroized on drop; `Debug` shows only
/// the public half.
#[derive(Clone)]
pub struct PrivateKey(x25519_dalek::StaticSecret);

impl PrivateKey {
    /// A new key from `source`, clamped as `wg genkey` clamps it.
    pub fn generate(source: &mut dyn KeySource) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        source.fill(&mut bytes)?;
        // Curve25519 clamping, as wg(8) does in `genkey`; X25519 clamps again when used.
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        Ok(Self::from_bytes(*bytes))
    }

    /// From raw bytes (for example, a key read from a file).
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let key = Self(x25519_dalek::StaticSecret::from(bytes));
        bytes.zeroize();
        key
    }

    /// Parses the base64 form `wg genkey` prints. The error says what is wrong, without the
    /// input.
    pub fn from_base64(s: &str) -> Result<Self, String> {
        decode_key(s).map(Self::from_bytes)
    }

    /// The base64 form, as `wg genkey` prints it; zeroized when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0.as_bytes()))
    }

    /// The public key, as `wg pubkey` computes it.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted>, public {})", self.public_key())
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        // Not constant time; keys are compared in tests and when reconciling state only.
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for PrivateKey {}

/// A WireGuard preshared key: 32 random bytes mixed into the handshake (a hedge against a
/// future quantum computer). Zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey(Zeroizing<[u8; 32]>);

impl PresharedKey {
    /// A new key from `source`, like `wg genpsk`.
    pub fn generate(source: &mut dyn KeySource) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        source.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Parses the base64 form `wg genpsk` prints.
    pub fn from_base64(s: &str) -> Result<Self, String> {
        decode_key(s).map(|b| Self(Zeroizing::new(b)))
    }

    /// The base64 form; zeroized when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(*self.0))
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

/// A private key and its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyPair {
    /// The private key.
    pub private: PrivateKey,
    /// Its public key.
    pub public: PublicKey,
}

impl KeyPair {
    /// A new key pair from `source`.
    pub fn generate(source: &mut dyn KeySource) -> Result<Self, Error> {
        Ok(Self::from_private(PrivateKey::generate(source)?))
    }

    /// The pair for a private key.
    pub fn from_private(private: PrivateKey) -> Self {
        let public = private.public_key();
        Self { private, public }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn rfc7748_vector() {
        // RFC 7748 section 6.1: Alice's key pair.
        let k = PrivateKey::from_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            k.public_key().as_bytes(),
            &hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
    }

    #[test]
    fn base64_round_trip_and_clamping() {
        let mut src = SeededRandom::new(1);
        let k = PrivateKey::generate(&mut src).unwrap();
        let b = k.to_base64();
        assert_eq!(b.len(), 44);
        assert!(frankenetes_spec::gateway::is_wireguard_key(&b));
        let back = PrivateKey::from_base64(&b).unwrap();
        assert_eq!(back, k);
        let raw = B64.decode(b.as_bytes()).unwrap();
        assert_eq!(raw[0] & 7, 0);
        assert_eq!(raw[31] & 0xc0, 0x40);
        let p: PublicKey = k.public_key().to_string().parse().unwrap();
        assert_eq!(p, k.public_key());
    }

    #[test]
    fn seeded_is_reproducible_and_os_is_not() {
        let a = KeyPair::generate(&mut SeededRandom::new(7)).unwrap();
        let b = KeyPair::generate(&mut SeededRandom::new(7)).unwrap();
        let c = KeyPair::generate(&mut SeededRandom::new(8)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let x = KeyPair::generate(&mut OsRandom).unwrap();
        let y = KeyPair::generate(&mut OsRandom).unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut src = SeededRandom::new(3);
        let pair = KeyPair::generate(&mut src).unwrap();
        let psk = PresharedKey::generate(&mut src).unwrap();
        let shown = format!("{pair:?} {psk:?}");
        assert!(
            !shown.contains(pair.private.to_base64().as_str()),
            "{shown}"
        );
        assert!(!shown.contains(psk.to_base64().as_str()), "{shown}");
        assert!(shown.contains(&pair.public.to_string()));
    }

    #[test]
    fn bad_keys_are_rejected() {
        for bad in [
            "",
            "abc",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",
        ] {
            assert!(bad.parse::<PublicKey>().is_err(), "{bad:?}");
            assert!(PrivateKey::from_base64(bad).is_err(), "{bad:?}");
        }
    }
}

//! Network values: CIDRs and certificate subject alternative names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::names::DnsName;
use crate::scalar::ValueError;

/// A CIDR block written as its network address (`10.96.0.0/12`); host bits must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr(IpNet);

impl Cidr {
    /// The block.
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// Whether the two blocks share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }

    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The `n`-th address of the block (0 is the network address), or `None` past its end.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let host_bits = u32::from(self.0.max_prefix_len() - self.0.prefix_len());
        if host_bits < 128 && n >> host_bits != 0 {
            return None;
        }
        Some(match self.0.network() {
            IpAddr::V4(a) => {
                let n = u32::try_from(n).ok()?;
                IpAddr::V4((u32::from(a) | n).into())
            }
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) | n).into()),
        })
    }

    /// The number of host bits (32 minus the prefix length for IPv4).
    pub fn host_bits(&self) -> u8 {
        self.0.max_prefix_len() - self.0.prefix_len()
    }
}

impl FromStr for Cidr {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let net: IpNet = s.parse().map_err(|_| ValueError {
            input: s.to_owned(),
            reason: "is not a CIDR block; write it like 10.96.0.0/12 or fd00:10::/108".into(),
        })?;
        if net.network() != net.addr() {
            return Err(ValueError {
                input: s.to_owned(),
                reason: format!("has host bits set; did you mean {}?", net.trunc()),
            });
        }
        Ok(Self(net))
    }
}

impl TryFrom<String> for Cidr {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A subject alternative name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    /// A DNS name.
    Dns(DnsName),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for San {
    /// The bare value, as `openssl` and kubeadm print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => d.fmt(f),
            San::Ip(ip) => ip.fmt(f),
        }
    }
}

/// Orders a SAN list the way kubeadm does: DNS names de-duplicated and sorted first, then IP
/// addresses de-duplicated in the order first seen.
pub fn kubeadm_san_order(sans: impl IntoIterator<Item = San>) -> Vec<San> {
    let mut dns: Vec<San> = Vec::new();
    let mut ips: Vec<San> = Vec::new();
    for s in sans {
        let bucket = if matches!(s, San::Dns(_)) {
            &mut dns
        } else {
            &mut ips
        };
        if !bucket.contains(&s) {
            bucket.push(s);
        }
    }
    dns.sort();
    dns.extend(ips);
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c: Cidr = "10.96.0.0/12".parse().unwrap();
        assert_eq!(c.nth(1).unwrap().to_string(), "10.96.0.1");
        assert_eq!(c.nth(10).unwrap().to_string(), "10.96.0.10");
        assert_eq!(c.host_bits(), 20);
        let small: Cidr = "10.0.0.0/30".parse().unwrap();
        assert!(small.nth(4).is_none());
        assert!(small.nth(3).is_some());
        let v6: Cidr = "fd00:10::/108".parse().unwrap();
        assert_eq!(v6.nth(10).unwrap().to_string(), "fd00:10::a");
        let err = "10.96.0.1/12".parse::<Cidr>().unwrap_err();
        assert!(err.reason.contains("did you mean 10.96.0.0/12"), "{err}");
        assert!("10.96.0.0".parse::<Cidr>().is_err());
        let a: Cidr = "10.0.0.0/8".parse().unwrap();
        let b: Cidr = "10.244.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        let d: Cidr = "192.168.0.0/16".parse().unwrap();
        assert!(!a.overlaps(&d));
    }

    #[test]
    fn san_order_is_kubeadms() {
        let d = |s: &str| San::Dns(DnsName::try_from(s).unwrap());
        let i = |s: &str| San::Ip(s.parse().unwrap());
        let out = kubeadm_san_order([
            d("b"),
            i("10.0.0.2"),
            d("a"),
            i("10.0.0.1"),
            d("b"),
            i("10.0.0.2"),
        ]);
        assert_eq!(out, vec![d("a"), d("b"), i("10.0.0.2"), i("10.0.0.1")]);
    }
}

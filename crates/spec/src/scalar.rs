//! Validated scalar values of the config file: durations, Kubernetes versions and endpoints.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::names::DnsName;

/// Why a scalar value was refused; the message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} {reason}")]
pub struct ValueError {
    /// The rejected input.
    pub input: String,
    /// What is wrong and what is expected.
    pub reason: String,
}

fn value_err(input: &str, reason: impl Into<String>) -> ValueError {
    ValueError {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

/// A duration written the way Kubernetes and Go write them: `87600h`, `1h30m`, `90s`.
///
/// Units are `h`, `m`, `s` and `ms`; `d` (24h) is accepted as a convenience. It serializes back
/// in Go's form, so a kubeadm `ClusterConfiguration` can carry it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GoDuration(Duration);

impl GoDuration {
    /// Wraps a [`Duration`].
    pub const fn new(d: Duration) -> Self {
        Self(d)
    }
    /// A whole number of hours.
    pub const fn from_hours(h: u64) -> Self {
        Self(Duration::from_secs(h * 3600))
    }
    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for GoDuration {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        const HINT: &str = "is not a duration; write it like 8760h, 1h30m or 90s";
        if s.is_empty() {
            return Err(value_err(s, HINT));
        }
        let mut total: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(value_err(s, HINT));
            }
            let n: u128 = rest[..digits].parse().map_err(|_| value_err(s, HINT))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let millis: u128 = match &rest[..unit_len] {
                "d" => 86_400_000,
                "h" => 3_600_000,
                "m" => 60_000,
                "s" => 1_000,
                "ms" => 1,
                "" => return Err(value_err(s, format!("{HINT} (a unit is missing)"))),
                u => {
                    return Err(value_err(
                        s,
                        format!("has unknown unit {u:?}; use h, m, s or ms"),
                    ));
                }
            };
            rest = &rest[unit_len..];
            total = total
                .checked_add(
                    n.checked_mul(millis)
                        .ok_or_else(|| value_err(s, "is too long"))?,
                )
                .ok_or_else(|| value_err(s, "is too long"))?;
        }
        let millis = u64::try_from(total).map_err(|_| value_err(s, "is too long"))?;
        Ok(Self(Duration::from_millis(millis)))
    }
}

impl TryFrom<String> for GoDuration {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<GoDuration> for String {
    fn from(d: GoDuration) -> String {
        d.to_string()
    }
}

impl fmt::Display for GoDuration {
    /// Go's `time.Duration.String()` shape for whole seconds (`87600h0m0s`) is noisy; this writes
    /// the shortest exact form (`87600h`, `1h30m`, `90s`, `0s`), which Go parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
        let (m, rem) = (rem / 60_000, rem % 60_000);
        let (s, ms) = (rem / 1000, rem % 1000);
        for (v, u) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
            if v != 0 {
                write!(f, "{v}{u}")?;
            }
        }
        Ok(())
    }
}

/// A Kubernetes release, `v1.35.0` (the leading `v` is optional on input and always written).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KubernetesVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (35 for v1.35.x).
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
    /// A pre-release suffix such as `rc.1`, without the dash.
    pub pre: Option<String>,
}

impl KubernetesVersion {
    /// `v1.<minor>`, the key of every per-version table.
    pub fn minor_string(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }
}

impl FromStr for KubernetesVersion {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        const HINT: &str = "is not a Kubernetes version; write it like v1.35.0";
        let body = s.strip_prefix('v').unwrap_or(s);
        let (core, pre) = match body.split_once('-') {
            Some((c, p)) if pre_release_ok(p) => (c, Some(p.to_owned())),
            Some(_) => return Err(value_err(s, HINT)),
            None => (body, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(value_err(s, HINT));
        };
        let num = |p: &str| -> Result<u32, ValueError> {
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return Err(value_err(s, HINT));
            }
            p.parse().map_err(|_| value_err(s, HINT))
        };
        let v = Self {
            major: num(major)?,
            minor: num(minor)?,
            patch: num(patch)?,
            pre,
        };
        if v.major != 1 {
            return Err(value_err(s, "has a major version other than 1"));
        }
        Ok(v)
    }
}

/// A semver pre-release with optional build metadata: `rc.1`, `alpha.1.12+abc`, of ASCII
/// letters, digits, `.` and `-` (it ends up in image tags).
fn pre_release_ok(p: &str) -> bool {
    let part = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    match p.split_once('+') {
        Some((pre, build)) => part(pre) && part(build),
        None => part(p),
    }
}

impl TryFrom<String> for KubernetesVersion {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<KubernetesVersion> for String {
    fn from(v: KubernetesVersion) -> String {
        v.to_string()
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        Ok(())
    }
}

/// The host part of an endpoint: a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name.
    Dns(DnsName),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(d) => d.fmt(f),
            Host::Ip(ip) => ip.fmt(f),
        }
    }
}

/// `host:port` of a TCP endpoint. The port defaults to 6443, the apiserver's.
/// IPv6 hosts are written in brackets: `[fd00::10]:6443`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    /// Host name or address.
    pub host: Host,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// The apiserver's default port.
    pub const DEFAULT_PORT: u16 = 6443;

    /// An endpoint on an address.
    pub fn ip(ip: IpAddr, port: u16) -> Self {
        Self {
            host: Host::Ip(ip),
            port,
        }
    }

    /// `https://host:port`, with IPv6 hosts bracketed.
    pub fn https_url(&self) -> String {
        format!("https://{self}")
    }
}

impl FromStr for Endpoint {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        const HINT: &str = "is not an endpoint; write it as host:port (api.example:6443, 10.0.0.10:6443 or [fd00::10]:6443)";
        let bad = |why: &str| value_err(s, format!("{HINT}: {why}"));
        if s.contains("://") {
            return Err(bad("leave out the scheme"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                ),
            };
            let ip: std::net::Ipv6Addr = h
                .parse()
                .map_err(|_| bad("not an IPv6 address in brackets"))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
            return Err(bad("put an IPv6 address in brackets"));
        } else {
            let (h, p) = match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            };
            let host = match h.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Dns(DnsName::try_from(h).map_err(|e| bad(&e.reason))?),
            };
            (host, p)
        };
        let port = match port {
            None => Self::DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
                Ok(p) => p,
            },
        };
        Ok(Self { host, port })
    }
}

impl TryFrom<String> for Endpoint {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        s.parse()
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            h => write!(f, "{h}:{}", self.port),
        }
    }
}

/// Formats `host:port` with IPv6 addresses bracketed, as URLs need.
pub fn host_port(ip: IpAddr, port: u16) -> String {
    Endpoint::ip(ip, port).to_string()
}

/// A CPU architecture the Kubernetes project publishes Linux binaries for, by its name in
/// their download paths (`https://dl.k8s.io/release/<version>/bin/linux/<arch>/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64 (`amd64`).
    #[default]
    Amd64,
    /// 64-bit ARM (`arm64`).
    Arm64,
}

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    /// The name in Kubernetes' download paths: `amd64`, `arm64`.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The architecture Rust calls `arch` (`x86_64`, `aarch64`: `std::env::consts::ARCH`).
    pub fn from_rust_arch(arch: &str) -> Option<Arch> {
        match arch {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// This machine's architecture, when Kubernetes publishes binaries for it.
    pub fn host() -> Option<Arch> {
        Arch::from_rust_arch(std::env::consts::ARCH)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                value_err(
                    s,
                    "is not an architecture Kubernetes publishes binaries for (amd64, arm64)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (input, millis, back) in [
            ("87600h", 87_600 * 3_600_000, "87600h"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90s", 90_000, "1m30s"),
            ("1d", 86_400_000, "24h"),
            ("250ms", 250, "250ms"),
            ("0s", 0, "0s"),
        ] {
            let d: GoDuration = input.parse().unwrap();
            assert_eq!(d.get().as_millis(), millis, "{input}");
            assert_eq!(d.to_string(), back);
            assert_eq!(back.parse::<GoDuration>().unwrap(), d);
        }
        for bad in [
            "",
            "h",
            "10",
            "10y",
            "1.5h",
            "-1h",
            "1h-",
            "99999999999999999999h",
        ] {
            assert!(bad.parse::<GoDuration>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn versions() {
        let v: KubernetesVersion = "1.35.2".parse().unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 35, 2));
        assert_eq!(v.to_string(), "v1.35.2");
        assert_eq!(v.minor_string(), "v1.35");
        let rc: KubernetesVersion = "v1.37.0-rc.1".parse().unwrap();
        assert_eq!(rc.pre.as_deref(), Some("rc.1"));
        for bad in [
            "v1.35",
            "v2.0.0",
            "v1.035.0",
            "latest",
            "v1.35.x",
            "v1.35.0-",
            "v1.35.0-rc 1",
            "v1.35.0-rc.1\n",
            "v1.35.0-rc/1",
            "v1.35.0-rc+",
        ] {
            assert!(bad.parse::<KubernetesVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        let e: Endpoint = "api.kubelius:6443".parse().unwrap();
        assert_eq!(e.https_url(), "https://api.kubelius:6443");
        let e: Endpoint = "10.0.0.1".parse().unwrap();
        assert_eq!(e.port, 6443);
        let e: Endpoint = "[fd00::1]:443".parse().unwrap();
        assert_eq!(e.to_string(), "[fd00::1]:443");
        for bad in [
            "https://a:1",
            "fd00::1",
            "a:0",
            "a:70000",
            "A_B:1",
            "[fd00::1",
            "[x]:1",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }
}

//! What the local platform checks before it starts anything: every node address is on this
//! machine, and every port a component will listen on is free (or held by this cluster's own
//! running unit), naming the process that holds it.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

/// Whether `ip` is an address of this machine (loopback addresses always are on Linux:
/// `lo` holds all of 127.0.0.0/8).
pub(crate) fn is_local_address(ip: IpAddr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    // Binding succeeds only to an address one of our interfaces has.
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Whether `ip:port` can be listened on now.
pub(crate) fn port_free(ip: IpAddr, port: u16) -> bool {
    TcpListener::bind(SocketAddr::new(ip, port)).is_ok()
}

/// The process listening on `ip:port` (or on the wildcard address with that port), as
/// `PID 1234 (etcd)`, when `/proc` tells.
pub fn port_holder(ip: IpAddr, port: u16) -> Option<String> {
    let inode = listening_inode(ip, port)?;
    let want = format!("socket:[{inode}]");
    for proc in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if std::fs::read_link(fd.path())
                .ok()
                .is_some_and(|l| l.to_string_lossy() == want)
            {
                let comm = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
                return Some(format!("PID {pid} ({})", comm.trim()));
            }
        }
    }
    None
}

/// The inode of the listening TCP socket on `ip:port` from `/proc/net/tcp{,6}`.
fn listening_inode(ip: IpAddr, port: u16) -> Option<String> {
    const LISTEN: &str = "0A";
    let files: &[&str] = match ip {
        IpAddr::V4(_) => &["/proc/net/tcp", "/proc/net/tcp6"],
        IpAddr::V6(_) => &["/proc/net/tcp6"],
    };
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            if *state != LISTEN {
                continue;
            }
            let Some((addr_hex, port_hex)) = local.split_once(':') else {
                continue;
            };
            if u16::from_str_radix(port_hex, 16).ok() != Some(port) {
                continue;
            }
            if addr_matches(addr_hex, ip) {
                return Some((*inode).to_owned());
            }
        }
    }
    None
}

/// Whether a `/proc/net/tcp` address (little-endian hex per 32-bit word) is `ip` or a wildcard.
fn addr_matches(hex: &str, ip: IpAddr) -> bool {
    if hex.chars().all(|c| c == '0') {
        return true;
    }
    let words: Vec<u32> = hex
        .as_bytes()
        .chunks(8)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .filter_map(|w| u32::from_str_radix(w, 16).ok())
        .collect();
    match (ip, words.as_slice()) {
        (IpAddr::V4(v4), [w]) => w.to_le_bytes() == v4.octets(),
        (IpAddr::V4(v4), [0, 0, 0xffff_0000, w]) => w.to_le_bytes() == v4.octets(),
        (IpAddr::V6(v6), [a, b, c, d]) => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            bytes == v6.octets()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_seen_with_its_holder() {
        let l = TcpListener::bind("127.0.0.77:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ip: IpAddr = "127.0.0.77".parse().unwrap();
        assert!(!port_free(ip, port));
        let holder = port_holder(ip, port).expect("this test process holds it");
        assert!(
            holder.starts_with(&format!("PID {} ", std::process::id())),
            "{holder}"
        );
        drop(l);
        assert!(port_free(ip, port));
        assert_eq!(port_holder(ip, port), None);
    }

    #[test]
    fn addresses_not_on_this_machine_are_not_local() {
        assert!(is_local_address("127.0.0.13".parse().unwrap()));
        // TEST-NET-3: never assigned to a real interface.
        assert!(!is_local_address("203.0.113.77".parse().unwrap()));
    }
}

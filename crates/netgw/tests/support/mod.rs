//! The gateway's end-to-end harness, shared by `tests/netns.rs` (the rendered overlay) and
//! `tests/ignition_engine.rs` (the files the Ignition engine laid down): commands with
//! timeouts, network namespaces and processes as guards that clean up by PID and by name, TCP
//! probes from inside a namespace, and the lab scenario itself ([`lab`]).

#![allow(dead_code)] // each test crate uses a part
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
#![allow(clippy::print_stderr)] // a failed cleanup step is reported, not fatal

pub(crate) mod fake_systemd;
pub(crate) mod lab;
pub(crate) mod netns;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const INSTALL_HINT: &str = "apt-get install -y --no-install-recommends wireguard-go wireguard-tools nftables iproute2 iptables procps";
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Preconditions

pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn require_environment() {
    let tools = [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("iptables-restore", "iptables"),
        ("ip6tables-restore", "iptables"),
        ("iptables-save", "iptables"),
        ("wg", "wireguard-tools"),
        ("wg-quick", "wireguard-tools"),
        ("wireguard-go", "wireguard-go"),
        ("sysctl", "procps"),
    ];
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| find_tool(t).is_none())
        .map(|(t, p)| format!("{t} (Debian package {p})"))
        .collect();
    assert!(
        missing.is_empty(),
        "the gateway end-to-end test needs {}; install them with: {INSTALL_HINT}",
        missing.join(", ")
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "the gateway end-to-end test creates network namespaces: run it as root"
    );
    assert!(
        Path::new("/dev/net/tun").exists(),
        "wireguard-go needs /dev/net/tun (modprobe tun, or give the container the device)"
    );
}

// ---------------------------------------------------------------------------------------------
// Commands with timeouts

/// Runs a command to completion within `COMMAND_TIMEOUT`; `Err` carries its stderr.
pub(crate) fn try_run(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    try_run_for(args, stdin, COMMAND_TIMEOUT)
}

/// [`try_run`] with another time limit.
pub(crate) fn try_run_for(
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let shown = args.join(" ");
    let (status, out, err) = run_output(args, stdin, timeout)?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("`{shown}` failed ({status}): {}", err.trim()))
    }
}

/// Runs a command to completion within `timeout` (killed by its PID after it): its exit
/// status, stdout and stderr. `Err` when it could not start or took too long.
pub(crate) fn run_output(
    args: &[&str],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, String, String), String> {
    let shown = args.join(" ");
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("`{shown}`: cannot write stdin: {e}"))?;
    }
    let read = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{shown}` took longer than {timeout:?}"));
            }
            Err(e) => return Err(format!("`{shown}`: {e}")),
        }
    };
    Ok((
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

pub(crate) fn run(args: &[&str]) -> String {
    try_run(args, None).unwrap_or_else(|e| panic!("{e}"))
}

//! Stands in for systemd's private D-Bus socket (`/run/systemd/private`) while the Ignition
//! engine runs in a scratch root.
//!
//! When a config enables an instance of a template unit (`wg-quick@wg0.service`), the engine's
//! `files` stage writes the preset, then asks the running systemd for its version (it warns
//! below 240) over `/run/systemd/private`, and fails when nothing answers. A scratch root has
//! no systemd, so this peer answers: the D-Bus handshake (`AUTH EXTERNAL`, unix FDs, `BEGIN`),
//! then every method call with an empty reply, except `Properties.Get` of `Version`, answered
//! with the version given. It records every call, so the test can show what was asked. The
//! engine reaches it through a private mount namespace in which the directory holding the
//! socket is mounted on `/run` (the host's `/run` is not touched).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The peer: a thread accepting connections on a socket, one thread per connection; stopped
/// and joined when dropped.
pub(crate) struct FakeSystemd {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSystemd {
    /// Listens on `socket`, answering `Version` with `version`.
    pub(crate) fn start(socket: &Path, version: &'static str) -> Self {
        let listener =
            UnixListener::bind(socket).unwrap_or_else(|e| panic!("bind {}: {e}", socket.display()));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (stop2, calls2) = (stop.clone(), calls.clone());
        let thread = thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (stop3, calls3) = (stop2.clone(), calls2.clone());
                        conns.push(thread::spawn(move || {
                            if let Err(e) = serve(s, &stop3, &calls3, version) {
                                calls3.lock().expect("lock").push(format!("error: {e}"));
                            }
                        }));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Self {
            stop,
            calls,
            thread: Some(thread),
        }
    }

    /// Every call so far (`interface.member args`), and protocol errors (`error: ...`).
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A reader that gives up (with an error) once `stop` is set.
struct Stoppable<'a> {
    s: UnixStream,
    stop: &'a AtomicBool,
}

impl Read for Stoppable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.s.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(std::io::Error::other("stopped"));
                    }
                }
                r => return r,
            }
        }
    }
}

fn serve(
    s: UnixStream,
    stop: &AtomicBool,
    calls: &Mutex<Vec<String>>,
    version: &str,
) -> Result<(), String> {
    s.set_nonblocking(false).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let mut out = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(Stoppable { s, stop });

    // The SASL handshake: a NUL byte, then lines.
    let mut nul = [0u8; 1];
    r.read_exact(&mut nul).map_err(|e| e.to_string())?;
    if nul[0] != 0 {
        return Err("no leading NUL byte".into());
    }
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["AUTH", "EXTERNAL", ..] | ["DATA", ..] => "OK 0123456789abcdef0123456789abcdef",
            ["AUTH", ..] => "REJECTED EXTERNAL",
            ["NEGOTIATE_UNIX_FD"] => "AGREE_UNIX_FD",
            ["BEGIN"] => break,
            _ => "ERROR",
        };
        out.write_all(format!("{answer}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
    }

    // Messages.
    let mut serial = 0u32;
    loop {
        let mut fixed = [0u8; 16];
        match r.read_exact(&mut fixed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        if fixed[0] != b'l' {
            return Err("only little-endian messages are understood".into());
        }
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let (kind, flags) = (fixed[1], fixed[2]);
        let body_len = u32_at(&fixed, 4) as usize;
        let their_serial = u32_at(&fixed, 8);
        let fields_len = u32_at(&fixed, 12) as usize;
        let mut rest = vec![0u8; pad8(16 + fields_len) - 16 + body_len];
        r.read_exact(&mut rest).map_err(|e| e.to_string())?;
        let mut msg = fixed.to_vec();
        msg.extend_from_slice(&rest);
        let (interface, member) = header_strings(&msg[..16 + fields_len]);
        let body = &msg[pad8(16 + fields_len)..];
        if kind != 1 {
            continue; // only method calls are answered
        }
        let args = body_strings(body);
        calls.lock().expect("lock").push(
            format!("{interface}.{member} {}", args.join(" "))
                .trim()
                .to_owned(),
        );
        if flags & 0x1 != 0 {
            continue; // NO_REPLY_EXPECTED
        }
        serial += 1;
        let body = if member == "Get" && args.get(1).map(String::as_str) == Some("Version") {
            Some(variant_string(version))
        } else {
            None
        };
        out.write_all(&method_return(serial, their_serial, body.as_deref()))
            .map_err(|e| e.to_string())?;
    }
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// The INTERFACE (2) and MEMBER (3) header fields of a little-endian message header.
fn header_strings(h: &[u8]) -> (String, String) {
    let (mut interface, mut member) = (String::new(), String::new());
    let mut i = 16;
    while i + 4 <= h.len() {
        i = pad8(i);
        if i + 3 > h.len() {
            break;
        }
        let code = h[i];
        let sig_len = h[i + 1] as usize;
        let sig = h[i + 2..i + 2 + sig_len].to_vec();
        i += 2 + sig_len + 1;
        match sig.as_slice() {
            b"s" | b"o" => {
                i = pad4(i);
                let len = u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as usize;
                let v = String::from_utf8_lossy(&h[i + 4..i + 4 + len]).into_owned();
                i += 4 + len + 1;
                match code {
                    2 => interface = v,
                    3 => member = v,
                    _ => {}
                }
            }
            b"g" => {
                let len = h[i] as usize;
                i += 1 + len + 1;
            }
            b"u" => {
                i = pad4(i) + 4;
            }
            _ => break,
        }
    }
    (interface, member)
}

/// The leading string arguments of a body (as many as there are, best effort).
fn body_strings(b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while pad4(i) + 4 <= b.len() {
        i = pad4(i);
        let len = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        if i + 4 + len >= b.len() || b[i + 4 + len] != 0 {
            break;
        }
        out.push(String::from_utf8_lossy(&b[i + 4..i + 4 + len]).into_owned());
        i += 4 + len + 1;
    }
    out
}

/// A body of signature `v` holding the string `s`.
fn variant_string(s: &str) -> Vec<u8> {
    let mut b = vec![1, b's', 0, 0]; // signature "s", then padding to 4
    b.extend_from_slice(&u32::try_from(s.len()).expect("short").to_le_bytes());
    b.extend_from_slice(s.as_bytes());
    b.push(0);
    b
}

/// A METHOD_RETURN to `reply_to`, with a body of signature `v` when given.
fn method_return(serial: u32, reply_to: u32, body: Option<&[u8]>) -> Vec<u8> {
    let mut fields = Vec::new();
    // REPLY_SERIAL (5), a UINT32.
    fields.extend_from_slice(&[5, 1, b'u', 0]);
    fields.extend_from_slice(&reply_to.to_le_bytes());
    if body.is_some() {
        // SIGNATURE (8), a SIGNATURE "v" (the struct starts 8-aligned: 8 bytes so far).
        fields.extend_from_slice(&[8, 1, b'g', 0, 1, b'v', 0]);
    }
    let body = body.unwrap_or_default();
    let mut m = vec![b'l', 2, 0, 1];
    m.extend_from_slice(&u32::try_from(body.len()).expect("short").to_le_bytes());
    m.extend_from_slice(&serial.to_le_bytes());
    m.extend_from_slice(&u32::try_from(fields.len()).expect("short").to_le_bytes());
    m.extend_from_slice(&fields);
    m.resize(pad8(m.len()), 0);
    m.extend_from_slice(body);
    m
}

//! The HTTP side of `fetch`: one reqwest client (rustls, the system's CAs plus an optional
//! extra one), failures described for a person (URL and cause, no transport dumps), and which
//! of them are worth a retry.

use std::error::Error as StdError;
use std::io::ErrorKind;
use std::time::Duration;

use super::{Binary, Error, FetchEvent, FetchOptions, parse_sha256};

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A checksum file is 65 bytes; anything much longer is not one.
const MAX_CHECKSUM_FILE: usize = 4096;

/// Why an attempt failed: the network (maybe worth a retry) or the local disk (never).
pub(super) enum Failed {
    Net(NetFailure),
    Local(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Local(e)
    }
}

impl From<NetFailure> for Failed {
    fn from(f: NetFailure) -> Self {
        Failed::Net(f)
    }
}

/// A failed request, described.
pub(super) struct NetFailure {
    stage: Stage,
    cause: String,
    transient: bool,
}

#[derive(Clone, Copy)]
enum Stage {
    Connect,
    Transfer,
    Status(u16),
}

/// Checks that `url` can serve as a base URL: http(s), a host, no query or fragment.
pub(super) fn check_base_url(url: &str) -> Result<(), Error> {
    let bad = |reason: String| Error::BaseUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(bad(format!(
            "the scheme is `{}`; use https:// (or http://)",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host".to_owned()));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad(
            "it has a query or fragment; give the directory that holds v<version>/".to_owned(),
        ));
    }
    Ok(())
}

pub(super) struct Client {
    http: reqwest::Client,
    connect_timeout: Duration,
    read_timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl Client {
    pub(super) fn new(o: &FetchOptions) -> Result<Client, Error> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("frankenetes/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(o.connect_timeout)
            .read_timeout(o.read_timeout);
        if let Some(path) = &o.ca_cert {
            let bad = |reason: String| Error::CaCert {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("not a PEM certificate bundle: {}", innermost(&e))))?;
            if certs.is_empty() {
                return Err(bad("holds no PEM certificate".to_owned()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| Error::Client {
            cause: innermost(&e),
        })?;
        Ok(Client {
            http,
            connect_timeout: o.connect_timeout,
            read_timeout: o.read_timeout,
            retries: o.retries,
            backoff: o.backoff,
        })
    }

    /// Sends `GET url` and checks the status; the body is read with [`Transfer::chunk`].
    pub(super) async fn open(&self, url: &str) -> Result<Transfer, NetFailure> {
        let resp = self.http.get(url).send().await.map_err(|e| {
            let stage = if e.is_connect() {
                Stage::Connect
            } else {
                Stage::Transfer
            };
            let (cause, transient) = self.describe(&e, stage);
            NetFailure {
                stage,
                cause,
                transient,
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let code = status.as_u16();
            return Err(NetFailure {
                stage: Stage::Status(code),
                cause: status.canonical_reason().unwrap_or("").to_owned(),
                transient: matches!(code, 408 | 429 | 500..=599),
            });
        }
        Ok(Transfer {
            total: resp.content_length(),
            resp,
            received: 0,
            describe: (self.connect_timeout, self.read_timeout),
        })
    }

    /// The published SHA-256 of `url` (from `url.sha256`), retrying transient failures.
    pub(super) async fn checksum(
        &self,
        url: &str,
        binary: Binary,
        progress: &impl Fn(FetchEvent),
    ) -> Result<String, Error> {
        let sum_url = format!("{url}.sha256");
        let mut attempt = 0;
        let text = loop {
            attempt += 1;
            match self.read_small(&sum_url).await {
                Ok(text) => break text,
                Err(f) => {
                    let (delay, cause) = self.retry_or_fail(f, &sum_url, attempt)?;
                    progress(FetchEvent::Retrying {
                        binary,
                        attempt,
                        delay,
                        cause,
                    });
                    tokio::time::sleep(delay).await;
                }
            }
        };
        parse_sha256(&text).ok_or_else(|| Error::ChecksumFile {
            url: sum_url,
            content: text.chars().take(80).collect(),
        })
    }

    async fn read_small(&self, url: &str) -> Result<String, NetFailure> {
        let mut transfer = self.open(url).await?;
        let mut body = Vec::new();
        while let Some(chunk) = transfer.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_CHECKSUM_FILE {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// After attempt number `attempt` failed with `f`: the delay before the next attempt and
    /// the cause (with the URL) when `f` is transient and retries remain, else the final error.
    pub(super) fn retry_or_fail(
        &self,
        f: NetFailure,
        url: &str,
        attempt: u32,
    ) -> Result<(Duration, String), Error> {
        if f.transient && attempt <= self.retries {
            let factor = 1u32
                .checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX);
            let delay = self.backoff.saturating_mul(factor).min(MAX_BACKOFF);
            let what = match f.stage {
                Stage::Status(code) => format!("HTTP {code} {}", f.cause),
                _ => f.cause,
            };
            return Ok((delay, format!("{url}: {what}")));
        }
        let url = url.to_owned();
        Err(match f.stage {
            Stage::Connect => Error::Connect {
                url,
                cause: f.cause,
                attempts: attempt,
            },
            Stage::Transfer => Error::Transfer {
                url,
                cause: f.cause,
                attempts: attempt,
            },
            Stage::Status(status) => Error::Status {
                url,
                status,
                hint: if status == 404 {
                    String::new()
                } else {
                    format!(" {}", f.cause)
                },
            },
        })
    }

    fn describe(&self, e: &reqwest::Error, stage: Stage) -> (String, bool) {
        describe(e, stage, (self.connect_timeout, self.read_timeout))
    }
}

/// A response body being read.
pub(super) struct Transfer {
    resp: reqwest::Response,
    total: Option<u64>,
    received: u64,
    describe: (Duration, Duration),
}

impl Transfer {
    /// The size the server announced.
    pub(super) fn total(&self) -> Option<u64> {
        self.total
    }

    /// Bytes received so far.
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// The next piece of the body; `None` at its end.
    pub(super) async fn chunk(&mut self) -> Result<Option<Vec<u8>>, NetFailure> {
        match self.resp.chunk().await {
            Ok(Some(bytes)) => {
                self.received += bytes.len() as u64;
                Ok(Some(Vec::from(bytes)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                let (detail, transient) = describe(&e, Stage::Transfer, self.describe);
                let of = self.total.map(|t| format!(" of {t}")).unwrap_or_default();
                Err(NetFailure {
                    stage: Stage::Transfer,
                    cause: format!(
                        "the transfer stopped after {}{of} bytes: {detail}",
                        self.received
                    ),
                    transient,
                })
            }
        }
    }
}

/// A person's description of a reqwest failure, and whether a retry may help.
fn describe(e: &reqwest::Error, stage: Stage, timeouts: (Duration, Duration)) -> (String, bool) {
    let mut tls = None;
    let mut io_kind = None;
    let mut dns = false;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            tls = Some(t.clone());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        // hyper-util's connector names a resolver failure so, and nothing else.
        if err.to_string() == "dns error" {
            dns = true;
        }
        cur = next(err);
    }
    if let Some(t) = tls {
        return (tls_cause(&t), false);
    }
    if e.is_timeout() {
        let (connect, read) = timeouts;
        return match stage {
            Stage::Connect => (
                format!("no connection within {} (connect timeout)", secs(connect)),
                true,
            ),
            _ => (format!("no data for {} (read timeout)", secs(read)), true),
        };
    }
    let inner = innermost(e);
    if dns {
        return (format!("cannot resolve the host name: {inner}"), false);
    }
    let phrase = match io_kind {
        Some(ErrorKind::ConnectionRefused) => "connection refused",
        Some(ErrorKind::ConnectionReset) => "connection reset by the server",
        Some(ErrorKind::ConnectionAborted) => "connection aborted",
        Some(ErrorKind::BrokenPipe) => "the server closed the connection",
        Some(ErrorKind::UnexpectedEof) => "the server closed the connection early",
        Some(ErrorKind::NetworkUnreachable) => "network unreachable",
        Some(ErrorKind::HostUnreachable) => "host unreachable",
        Some(ErrorKind::TimedOut) => "timed out",
        _ => return (inner, true),
    };
    (phrase.to_owned(), true)
}

fn tls_cause(t: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let hint = match t {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "; the server's certificate is not signed by a CA this machine trusts (for a \
             mirror with a private CA, pass that CA's certificate)"
        }
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            "; the server's certificate is not valid for this host name"
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "; the server's certificate has expired (or this machine's clock is wrong)"
        }
        _ => "",
    };
    format!("TLS handshake failed: {t}{hint}")
}

/// The innermost message of an error chain: the specific one (`Connection refused`), not the
/// wrappers' (`error sending request`).
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut last = e;
    while let Some(n) = next(last) {
        last = n;
    }
    last.to_string()
}

/// The next error of a chain. An `io::Error` that wraps an error (tokio-rustls wraps
/// `rustls::Error`, hyper-util wraps that again) reports the wrapped one's *source* as its
/// own, skipping the wrapped error itself: step into it instead.
fn next<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        return Some(inner);
    }
    e.source()
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

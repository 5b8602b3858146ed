//! A minimal HTTPS GET with a client certificate, for the apiserver's `/livez` and `/readyz`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;

fn pem_certs(p: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = std::fs::read(p).map_err(|source| Error::Io {
        path: p.to_owned(),
        source,
    })?;
    rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| Error::Io {
            path: p.to_owned(),
            source,
        })
}

fn pem_key(p: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = std::fs::read(p).map_err(|source| Error::Io {
        path: p.to_owned(),
        source,
    })?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|source| Error::Io {
            path: p.to_owned(),
            source,
        })?
        .ok_or_else(|| Error::Spec(format!("{}: no private key", p.display())))
}

/// `GET https://<addr><path>` verifying the server against `ca` for `server_name`, with a
/// client certificate. Returns the status code and body.
pub(crate) async fn get(
    addr: SocketAddr,
    server_name: &str,
    path: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<(u16, String), Error> {
    crate::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(ca)? {
        roots
            .add(c)
            .map_err(|e| Error::Spec(format!("{}: {e}", ca.display())))?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(pem_certs(cert)?, pem_key(key)?)
        .map_err(|e| Error::Spec(format!("{}: {e}", cert.display())))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| Error::Spec(format!("{server_name}: {e}")))?;
    let io_err = |e: std::io::Error| Error::Http(format!("https://{addr}{path}: {e}"));
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(io_err)?;
        let mut tls = connector.connect(name, tcp).await.map_err(io_err)?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(io_err)?;
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| Error::Http(format!("https://{addr}{path}: timed out")))?
}

//! One value for whichever backend a spec names: `Box<dyn Platform>`, built here because this
//! is the one crate that knows every backend (each behind its feature).

use std::path::{Path, PathBuf};

use frankenetes_compute::Platform;
use frankenetes_spec::{BackendSpec, ClusterSpec};

/// What the platforms need besides the spec.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlatformOptions {
    /// Local: where the Kubernetes binaries are (else PATH, then the fetch cache).
    pub bin_dir: Option<PathBuf>,
    /// AWS: every service at this endpoint (an emulator such as moto); else the standard chain.
    pub aws_endpoint: Option<String>,
}

impl PlatformOptions {
    /// Local: look for the Kubernetes binaries in `dir` first.
    #[must_use]
    pub fn bin_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.bin_dir = dir;
        self
    }
}

/// Why no platform could be built for a spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The spec's backend is not compiled into this build.
    #[error(
        "spec.backend.{backend} is not in this build of frankenetes; build it with \
         `cargo install frankenetes --features {backend}` (or `cargo run -p frankenetes --features {backend}`)"
    )]
    NotBuiltIn {
        /// `aws`, `azure`.
        backend: &'static str,
    },
    /// The backend's own set-up failed (a credential, an endpoint).
    #[error("spec.backend.{backend}: {message}")]
    Setup {
        /// The backend.
        backend: &'static str,
        /// What failed.
        message: String,
    },
}

impl PlatformError {
    /// Whether the user must change what they gave (every case here: the spec or the build).
    pub fn is_bad_input(&self) -> bool {
        true
    }
}

/// The platform `spec.backend` names, its state kept under `dir` (the cluster directory).
pub async fn platform_for(
    spec: &ClusterSpec,
    dir: &Path,
    opts: &PlatformOptions,
) -> Result<Box<dyn Platform>, PlatformError> {
    match &spec.backend {
        BackendSpec::Local(_) => Ok(Box::new(
            frankenetes_bootstrap::LocalPlatform::new(dir).bin_dir(opts.bin_dir.clone()),
        )),
        #[cfg(feature = "azure")]
        BackendSpec::Azure(_) => {
            let setup = |e: &dyn std::fmt::Display| PlatformError::Setup {
                backend: "azure",
                message: e.to_string(),
            };
            let backend =
                frankenetes_cloud_azure::AciBackend::from_spec(spec).map_err(|e| setup(&e))?;
            Ok(Box::new(
                frankenetes_cloud_azure::AciPlatform::new(
                    spec,
                    backend,
                    frankenetes_cloud_azure::AciOptions::default(),
                )
                .map_err(|e| setup(&e))?,
            ))
        }
        #[cfg(feature = "aws")]
        BackendSpec::Aws(_) => {
            // The standard AWS chain; AWS_ENDPOINT_URL (or `aws_endpoint`) points it at an
            // emulator.
            let sdk =
                frankenetes_cloud_aws::load_sdk_config(spec, opts.aws_endpoint.as_deref()).await;
            Ok(Box::new(
                frankenetes_cloud_aws::AwsPlatform::new(&sdk, spec).map_err(|e| {
                    PlatformError::Setup {
                        backend: "aws",
                        message: e.to_string(),
                    }
                })?,
            ))
        }
        #[allow(unreachable_patterns)]
        other => Err(PlatformError::NotBuiltIn {
            backend: other.kind(),
        }),
    }
}

//! The crate's error type, and how AWS errors map onto [`BackendErrorKind`].

use std::fmt;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use frankenetes_compute::{BackendError, BackendErrorKind};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An AWS call failed. `code` is AWS's error code (`DependencyViolation`,
    /// `InvalidVpcID.NotFound`), when the service sent one.
    #[error("{op} {resource}: {}{message}", code_prefix(.code))]
    Api {
        /// The API call (`CreateVpc`).
        op: &'static str,
        /// The resource it was about (a name or an id).
        resource: String,
        /// AWS's error code.
        code: Option<String>,
        /// AWS's message, or the transport failure.
        message: String,
        /// How the sequencer should treat it.
        kind: BackendErrorKind,
    },
    /// The cluster spec cannot be provisioned as it is; `field` names the field to fix.
    #[error("{field}: {message}")]
    Spec {
        /// The field path (`spec.backend.aws.ami`).
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A machine's user data does not fit EC2's limit even compressed.
    #[error(
        "user data of {unit} is {raw} bytes ({encoded} bytes gzip-compressed and wrapped), over EC2's limit of {limit} bytes; \
         make the Ignition config smaller (fewer or smaller files)"
    )]
    UserDataTooLarge {
        /// The machine.
        unit: String,
        /// The payload's size.
        raw: usize,
        /// The size after compression and wrapping.
        encoded: usize,
        /// EC2's limit.
        limit: usize,
    },
    /// Something did not reach the state waited for in time.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
    },
    /// Something this backend does not do (a container group on EC2).
    #[error("{what}")]
    Unsupported {
        /// What was asked.
        what: String,
    },
    /// AWS answered without a field it always sends (an id of a created resource).
    #[error("{op} returned no {field}")]
    Missing {
        /// The API call.
        op: &'static str,
        /// The field.
        field: &'static str,
    },
}

fn code_prefix(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default()
}

impl Error {
    /// How a caller should treat the error (retry, treat as gone, stop).
    pub fn kind(&self) -> BackendErrorKind {
        match self {
            Error::Api { kind, .. } => *kind,
            Error::Timeout { .. } => BackendErrorKind::Transient,
            Error::Unsupported { .. } => BackendErrorKind::Unsupported,
            _ => BackendErrorKind::Other,
        }
    }

    /// Whether the input is at fault (the spec, the payloads, a name that does not exist in the
    /// region): the user must change something before a retry can help. A CLI exits 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Spec { .. } | Error::UserDataTooLarge { .. } | Error::Unsupported { .. }
        )
    }

    /// AWS's error code, if this is an API error that carried one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Whether the resource was not there.
    pub fn is_not_found(&self) -> bool {
        self.kind() == BackendErrorKind::NotFound
    }

    /// Whether retrying later may succeed: throttling, 5xx, transport failures, and the
    /// "still in use" answers teardown gets while AWS detaches things.
    pub(crate) fn is_retryable(&self) -> bool {
        if self.kind() == BackendErrorKind::Transient {
            return true;
        }
        matches!(
            self.code(),
            Some(
                "DependencyViolation"
                    | "ResourceInUse"
                    | "InvalidNetworkInterface.InUse"
                    | "InvalidIPAddress.InUse"
                    | "IncorrectState"
                    | "IncorrectInstanceState"
            )
        )
    }
}

impl From<Error> for BackendError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let retry =
            (kind == BackendErrorKind::Transient).then(|| std::time::Duration::from_secs(2));
        let mut b = BackendError::new(kind, e.to_string());
        b.retry_after = retry;
        b
    }
}

/// Classifies an AWS error code.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>) -> BackendErrorKind {
    match code {
        Some(c)
            if c.ends_with(".NotFound")
                || c.ends_with("NotFound")
                || c == "InvalidGroup.NotFound"
                || c == "InvalidAllocationID.NotFound" =>
        {
            BackendErrorKind::NotFound
        }
        Some(
            "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "ServiceUnavailable"
            | "Unavailable"
            | "InternalError"
            | "InternalFailure"
            | "InsufficientInstanceCapacity",
        ) => BackendErrorKind::Transient,
        Some(c)
            if c.ends_with("LimitExceeded")
                || c == "TooManyLoadBalancers"
                || c == "TooManyTargetGroups" =>
        {
            BackendErrorKind::QuotaExceeded
        }
        Some(c) if c.ends_with(".Duplicate") || c.starts_with("Duplicate") => {
            BackendErrorKind::AlreadyExists
        }
        _ if status.is_some_and(|s| s >= 500 || s == 429) => BackendErrorKind::Transient,
        _ => BackendErrorKind::Other,
    }
}

/// Converts an SDK error (of either service) into [`Error::Api`].
pub(crate) fn api<E>(
    op: &'static str,
    resource: impl fmt::Display,
    e: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let resource = resource.to_string();
    match &e {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let code = e.code().map(str::to_owned);
            let message = e
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| aws_sdk_ec2::error::DisplayErrorContext(&e).to_string());
            let kind = if matches!(e, SdkError::ResponseError(_)) {
                BackendErrorKind::Transient
            } else {
                classify(code.as_deref(), status)
            };
            Error::Api {
                op,
                resource,
                code,
                message,
                kind,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Error::Api {
            op,
            resource,
            code: None,
            message: aws_sdk_ec2::error::DisplayErrorContext(&e).to_string(),
            kind: BackendErrorKind::Transient,
        },
        _ => Error::Api {
            op,
            resource,
            code: None,
            message: aws_sdk_ec2::error::DisplayErrorContext(&e).to_string(),
            kind: BackendErrorKind::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            classify(Some("InvalidVpcID.NotFound"), Some(400)),
            BackendErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("LoadBalancerNotFound"), Some(400)),
            BackendErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("RequestLimitExceeded"), Some(503)),
            BackendErrorKind::Transient
        );
        assert_eq!(
            classify(Some("VcpuLimitExceeded"), Some(400)),
            BackendErrorKind::QuotaExceeded
        );
        assert_eq!(
            classify(Some("InvalidPermission.Duplicate"), Some(400)),
            BackendErrorKind::AlreadyExists
        );
        assert_eq!(classify(None, Some(502)), BackendErrorKind::Transient);
        assert_eq!(
            classify(Some("DependencyViolation"), Some(400)),
            BackendErrorKind::Other
        );
        let e = Error::Api {
            op: "DeleteVpc",
            resource: "vpc-1".into(),
            code: Some("DependencyViolation".into()),
            message: "has dependencies".into(),
            kind: BackendErrorKind::Other,
        };
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "DeleteVpc vpc-1: DependencyViolation: has dependencies"
        );
    }
}

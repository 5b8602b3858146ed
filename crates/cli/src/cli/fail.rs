//! How a command ends: an [`Outcome`] (0 ok, 1 problems found) or a [`CliError`] that knows
//! whether it is bad input (2) — decided by each library error's `is_bad_input`, not by a list
//! of types here — or an interrupt (130).

use std::fmt;

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the check or operation found a problem (and said which).
    Problems,
}

/// A failed command: its message chain, and its exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    error: anyhow::Error,
    code: u8,
}

impl CliError {
    /// Bad input (exit 2): the user must change an argument, the spec or a file.
    pub(crate) fn bad_input(msg: impl fmt::Display) -> Self {
        Self {
            error: anyhow::anyhow!("{msg}"),
            code: 2,
        }
    }

    /// A failure of the run, not of the input (exit 1).
    pub(crate) fn runtime(msg: impl fmt::Display) -> Self {
        Self {
            error: anyhow::anyhow!("{msg}"),
            code: 1,
        }
    }

    /// Interrupted by Ctrl-C (exit 130).
    pub(crate) fn interrupted(what: &str) -> Self {
        Self {
            error: anyhow::anyhow!("interrupted: {what}"),
            code: 130,
        }
    }

    /// The exit code.
    pub(crate) fn code(&self) -> u8 {
        self.code
    }

    /// Adds context in front of the message, keeping the exit code.
    pub(crate) fn context(self, ctx: impl fmt::Display + Send + Sync + 'static) -> Self {
        Self {
            error: self.error.context(ctx),
            code: self.code,
        }
    }

    /// The message and its causes, each once: a cause whose text the message already
    /// contains is not repeated.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if text.is_empty() || out.contains(&text) {
                continue;
            }
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        out
    }
}

/// An error a library says is (or is not) bad input.
pub(crate) trait Classify: std::error::Error + Send + Sync + 'static {
    fn is_bad_input(&self) -> bool;
}

macro_rules! classify {
    ($($t:ty => |$e:ident| $body:expr),* $(,)?) => {$(
        impl Classify for $t {
            fn is_bad_input(&self) -> bool {
                let $e = self;
                $body
            }
        }
    )*};
}

classify! {
    frankenetes::spec::Error => |_e| true,
    frankenetes::pki::Error => |e| e.is_bad_input(),
    frankenetes::manifests::Error => |e| e.is_bad_input(),
    frankenetes::netgw::Error => |e| e.is_bad_input(),
    frankenetes::bootstrap::Error => |e| e.is_bad_input(),
    frankenetes::bootstrap::dayone::Error => |e| matches!(e, frankenetes::bootstrap::dayone::Error::Invalid(_)),
    frankenetes::bootstrap::fetch::Error => |e| e.is_bad_input(),
    frankenetes::bootstrap::snapshots::SnapshotError => |e| e.is_bad_input(),
    frankenetes::PlatformError => |e| e.is_bad_input(),
    frankenetes::bundle::lock::LockError => |_e| false,
    frankenetes::bundle::Error => |e| matches!(e, frankenetes::bundle::Error::Invalid { .. }),
    frankenetes::compute::BackendError => |e| matches!(
        e.kind,
        frankenetes::compute::BackendErrorKind::Invalid | frankenetes::compute::BackendErrorKind::Unsupported
    ),
    std::io::Error => |_e| false,
}

impl<E: Classify> From<E> for CliError {
    fn from(e: E) -> Self {
        let code = if e.is_bad_input() { 2 } else { 1 };
        Self {
            error: anyhow::Error::new(e),
            code,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self { error, code: 1 }
    }
}

/// `.ctx(..)` on results of classified errors: context in front, exit code kept.
pub(crate) trait ResultExt<T> {
    fn ctx(self, ctx: impl fmt::Display + Send + Sync + 'static) -> Result<T, CliError>;
}

impl<T, E: Into<CliError>> ResultExt<T> for Result<T, E> {
    fn ctx(self, ctx: impl fmt::Display + Send + Sync + 'static) -> Result<T, CliError> {
        self.map_err(|e| e.into().context(ctx))
    }
}

/// What commands return.
pub(crate) type CmdResult = Result<Outcome, CliError>;

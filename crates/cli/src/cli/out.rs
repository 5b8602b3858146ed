//! Output: stdout lines that end the program quietly when the reader goes away
//! (`frankenetes plan | head`), and the `-o table|json|yaml` formats.

/// `println!` that ends the program quietly when stdout is closed.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `print!` with the same rule as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

pub(crate) use {out, outln};

/// How a command that reports prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document (stable field names).
    Json,
    /// The same as YAML.
    Yaml,
}

/// Prints `value` as JSON or YAML; `false` for [`Format::Table`] (the caller prints it).
pub(crate) fn structured<T: serde::Serialize>(
    format: Format,
    value: &T,
) -> Result<bool, super::fail::CliError> {
    match format {
        Format::Table => Ok(false),
        Format::Json => {
            let s = serde_json::to_string_pretty(value)
                .map_err(|e| anyhow::anyhow!("cannot write JSON: {e}"))?;
            outln!("{s}");
            Ok(true)
        }
        Format::Yaml => {
            let s = serde_norway::to_string(value)
                .map_err(|e| anyhow::anyhow!("cannot write YAML: {e}"))?;
            out!("{s}");
            Ok(true)
        }
    }
}

//! `frankenetes token`: bootstrap tokens on a running cluster, and the `kubeadm join` line.

use clap::Subcommand;
use frankenetes::bootstrap::dayone;
use frankenetes::spec::GoDuration;

use super::args::SpecArgs;
use super::fail::{CliError, CmdResult, Outcome};
use super::out::{Format, outln, structured};
use super::run::block_on;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCmd {
    /// Make a bootstrap token and print the `kubeadm join` line for a new worker, with
    /// `--discovery-token-ca-cert-hash sha256:...` (the CA's public key, pinned).
    Create {
        #[command(flatten)]
        spec: SpecArgs,
        /// How long the token is valid, e.g. 1h (0s: never expires; avoid it).
        #[arg(long, default_value = "24h", value_name = "DURATION")]
        ttl: GoDuration,
    },
    /// List the bootstrap tokens (ids, expiry, usages; never the secrets).
    List {
        #[command(flatten)]
        spec: SpecArgs,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t)]
        output: Format,
    },
    /// Delete a bootstrap token, by id or by the whole token. Exit 1 if there is none.
    Delete {
        #[command(flatten)]
        spec: SpecArgs,
        /// The token id (`abcdef`) or the token (`abcdef.0123456789abcdef`).
        token: String,
    },
}

/// The `server:` of a kubeconfig, for messages.
fn server_of(kubeconfig: &std::path::Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "the apiserver".into())
}

/// A day-one error as a person needs it: where it tried, why, what to do.
fn explain(e: dayone::Error, server: &str) -> CliError {
    match e {
        dayone::Error::Unreachable { message, .. } => CliError::from(anyhow::anyhow!(
            "cannot reach the apiserver at {server}: {message}; is the cluster up with its \
             apiserver tier? (`frankenetes status`)"
        )),
        other => other.into(),
    }
}

#[derive(serde::Serialize)]
struct TokenRow {
    id: String,
    expiration: Option<String>,
    usages: Vec<String>,
    groups: Vec<String>,
    description: String,
}

/// `frankenetes token …`.
pub(crate) fn run(cmd: TokenCmd) -> CmdResult {
    let a = match &cmd {
        TokenCmd::Create { spec, .. }
        | TokenCmd::List { spec, .. }
        | TokenCmd::Delete { spec, .. } => spec.clone(),
    };
    let l = a.load()?;
    let bundle = l.bundle();
    let admin_conf = bundle.join("cluster/admin.conf");
    if !admin_conf.is_file() {
        return Err(CliError::bad_input(format!(
            "{} does not exist: run `frankenetes up -f {}` first (or pass --dir)",
            admin_conf.display(),
            a.file.display()
        )));
    }
    let server = server_of(&admin_conf);
    block_on("nothing was changed", async {
        let admin = dayone::client(&admin_conf, None)
            .await
            .map_err(|e| explain(e, &server))?;
        match cmd {
            TokenCmd::Create { ttl, .. } => {
                let ttl = (!ttl.get().is_zero()).then(|| ttl.get());
                let t = dayone::create_token(&admin, ttl, "made by frankenetes token create")
                    .await
                    .map_err(|e| explain(e, &server))?;
                let ca = bundle.join("cluster/pki/ca.crt");
                let ca_pem = std::fs::read_to_string(&ca)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
                let join = dayone::join_command(&l.spec, &ca_pem, &t)?;
                outln!("{}", join.as_str());
                Ok(Outcome::Ok)
            }
            TokenCmd::List { output, .. } => {
                let tokens = dayone::list_tokens(&admin)
                    .await
                    .map_err(|e| explain(e, &server))?;
                let rows: Vec<TokenRow> = tokens
                    .into_iter()
                    .map(|t| TokenRow {
                        id: t.id,
                        expiration: t.expiration,
                        usages: t.usages,
                        groups: t.groups,
                        description: t.description,
                    })
                    .collect();
                if !structured(output, &rows)? {
                    outln!("{:<8} {:<22} {:<28} DESCRIPTION", "ID", "EXPIRES", "USAGES");
                    for r in &rows {
                        outln!(
                            "{:<8} {:<22} {:<28} {}",
                            r.id,
                            r.expiration.as_deref().unwrap_or("never"),
                            r.usages.join(","),
                            r.description
                        );
                    }
                }
                Ok(Outcome::Ok)
            }
            TokenCmd::Delete { token, .. } => {
                if dayone::delete_token(&admin, &token)
                    .await
                    .map_err(|e| explain(e, &server))?
                {
                    outln!("deleted");
                    Ok(Outcome::Ok)
                } else {
                    eprintln!("no such bootstrap token");
                    Ok(Outcome::Problems)
                }
            }
        }
    })
}

//! `frankenetes kubeconfig`: the admin kubeconfig with names unique to the cluster
//! (`frankenetes-<cluster>` for its cluster and context, `frankenetes-<cluster>-admin` for its
//! user — a kubeadm `admin.conf` calls them all `kubernetes-admin`…), printed or merged into
//! the user's kubeconfig, as kind and k0s do.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_norway::{Mapping, Value};

use super::args::SpecArgs;
use super::fail::{CliError, CmdResult, Outcome};
use super::out::{out, outln};

/// Arguments of `kubeconfig`.
#[derive(Debug, Args)]
pub(crate) struct KubeconfigArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Merge it into the kubeconfig (--kubeconfig, else the first file of $KUBECONFIG, else
    /// ~/.kube/config) and make its context the current one, instead of printing it.
    #[arg(long)]
    merge: bool,
    /// The kubeconfig to merge into.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

fn named(list: &Value, name: &str) -> bool {
    list.get("name").and_then(Value::as_str) == Some(name)
}

/// The cluster's admin kubeconfig, renamed.
fn renamed(admin: &Path, cluster: &str) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(admin).map_err(|e| {
        CliError::bad_input(format!(
            "{}: {e}; run `frankenetes up` (or `frankenetes render`) first",
            admin.display()
        ))
    })?;
    let mut v: Value = serde_norway::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a kubeconfig: {e}", admin.display()))?;
    let c = format!("frankenetes-{cluster}");
    let u = format!("frankenetes-{cluster}-admin");
    let first = |v: &mut Value, key: &str| -> Result<Mapping, CliError> {
        v.get_mut(key)
            .and_then(Value::as_sequence_mut)
            .and_then(|s| s.first_mut())
            .and_then(Value::as_mapping_mut)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{}: no {key}", admin.display()).into())
    };
    let mut cl = first(&mut v, "clusters")?;
    cl.insert("name".into(), Value::from(c.clone()));
    let mut us = first(&mut v, "users")?;
    us.insert("name".into(), Value::from(u.clone()));
    let mut ctx = Mapping::new();
    ctx.insert("name".into(), Value::from(c.clone()));
    let mut inner = Mapping::new();
    inner.insert("cluster".into(), Value::from(c.clone()));
    inner.insert("user".into(), Value::from(u));
    ctx.insert("context".into(), Value::Mapping(inner));
    let mut out = Mapping::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), "Config".into());
    out.insert("clusters".into(), Value::Sequence(vec![Value::Mapping(cl)]));
    out.insert("users".into(), Value::Sequence(vec![Value::Mapping(us)]));
    out.insert(
        "contexts".into(),
        Value::Sequence(vec![Value::Mapping(ctx)]),
    );
    out.insert("current-context".into(), Value::from(c));
    Ok(Value::Mapping(out))
}

/// Where `--merge` writes.
fn target(a: &KubeconfigArgs) -> Result<PathBuf, CliError> {
    if let Some(p) = &a.kubeconfig {
        return Ok(p.clone());
    }
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|k| std::env::split_paths(&k).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".kube/config"))
        .ok_or_else(|| CliError::bad_input("no HOME: pass --kubeconfig FILE"))
}

/// `ours` merged into `existing`: entries of the same names replaced, the rest kept.
fn merge(existing: Option<Value>, ours: &Value) -> Value {
    let mut base = match existing {
        Some(Value::Mapping(m)) => m,
        _ => {
            let mut m = Mapping::new();
            m.insert("apiVersion".into(), "v1".into());
            m.insert("kind".into(), "Config".into());
            m
        }
    };
    for key in ["clusters", "users", "contexts"] {
        let add = ours
            .get(key)
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        let mut list = base
            .get(key)
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for entry in add {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            list.retain(|e| !named(e, &name));
            list.push(entry);
        }
        base.insert(key.into(), Value::Sequence(list));
    }
    if let Some(cur) = ours.get("current-context") {
        base.insert("current-context".into(), cur.clone());
    }
    Value::Mapping(base)
}

/// `frankenetes kubeconfig`.
pub(crate) fn run(a: &KubeconfigArgs) -> CmdResult {
    let l = a.spec.load()?;
    let ours = renamed(&l.bundle().join("cluster/admin.conf"), l.spec.name.as_str())?;
    let yaml = |v: &Value| {
        serde_norway::to_string(v).map_err(|e| CliError::from(anyhow::anyhow!("YAML: {e}")))
    };
    if !a.merge {
        out!("{}", yaml(&ours)?);
        return Ok(Outcome::Ok);
    }
    let path = target(a)?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) => Some(serde_norway::from_str::<Value>(&t).map_err(|e| {
            CliError::bad_input(format!(
                "{}: not a kubeconfig ({e}); fix it or pass --kubeconfig FILE",
                path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display()).into()),
    };
    let merged = merge(existing, &ours);
    frankenetes::bundle::fs::write_atomic(&path, yaml(&merged)?.as_bytes(), 0o600)?;
    outln!(
        "{}: context frankenetes-{} added and made current (`kubectl get nodes` uses it)",
        path.display(),
        l.spec.name
    );
    Ok(Outcome::Ok)
}

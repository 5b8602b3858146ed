//! `plan` (what would be made and created, offline) and `render` (the node bundles, written).

use std::path::PathBuf;

use clap::Args;
use frankenetes::bootstrap::{Cluster, Options};
use frankenetes::pki::{PkiPlan, SyncOptions};
use frankenetes::spec;
use serde::Serialize;

use super::args::SpecArgs;
use super::fail::{CmdResult, Outcome, ResultExt as _};
use super::out::{Format, outln, structured};

/// Arguments of `render`.
#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Output directory. Default: the cluster directory's bundle/ (where `up` finds it).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace leaf certificates that no longer match the spec (CAs are never replaced).
    #[arg(long)]
    renew: bool,
    /// The nodes' CPU architecture: each `nodes/<name>.ign` downloads the official kubelet
    /// (kubeadm on workers, kubectl on the first control plane) for it, pinned by SHA-256:
    /// amd64 or arm64.
    #[arg(long, value_name = "ARCH", default_value = "amd64")]
    arch: frankenetes::spec::Arch,
    /// The machines have the Kubernetes binaries in /usr/local/bin already: the Ignition
    /// configs download nothing (and any version renders, known hashes or not).
    #[arg(long)]
    preinstalled_binaries: bool,
}

/// What `plan -o json|yaml` prints.
#[derive(Serialize)]
struct PlanDoc {
    cluster: String,
    kubernetes_version: String,
    endpoint: String,
    backend: String,
    etcd_version: String,
    cas: Vec<String>,
    certificates: Vec<PlanCert>,
    nodes: Vec<PlanNode>,
    resources: Vec<PlanResource>,
    usd_per_hour: f64,
    price_source: Option<String>,
    /// Running units `up` would restart, one at a time behind their gates, and why.
    restarts: Vec<frankenetes::bootstrap::Restart>,
    warnings: Vec<String>,
    security: Vec<String>,
}

#[derive(Serialize)]
struct PlanCert {
    name: String,
    common_name: String,
    organizations: Vec<String>,
    sans: Vec<String>,
}

#[derive(Serialize)]
struct PlanNode {
    name: String,
    ip: String,
    role: String,
    files: Vec<String>,
}

#[derive(Serialize)]
struct PlanResource {
    kind: String,
    name: String,
    detail: String,
    usd_per_hour: Option<f64>,
}

/// `frankenetes plan`: the PKI, every node's files, and what the backend would create, with
/// its cost. Nothing is written, no call is made.
pub(crate) fn plan(a: &SpecArgs, format: Format) -> CmdResult {
    let l = a.load()?;
    let file = a.file.display().to_string();
    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let platform = rt.block_on(frankenetes::platform_for(
        &l.spec,
        &l.dir,
        &frankenetes::PlatformOptions::default(),
    ))?;
    let mut opts = Options::new(&l.dir);
    if l.spec.etcd.backup.is_some() {
        opts = opts.backup_command(Some(super::cluster::backup_command(a)?));
    }
    let cluster = Cluster::new(l.spec.clone(), platform, opts);
    cluster.validate().ctx(file.clone())?;
    let (prepared, pplan) = cluster.plan().ctx(file.clone())?;
    let restarts = rt
        .block_on(cluster.restarts(&prepared.workload))
        .ctx(file.clone())?;
    let spec = &l.spec;
    let pki_plan = PkiPlan::from(spec);
    let mut security = Vec::new();
    let mut warnings = pplan.warnings.clone();
    for note in frankenetes::manifests::security::plan_notes(spec) {
        match note.strip_prefix("relaxed: ") {
            Some(r) => warnings.push(format!("{file}: relaxed: {r}")),
            None => security.push(note),
        }
    }
    let doc = PlanDoc {
        cluster: spec.name.as_str().to_owned(),
        kubernetes_version: spec.kubernetes_version.to_string(),
        endpoint: spec.control_plane_url(),
        backend: spec.backend.kind().to_owned(),
        etcd_version: prepared.etcd_version.to_string(),
        cas: pki_plan
            .cas()
            .iter()
            .map(|ca| {
                let parent = ca.parent.map_or("self-signed".to_owned(), |p| {
                    format!("signed by {}", p.name())
                });
                format!("{} CN={} ({parent})", ca.id.name(), ca.common_name)
            })
            .collect(),
        certificates: pki_plan
            .leaves
            .iter()
            .map(|leaf| PlanCert {
                name: leaf.name(),
                common_name: leaf.common_name.clone(),
                organizations: leaf.organizations.clone(),
                sans: leaf.sans.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        nodes: spec
            .nodes()
            .map(|(n, role)| PlanNode {
                name: n.name.as_str().to_owned(),
                ip: n.ip.to_string(),
                role: match role {
                    spec::Role::ControlPlane => "control plane".into(),
                    _ => "worker".into(),
                },
                files: prepared
                    .rendered
                    .node(n.name.as_str())
                    .map(|b| b.paths())
                    .unwrap_or_default(),
            })
            .collect(),
        resources: pplan
            .resources
            .iter()
            .map(|r| PlanResource {
                kind: r.kind.clone(),
                name: r.name.clone(),
                detail: r.detail.clone(),
                usd_per_hour: r.usd_per_hour,
            })
            .collect(),
        usd_per_hour: pplan.usd_per_hour(),
        price_source: pplan.price_source.clone(),
        restarts,
        warnings,
        security,
    };
    for w in &doc.warnings {
        eprintln!("warning: {w}");
    }
    if structured(format, &doc)? {
        return Ok(Outcome::Ok);
    }
    print_plan(&doc, &pki_plan);
    Ok(Outcome::Ok)
}

/// `plan`'s text: the cluster, its PKI, each node's files, what the backend creates and costs.
fn print_plan(doc: &PlanDoc, pki_plan: &PkiPlan) {
    outln!(
        "cluster {} (Kubernetes {}), endpoint {}, backend {}",
        doc.cluster,
        doc.kubernetes_version,
        doc.endpoint,
        doc.backend
    );
    outln!(
        "PKI: {} CA mode, {} keys",
        match pki_plan.ca_mode {
            spec::CaMode::Intermediate => "intermediate",
            _ => "kubeadm",
        },
        pki_plan.key_algorithm.as_str()
    );
    for ca in &doc.cas {
        outln!("  CA {ca}");
    }
    for c in &doc.certificates {
        let org = if c.organizations.is_empty() {
            String::new()
        } else {
            format!(" O={}", c.organizations.join(","))
        };
        let sans = if c.sans.is_empty() {
            String::new()
        } else {
            format!(" SANs: {}", c.sans.join(","))
        };
        outln!("  {:<40} CN={}{org}{sans}", c.name, c.common_name);
    }
    outln!("etcd flags rendered for etcd {}", doc.etcd_version);
    for s in &doc.security {
        outln!("security: {s}");
    }
    outln!("operator: cluster/pki/, cluster/admin.conf, cluster/super-admin.conf");
    for n in &doc.nodes {
        outln!(
            "node {} ({}, {}): nodes/{}/ and nodes/{}.ign",
            n.name,
            n.ip,
            n.role,
            n.name,
            n.name
        );
        for p in &n.files {
            outln!("    {p}");
        }
    }
    outln!("{}: what `up` creates (no call is made now)", doc.backend);
    for r in &doc.resources {
        let price = r
            .usd_per_hour
            .map(|p| format!(" {p:.4} USD/h"))
            .unwrap_or_default();
        outln!("  {:<16} {:<36} {}{price}", r.kind, r.name, r.detail);
    }
    if doc.usd_per_hour > 0.0 {
        outln!(
            "total {:.4} USD/hour ({:.2} USD per 30 days) while running",
            doc.usd_per_hour,
            doc.usd_per_hour * 24.0 * 30.0
        );
    }
    if let Some(src) = &doc.price_source {
        outln!("prices: {src}");
    }
    if !doc.restarts.is_empty() {
        outln!("running units `up` restarts, one at a time, each behind its health gate:");
        for r in &doc.restarts {
            outln!("  {:<36} {}", r.unit, r.why);
        }
    }
}

/// `frankenetes render`: the PKI (made or completed), every node's bundle and the gateway's,
/// written under the cluster directory's bundle/ (or `-o DIR`), under its lock.
pub(crate) fn render(a: &RenderArgs) -> CmdResult {
    let l = a.spec.load()?;
    let file = a.spec.file.display().to_string();
    let out = a.out.clone().unwrap_or_else(|| l.bundle());
    // Everything that can be refused is refused before a key is made or a file written.
    let binaries = if a.preinstalled_binaries {
        frankenetes::manifests::Binaries::Preinstalled
    } else {
        frankenetes::manifests::Binaries::download(a.arch)
    };
    let opts = frankenetes::manifests::RenderOptions::default().binaries(binaries);
    frankenetes::manifests::check_opts(&l.spec, &opts).ctx(file.clone())?;
    let _lock = frankenetes::bundle::lock::DirLock::acquire(&out, "render", None)?;
    frankenetes::bundle::fs::remove_stale_temps(&out)?;
    let (pki, outcome) = super::pki::sync(&l.spec, &out, &SyncOptions::default().renew(a.renew))?;
    let rendered = frankenetes::manifests::render_opts(&l.spec, &pki, &opts).ctx(file.clone())?;
    let report = rendered
        .write(&out)
        .ctx(format!("cannot write the bundles in {}", out.display()))?;
    outln!(
        "{}: {} files written, {} unchanged",
        out.display(),
        report.written.len(),
        report.unchanged
    );
    for n in &rendered.nodes {
        outln!(
            "  nodes/{}/ ({} files, {} units), nodes/{}.ign",
            n.name,
            n.files.len(),
            n.units.len(),
            n.name
        );
    }
    outln!("  cluster/admin.conf, cluster/super-admin.conf");
    if let Some(gw) = &l.spec.gateway {
        let g = frankenetes::netgw::render(
            &out,
            gw,
            &frankenetes::netgw::GatewayOptions::for_cluster(&l.spec),
        )
        .ctx(format!("{file}: spec.gateway"))?;
        outln!(
            "  nodes/{}/ (NAT + WireGuard gateway: {} files), cluster/vpn/ ({} peer configs)",
            gw.name,
            g.bundle.files.len(),
            g.clients.len()
        );
    }
    Ok(outcome)
}

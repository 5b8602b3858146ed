//! `up`/`status`/`pause`/`resume`/`down` for the cloud backends (features `aws`, `azure`).

#[cfg(feature = "azure")]
pub(crate) mod azure {
    use std::path::Path;

    use anyhow::Context;
    use frankenetes::bootstrap::aci::{self, AciOptions, AciUnits, PauseMode};
    use frankenetes::compute::{ClusterTag, ComputeBackend};
    use frankenetes::pki::{self, PkiPlan, SyncOptions};
    use frankenetes::spec::ClusterSpec;
    use frankenetes_cloud_azure::{AciBackend, azure_section};

    use crate::{Op, Outcome};

    /// The groups to create, with the certificates: the PKI is made (or loaded: never
    /// replaced) under `bundle`. Only `up`, `pause` and `resume` need them.
    fn units(spec: &ClusterSpec, bundle: &Path, opts: &AciOptions) -> anyhow::Result<AciUnits> {
        let (pki, _) = pki::sync(&PkiPlan::from(spec), bundle, SyncOptions::default())
            .with_context(|| format!("PKI in {}", bundle.display()))?;
        let rendered = frankenetes_manifests::render(spec, &pki)?;
        Ok(aci::units(spec, &rendered, opts)?)
    }

    /// The cluster on Azure Container Instances.
    pub(crate) fn run(spec: ClusterSpec, dir: &Path, op: Op) -> anyhow::Result<Outcome> {
        let az = azure_section(&spec)?.clone();
        let bundle = dir.join("bundle");
        let opts = AciOptions::default();
        let tag = ClusterTag::new(spec.name.as_str());
        let backend = AciBackend::from_spec(&spec)?;
        let share = format!("{}/{}", az.storage_account, az.share_name);
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        rt.block_on(async {
            match op {
                Op::Up => {
                    let units = units(&spec, &bundle, &opts)?;
                    eprintln!("==> file share {share}");
                    backend
                        .create_file_share(&az.storage_account, &az.share_name)
                        .await?;
                    eprintln!("==> container groups (etcd, apiservers, controllers)");
                    aci::up(&backend, &units).await?;
                    print_status(&backend, &spec, &opts, &tag).await?;
                    outln!(
                        "admin kubeconfig: {}",
                        bundle.join("cluster/admin.conf").display()
                    );
                    Ok(Outcome::Ok)
                }
                Op::Status => print_status(&backend, &spec, &opts, &tag).await,
                Op::Pause => {
                    aci::pause(&backend, &units(&spec, &bundle, &opts)?, PauseMode::Stop).await?;
                    outln!(
                        "paused: a verified snapshot is on {share}; every group is stopped (compute billing stops)"
                    );
                    Ok(Outcome::Ok)
                }
                Op::Resume => {
                    aci::resume(&backend, &units(&spec, &bundle, &opts)?).await?;
                    print_status(&backend, &spec, &opts, &tag).await
                }
                Op::Down { purge } => {
                    // Everything carrying the tag, found by listing: no PKI or state needed.
                    aci::down(&backend, &tag).await?;
                    outln!("no container group of cluster {} is left", spec.name);
                    if purge {
                        backend
                            .delete_file_share(&az.storage_account, &az.share_name)
                            .await?;
                        outln!("deleted the share {share}");
                    } else {
                        outln!("kept the share {share} with the snapshots (`down --purge` deletes it)");
                    }
                    Ok(Outcome::Ok)
                }
                Op::Snapshot(_) | Op::Restore(_) => Err(crate::BadInput(
                    "on azure, snapshots are taken to the file share on a schedule and by `pause`; \
                     `resume` restores the newest"
                        .into(),
                )
                .into()),
            }
        })
    }

    /// Each planned group (names and FQDNs come from the spec alone) with its state.
    async fn print_status(
        backend: &AciBackend,
        spec: &ClusterSpec,
        opts: &AciOptions,
        tag: &ClusterTag,
    ) -> anyhow::Result<Outcome> {
        let found = backend.list(tag).await?;
        let plan = aci::plan(spec, opts)?;
        let mut all_running = true;
        outln!("{:<28} {:<9} FQDN", "GROUP", "STATE");
        for g in plan
            .groups
            .iter()
            .filter(|g| g.role != aci::AciRole::SnapshotJob)
        {
            let state = found
                .iter()
                .find(|u| u.name == g.name)
                .map_or("absent".to_owned(), |u| u.state.to_string());
            all_running &= state == "running";
            outln!(
                "{:<28} {:<9} {}",
                g.name,
                state,
                g.fqdn.as_deref().unwrap_or("-")
            );
        }
        Ok(if all_running {
            Outcome::Ok
        } else {
            Outcome::Problems
        })
    }
}

#[cfg(feature = "aws")]
pub(crate) mod aws {
    use std::collections::BTreeMap;
    use std::path::Path;

    use anyhow::Context;
    use frankenetes::cloud_aws::{self, Event, Lab, LabPayloads, Plan, load_sdk_config};
    use frankenetes::manifests::Rendered;
    use frankenetes::netgw::{self, GatewayBundle, GatewayOptions, VpnState};
    use frankenetes::pki::{self, PkiPlan, SyncOptions};
    use frankenetes::spec::{ClusterSpec, NodeName};

    use crate::{BadInput, Op, Outcome};

    /// Every node's Ignition config from `rendered`, by node name.
    fn node_payloads(rendered: &Rendered) -> anyhow::Result<BTreeMap<NodeName, Vec<u8>>> {
        rendered
            .nodes
            .iter()
            .map(|n| {
                let name = NodeName::try_from(n.name.as_str())
                    .map_err(|e| anyhow::anyhow!("node {}: {e}", n.name))?;
                let ign = frankenetes::manifests::ignition::to_ignition(n).into_bytes();
                Ok((name, ign))
            })
            .collect()
    }

    /// A lab error, as bad input (exit 2) when the user must change something.
    fn aws_err(e: cloud_aws::Error) -> anyhow::Error {
        if e.is_bad_input() {
            BadInput(e.to_string()).into()
        } else {
            e.into()
        }
    }

    /// The lab's plan (no AWS call), sized with payloads rendered in memory.
    pub(crate) fn plan(spec: &ClusterSpec, rendered: &Rendered) -> anyhow::Result<Plan> {
        let payloads = sample_payloads(spec, rendered)?;
        Lab::offline(spec)
            .and_then(|lab| lab.plan(&payloads))
            .map_err(aws_err)
    }

    /// The payloads `plan` sizes: rendered in memory with throwaway keys, nothing written.
    fn sample_payloads(spec: &ClusterSpec, rendered: &Rendered) -> anyhow::Result<LabPayloads> {
        let gateway = match &spec.gateway {
            Some(gw) => {
                let nowhere = std::env::temp_dir().join("frankenetes-plan-has-no-state");
                let state = VpnState::load_or_init(&nowhere, gw)?;
                GatewayBundle::render(gw, &state, &GatewayOptions::default())?
                    .to_ignition()
                    .into_bytes()
            }
            None => Vec::new(),
        };
        Ok(LabPayloads::new(gateway, node_payloads(rendered)?))
    }

    /// The PKI (made once, never replaced), the node bundles and the gateway's (its WireGuard
    /// keys and peer configs) written under `bundle`, and the Ignition configs `up` launches.
    fn payloads(spec: &ClusterSpec, bundle: &Path) -> anyhow::Result<LabPayloads> {
        let (pki, _) = pki::sync(&PkiPlan::from(spec), bundle, SyncOptions::default())
            .with_context(|| format!("PKI in {}", bundle.display()))?;
        let rendered = frankenetes::manifests::render(spec, &pki)?;
        rendered
            .write(bundle)
            .with_context(|| format!("cannot write the bundles in {}", bundle.display()))?;
        let gw = netgw::gateway_of(spec).map_err(|e| BadInput(e.to_string()))?;
        let g = netgw::render(bundle, gw, &GatewayOptions::default())
            .with_context(|| format!("gateway bundle in {}", bundle.display()))?;
        Ok(LabPayloads::new(
            g.bundle.to_ignition().into_bytes(),
            node_payloads(&rendered)?,
        ))
    }

    fn on_event(e: &Event) {
        eprintln!("    {e}");
    }

    /// The lab on AWS. Credentials and region come from the standard AWS chain (and
    /// `spec.backend.aws.region`); `AWS_ENDPOINT_URL` points it at an emulator.
    pub(crate) fn run(spec: ClusterSpec, dir: &Path, op: Op) -> anyhow::Result<Outcome> {
        let bundle = dir.join("bundle");
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        rt.block_on(async {
            let sdk = load_sdk_config(&spec, None).await;
            match op {
                Op::Up => {
                    // The spec is checked (aws section, gateway, sizes) before anything is written.
                    Lab::offline(&spec)
                        .and_then(|l| l.plan(&LabPayloads::default()))
                        .map_err(aws_err)?;
                    let lab = Lab::new(&sdk, &spec).map_err(aws_err)?;
                    let payloads = payloads(&spec, &bundle)?;
                    eprintln!("==> the lab of {} (VPC, gateway, nodes, NLB)", spec.name);
                    let mut interrupt = tokio::signal::unix::signal(
                        tokio::signal::unix::SignalKind::interrupt(),
                    )
                    .context("cannot catch SIGINT")?;
                    let report = tokio::select! {
                        r = lab.up(&payloads, &on_event) => r.map_err(aws_err)?,
                        _ = interrupt.recv() => {
                            eprintln!("interrupted: what was created is tagged; `frankenetes up` finishes it, `frankenetes down` removes it");
                            return Ok(Outcome::Problems);
                        }
                    };
                    outln!(
                        "{} resources created, {} found",
                        report.created.len(),
                        report.found.len()
                    );
                    outln!("gateway (WireGuard endpoint): {}", report.wireguard_endpoint);
                    if let Some(dns) = &report.load_balancer_dns {
                        outln!("API load balancer: {dns}");
                    }
                    for (unit, id) in &report.instances {
                        outln!("  {unit:<16} {id}");
                    }
                    outln!(
                        "VPN peer configs: {} (`wg-quick up <file>`)",
                        bundle.join("cluster/vpn").display()
                    );
                    outln!(
                        "admin kubeconfig: {} (through the tunnel)",
                        bundle.join("cluster/admin.conf").display()
                    );
                    Ok(Outcome::Ok)
                }
                Op::Status => {
                    // Read-only: what exists of the plan.
                    let status = Lab::new(&sdk, &spec).map_err(aws_err)?.status().await?;
                    out!("{status}");
                    Ok(if status.is_up() {
                        Outcome::Ok
                    } else {
                        Outcome::Problems
                    })
                }
                Op::Down { purge } => {
                    let lab = Lab::new(&sdk, &spec).map_err(aws_err)?;
                    eprintln!("==> deleting every resource tagged with cluster {}", spec.name);
                    let audit = lab.down(&on_event).await?;
                    out!("{audit}");
                    if purge {
                        eprintln!("--purge: nothing else is kept on AWS; the local bundle stays in {}", bundle.display());
                    }
                    Ok(if audit.is_clean() {
                        Outcome::Ok
                    } else {
                        Outcome::Problems
                    })
                }
                Op::Pause | Op::Resume | Op::Snapshot(_) | Op::Restore(_) => Err(BadInput(
                    "on aws, `up` and `down` are the commands: etcd's data lives on the nodes' \
                     disks; pause and snapshots are not supported by this backend yet"
                        .into(),
                )
                .into()),
            }
        })
    }
}

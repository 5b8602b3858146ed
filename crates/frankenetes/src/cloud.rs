//! `up`/`status`/`pause`/`resume`/`down` for the cloud backends (feature `azure`).

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

//! `up`/`status`/`pause`/`resume`/`down` for the cloud backends (features `aws`, `azure`).

#[cfg(feature = "azure")]
pub(crate) mod azure {
    use std::path::Path;

    use anyhow::Context;
    use frankenetes::bootstrap::aci::{self, AciOptions, PauseMode};
    use frankenetes::compute::ComputeBackend;
    use frankenetes::pki::{self, PkiPlan, SyncOptions};
    use frankenetes::spec::ClusterSpec;
    use frankenetes_cloud_azure::{AciBackend, azure_section};

    use crate::{Op, Outcome};

    /// The cluster on Azure Container Instances.
    pub(crate) fn run(
        spec: ClusterSpec,
        dir: &Path,
        op: Op,
        purge: bool,
    ) -> anyhow::Result<Outcome> {
        let az = azure_section(&spec)?.clone();
        let bundle = dir.join("bundle");
        // The PKI is made (or loaded: never replaced) on the operator's machine; certificates
        // travel to the groups as secret volumes.
        let (pki, _) = pki::sync(&PkiPlan::from(&spec), &bundle, SyncOptions::default())
            .with_context(|| format!("PKI in {}", bundle.display()))?;
        let rendered = frankenetes_manifests::render(&spec, &pki)?;
        let opts = AciOptions::default();
        let units = aci::units(&spec, &rendered, &opts)?;
        let backend = AciBackend::from_spec(&spec)?;
        let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        rt.block_on(async {
            match op {
                Op::Up => {
                    eprintln!("==> file share {}/{}", az.storage_account, az.share_name);
                    backend
                        .create_file_share(&az.storage_account, &az.share_name)
                        .await?;
                    eprintln!("==> container groups (etcd, apiservers, controllers)");
                    aci::up(&backend, &units).await?;
                    print_status(&backend, &units, &az.location).await?;
                    outln!("admin kubeconfig: {}", bundle.join("cluster/admin.conf").display());
                    Ok(Outcome::Ok)
                }
                Op::Status => {
                    print_status(&backend, &units, &az.location).await?;
                    Ok(Outcome::Ok)
                }
                Op::Pause => {
                    aci::pause(&backend, &units, PauseMode::Stop).await?;
                    outln!(
                        "paused: a verified snapshot is on {}/{}; every group is stopped (compute billing stops)",
                        az.storage_account, az.share_name
                    );
                    Ok(Outcome::Ok)
                }
                Op::Resume => {
                    aci::resume(&backend, &units).await?;
                    print_status(&backend, &units, &az.location).await?;
                    Ok(Outcome::Ok)
                }
                Op::Down { .. } => {
                    aci::down(&backend, &units).await?;
                    if purge {
                        backend
                            .delete_file_share(&az.storage_account, &az.share_name)
                            .await?;
                        outln!("deleted the share {}/{}", az.storage_account, az.share_name);
                    } else {
                        outln!(
                            "kept the share {}/{} with the snapshots (`down --purge` deletes it)",
                            az.storage_account, az.share_name
                        );
                    }
                    let left = backend.list(&units.tag).await?;
                    if left.is_empty() {
                        outln!("no container group of cluster {} is left", spec.name);
                        Ok(Outcome::Ok)
                    } else {
                        for u in &left {
                            eprintln!("still present: {} ({})", u.name, u.state);
                        }
                        Ok(Outcome::Problems)
                    }
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

    async fn print_status(
        backend: &AciBackend,
        units: &aci::AciUnits,
        location: &str,
    ) -> anyhow::Result<()> {
        let found = backend.list(&units.tag).await?;
        outln!("{:<28} {:<9} {}", "GROUP", "STATE", "FQDN");
        for g in &units.groups {
            let unit = found.iter().find(|u| u.name == g.spec.name);
            outln!(
                "{:<28} {:<9} {}",
                g.spec.name,
                unit.map_or("absent".to_owned(), |u| u.state.to_string()),
                match &g.spec.kind {
                    frankenetes::compute::UnitKind::ContainerGroup(c) =>
                        c.dns_label.as_ref().map_or("-".to_owned(), |l| format!(
                            "{l}.{location}.azurecontainer.io"
                        )),
                    _ => "-".to_owned(),
                }
            );
        }
        Ok(())
    }
}

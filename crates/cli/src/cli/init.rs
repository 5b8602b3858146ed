//! `frankenetes init`: a commented starter `cluster.yaml`.

use super::fail::{CliError, CmdResult, Outcome};
use super::out::out;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// Number of control-plane nodes (odd: 1, 3, 5, 7).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    nodes: u8,
    /// Number of worker nodes.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=50))]
    workers: u8,
    /// Where the cluster runs (aws and azure when built with those features).
    #[arg(long, default_value = "local", value_parser = backends())]
    backend: String,
    /// The cluster's name.
    #[arg(long, default_value = "kubelius")]
    name: String,
}

/// The backends this build can run.
fn backends() -> Vec<&'static str> {
    frankenetes::BACKENDS.to_vec()
}

/// `frankenetes init`.
pub(crate) fn run(a: &InitArgs) -> CmdResult {
    out!(
        "{}",
        starter(&a.name, a.nodes, a.workers, &a.backend).map_err(CliError::bad_input)?
    );
    Ok(Outcome::Ok)
}

/// The starter spec for `nodes` control-plane nodes and `workers` workers. Nodes of the local
/// backend get their own loopback addresses (127.0.0.11, …), so they can share one machine.
pub(crate) fn starter(name: &str, nodes: u8, workers: u8, backend: &str) -> Result<String, String> {
    frankenetes::spec::ClusterName::try_from(name).map_err(|e| format!("--name: {e}"))?;
    // Local nodes share this machine on their own loopback addresses; cloud nodes get
    // addresses in the lab's subnet.
    let (cp_base, wk_base) = match backend {
        "local" => ("127.0.0", (10u16, 100u16)),
        "aws" => ("10.10.16", (10, 100)),
        _ => ("10.0.0", (10, 100)),
    };
    let mut cp = String::new();
    for i in 1..=nodes {
        cp.push_str(&format!(
            "    - {{ name: control-{i:02}, ip: {cp_base}.{} }}\n",
            wk_base.0 + u16::from(i)
        ));
    }
    let mut wk = String::new();
    for i in 1..=workers {
        wk.push_str(&format!(
            "    - {{ name: worker-{i:02}, ip: {cp_base}.{} }}\n",
            wk_base.1 + u16::from(i)
        ));
    }
    let workers_block = if wk.is_empty() {
        "  workers: []\n".to_owned()
    } else {
        format!("  workers:\n{wk}")
    };
    let even = if nodes.is_multiple_of(2) {
        "  # NOTE: an even number of etcd members tolerates no more failures than one fewer.\n"
    } else {
        ""
    };
    let backend_block = match backend {
        "aws" => format!(
            r#"  # SSH for the `core` user of every node and the gateway (ssh -J core@<gateway> core@<node>).
  # ssh:
  #   authorizedKeys: ["ssh-ed25519 AAAA... you@laptop"]
  gateway:                          # the NAT instance with WireGuard in front of the private nodes
    ip: 10.10.31.5
    privateCIDR: 10.10.16.0/20
    tunnel: {{ cidr: 10.200.0.0/24 }}
    peers: [{{ name: laptop }}]
  backend:
    aws:
      region: eu-west-3
      instanceType: t3a.small       # control planes: 2 GiB is kubeadm's minimum (t3a.nano cannot hold etcd + apiserver)
      gatewayInstanceType: t3a.nano
      # keyName: {name}              # an EC2 key pair for SSH, if you have one
"#
        ),
        "azure" => format!(
            r#"  backend:
    azure:
      subscriptionId: 00000000-0000-0000-0000-000000000000   # yours: `az account show --query id`
      resourceGroup: {name}
      location: westeurope
      dnsLabelPrefix: {name}-0000   # unique in the region: {{prefix}}-etcd-0.westeurope.azurecontainer.io
      storageAccount: {name}0000    # holds the etcd snapshots' file share
      credential: {{ azureCli: {{}} }}
"#
        ),
        _ => "  backend:\n    local: {}\n".to_owned(),
    };
    Ok(format!(
        r#"# A frankenetes cluster. `frankenetes plan -f cluster.yaml` shows what it makes.
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata:
  name: {name}                  # names the kubeconfig cluster and tags cloud resources
spec:
  kubernetesVersion: v1.35.0
  # The address clients use: a load balancer's name or IP and port. Left out, it is the
  # first control-plane node's address on 6443.
  # controlPlaneEndpoint: api.{name}:6443
  network:
    serviceCIDR: 10.96.0.0/16       # Service IPs; the first is in the apiserver certificate
    podCIDR: 10.244.0.0/16          # pod IPs (optional)
    dnsDomain: cluster.local
  pki:
    caMode: kubeadm                 # kubeadm: three self-signed CAs | intermediate: one root signs them
    keyAlgorithm: ecdsa-p256        # ecdsa-p256 | ecdsa-p384 | rsa-2048 | rsa-3072 | rsa-4096
    caValidity: 87600h              # ten years
    certValidity: 8760h             # one year; a certificate never outlives its CA
{even}  controlPlane:                     # an odd number: etcd needs a majority
{cp}{workers_block}{backend_block}"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_starter_parses() {
        for backend in ["local", "aws", "azure"] {
            for (nodes, workers) in [(1, 0), (3, 2)] {
                let yaml = starter("kubelius", nodes, workers, backend).unwrap();
                let parsed = frankenetes::spec::ClusterSpec::from_yaml(&yaml);
                assert!(parsed.is_ok(), "{backend}: {:?}\n{yaml}", parsed.err());
            }
        }
    }
}

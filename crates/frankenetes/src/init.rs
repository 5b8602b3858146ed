//! `frankenetes init`: a commented starter `cluster.yaml`.

/// The starter spec for `nodes` control-plane nodes and `workers` workers. Nodes of the local
/// backend get their own loopback addresses (127.0.0.11, …), so they can share one machine.
pub(crate) fn starter(name: &str, nodes: u8, workers: u8, backend: &str) -> Result<String, String> {
    frankenetes::spec::ClusterName::try_from(name).map_err(|e| format!("--name: {e}"))?;
    let mut cp = String::new();
    for i in 1..=nodes {
        cp.push_str(&format!(
            "    - {{ name: control-{i:02}, ip: 127.0.0.{} }}\n",
            10 + u16::from(i)
        ));
    }
    let mut wk = String::new();
    for i in 1..=workers {
        wk.push_str(&format!(
            "    - {{ name: worker-{i:02}, ip: 127.0.0.{} }}\n",
            100 + u16::from(i)
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
{cp}{workers_block}  backend:
    {backend}: {{}}
"#
    ))
}

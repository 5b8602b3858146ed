//! The cluster the ACI tests deploy: three control planes and the virtual kubelet on ACI.

/// The spec, `virtual_kubelet` the value of `spec.backend.azure.virtualKubelet` (a flow
/// mapping, or a block mapping indented by eight spaces).
pub(crate) fn spec_yaml(virtual_kubelet: &str) -> String {
    format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: kubelius }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane:
    - {{ name: control-01, ip: 10.0.0.11 }}
    - {{ name: control-02, ip: 10.0.0.12 }}
    - {{ name: control-03, ip: 10.0.0.13 }}
  workers:
    - {{ name: virtual-kubelet, ip: 10.0.0.21 }}
  backend:
    azure:
      subscriptionId: 00000000-0000-0000-0000-000000000000
      resourceGroup: demo
      location: westeurope
      dnsLabelPrefix: kubelius-3f9a
      credential: {{ azureCli: {{}} }}
      storageAccount: kubelius3f9a
      virtualKubelet: {virtual_kubelet}
"#
    )
}

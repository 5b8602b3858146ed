//! The AWS backend of frankenetes: EC2 machines ([`Ec2Backend`], a
//! [`ComputeBackend`](frankenetes_compute::ComputeBackend)) and the cheap lab ([`Lab`]): a VPC,
//! a NAT/WireGuard gateway instance, the cluster's nodes on fixed private IPs and an internal
//! network load balancer in front of the control planes — `plan` (offline), `up`, `status`,
//! `inventory`, `down`, `audit`.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use frankenetes_cloud_aws::{Lab, LabPayloads};
//! use frankenetes_spec::ClusterSpec;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = ClusterSpec::load("cluster.yaml")?.spec;          // backend: aws, with a gateway
//! let sdk = frankenetes_cloud_aws::load_sdk_config(&spec, None).await; // the standard AWS chain
//! let gateway = std::fs::read("out/nodes/gateway.ign")?;
//! let mut nodes = BTreeMap::new();
//! for n in &spec.control_plane {
//!     nodes.insert(n.name.clone(), std::fs::read(format!("out/nodes/{}.ign", n.name.as_str()))?);
//! }
//! let payloads = LabPayloads::new(gateway, nodes);
//! let lab = Lab::new(&sdk, &spec)?;
//! println!("{}", lab.plan(&payloads)?);                         // resources and $/hour, no call
//! let report = lab.up(&payloads, &|e| println!("{e}")).await?;  // checks first; idempotent
//! println!("WireGuard endpoint: {}", report.wireguard_endpoint);
//! println!("{}", lab.status().await?);                          // what exists, read-only
//! println!("{}", lab.inventory().await?);                       // what `down` deletes
//! let audit = lab.down(&|e| println!("{e}")).await?;            // leak-free
//! assert!(audit.is_clean(), "{audit}");
//! # Ok(()) }
//! ```
//!
//! # The lab
//!
//! From `spec.backend.aws` and `spec.gateway` (defaults are the cheap-lab write-up's):
//! a VPC (`vpcCIDR`, 10.10.16.0/20); a node subnet (`subnetCIDR`, 10.10.16.0/24) and a gateway
//! subnet (`gatewaySubnetCIDR`, 10.10.31.0/24); an internet gateway; a route table for the
//! gateway subnet (default route to the internet gateway) and one for the node subnet (default
//! route and the WireGuard tunnel's block to the gateway's network interface); two security
//! groups — the gateway's (WireGuard UDP from anywhere, everything from the VPC, which it
//! NATs) and the nodes' (6443 from the VPC and the tunnel, 2379–2380 and 10250 between nodes,
//! SSH only from the tunnel); a network interface per machine with the spec's fixed IP (the
//! gateway's with source/dest check off); an Elastic IP on the gateway; the gateway instance
//! with its Ignition config; one instance per node with its node bundle (Fedora CoreOS AMI looked
//! up by owner 125523088429 and name `fedora-coreos-*`, or `spec.backend.aws.ami`); an internal
//! NLB at `loadBalancerIP` (default the subnet's tenth address) with a TCP 6443 listener and an
//! IP target group of the control planes.
//!
//! `spec.backend.aws.keyName`, when set, names an existing EC2 key pair that every instance
//! gets (Fedora CoreOS gives its key to the `core` user:
//! `ssh -J core@<gateway IP> core@<node IP>`).
//!
//! Every resource is tagged `frankenetes.dev/cluster=<name>` (and `frankenetes.dev/role`,
//! `Name`) in its create call (`TagSpecifications`; `Tags` on ELBv2), so no crash can leave an
//! untagged resource.
//!
//! ## One inventory
//!
//! The lab is built around a typed table ([`Kind`]): every kind of resource with what it
//! depends on ([`Kind::depends_on`]), how it is found by the cluster's tag
//! ([`Kind::describe_call`]) and deleted ([`Kind::delete_call`]); and every [`Role`] a
//! resource plays, with what it needs. [`Lab::plan`] lists the roles with their cost;
//! [`Lab::up`] makes each role as soon as what it needs exists (so independent resources are
//! made concurrently), finding it by its tags first and creating only what is missing (a
//! converged lab makes no write call), the machines through [`Ec2Backend`]; [`Lab::status`]
//! says which roles exist and which machines run; [`Lab::inventory`] lists what carries the tag
//! in the order [`Lab::down`] deletes it, derived from the dependencies
//! ([`Kind::delete_waves`]: listeners, instances, Elastic IPs and route tables first; the VPC
//! last); `down` needs no state file, retries `DependencyViolation`, "in use" and throttling
//! with backoff, waits for instances and load balancers to go, and ends with [`Lab::audit`].
//!
//! ## Checks before the first write
//!
//! `up` writes nothing until everything that can fail offline or read-only has passed: a
//! payload for every machine; the control planes' instance type (offline from
//! [`catalog::INSTANCE_TYPES`], then from `DescribeInstanceTypes`) against
//! [`catalog::CONTROL_PLANE`] (kubeadm's 1,700 MiB and 2 vCPUs: refused, naming the smallest
//! type that fits and its cost; the gateway is not checked: NAT and WireGuard fit in a
//! `t3a.nano`); both instance types offered in the zone (`DescribeInstanceTypeOfferings`);
//! the key pair (`DescribeKeyPairs`); the AMI (`DescribeImages`: the newest Fedora CoreOS for
//! each architecture, or `ami:` checked against the machines' architecture when AWS lists it;
//! one it does not list is a warning, see below). Each refusal is an [`Error::Spec`] naming the
//! field and what to do. [`Lab::plan`] applies the sizing rule too.
//!
//! # User data over 16 KiB
//!
//! EC2 takes at most 16 KiB of user data; a control-plane node's Ignition config (its
//! certificates, keys, kubeconfigs and manifests) is about 85 KB, 28 KB compressed. Two steps:
//! - [`userdata`]: a config over the limit first becomes a stub that replaces itself with the
//!   gzip-compressed original carried inline (`ignition.config.replace` with `compression:
//!   gzip`, Ignition spec ≥ 3.1.0). Ignition's AWS provider does not gunzip raw user data
//!   (coreos/ignition#398 and #1100 were closed unmerged), so plain gzip would not boot. Workers
//!   and the gateway fit this way.
//! - A config that does not fit even so is uploaded to the cluster's private payload bucket
//!   (S3, `frankenetes-<cluster>-<hash>`, public access blocked, tagged) and the instance gets
//!   a stub that fetches it through a presigned HTTPS URL (valid 24 h) and checks its SHA-512.
//!   No instance role is needed. The bucket's name is derived from the account, region and
//!   cluster, so `down` and the audit find it without state; `plan` lists it when it is needed.
//!
//! # Cost
//!
//! [`Lab::plan`] prices the lab from [`plan::PRICES`] (its source and date are printed with
//! it). The write-up's lab put its control planes on `t3a.nano` (about $0.046 an hour in all):
//! 512 MiB cannot hold etcd and kube-apiserver, so `plan` refuses it; on `t3a.small` control
//! planes (2 GiB) and a `t3a.nano` gateway it comes to about $0.089 an hour.
//!
//! # Tested against moto, and where moto differs from AWS
//!
//! The tests run `moto_server` (5.2) on 127.0.0.1. What moto does differently, and how this
//! crate copes (observed with moto 5.2.1/5.2.5):
//! - Instances are `running` on the first describe and `terminated` right after
//!   TerminateInstances; waits are exercised only for their exit path.
//! - Deleting a subnet, a security group or an ENI that is still in use, a VPC with an
//!   attached internet gateway, or releasing an associated Elastic IP succeeds in moto and fails
//!   on AWS (`DependencyViolation`, `InvalidIPAddress.InUse`). `down` uses the AWS-correct order
//!   anyway (disassociate before release, detach before delete) and retries those codes.
//! - A fixed private IP outside its subnet, or used twice, is accepted by moto;
//!   `frankenetes-spec` validates the address plan instead.
//! - No size limit on user data: the 16 KiB limit is enforced here.
//! - The NLB creates no network interfaces (AWS makes one per subnet, which hold the subnet for
//!   minutes after the NLB is deleted: `down` waits for the NLB and retries the subnet), its ARN
//!   says `app/` instead of `net/`, and a second CreateLoadBalancer with the same name creates a
//!   second NLB (AWS returns the first): `up` looks load balancers, target groups and listeners
//!   up before creating them.
//! - Every IP target is `healthy` at once, whether anything listens or not.
//! - The instance's own `SourceDestCheck` stays `true` when its ENI's is off; the ENI is what
//!   counts (and what the tests check).
//! - Elastic IPs report the tag resource type `vpc-elastic-ip`; the audit lists them with
//!   DescribeAddresses by tag, not through the tagging API.
//! - There is no Fedora CoreOS AMI: `testing::Moto::start_with_images` (feature `testing`)
//!   lists fake ones (`MOTO_AMIS_PATH`). Stock moto lists none of the AMI ids tests give as
//!   `ami:` and launches them anyway, which is why a given AMI that `DescribeImages` does not
//!   list is only a warning here (on AWS, `RunInstances` then refuses it, after the network
//!   exists; `down` removes that).
//! - `DescribeInstanceTypes` and `DescribeInstanceTypeOfferings` answer from moto's bundled
//!   tables (the same memory and vCPUs as AWS).
//!
//! # Credentials and endpoints
//!
//! [`load_sdk_config`] uses the standard chain (environment, profile, SSO, IMDS) and the
//! region from `spec.backend.aws.region` (else the chain's); an endpoint override points every
//! client at an emulator. [`static_sdk_config`] builds a hermetic config (tests, moto).

#![deny(missing_docs)]

pub mod catalog;
mod ec2;
mod error;
mod lab;
pub mod plan;
mod platform;
mod store;
mod tags;
#[cfg(feature = "testing")]
pub mod testing;
pub mod userdata;

pub use ec2::{Ec2Backend, MachineDefaults, MachineOptions, Timing};
pub use error::Error;
pub use lab::{
    API_PORT, Audit, Event, FEDORA_COREOS_OWNER, Inventory, Kind, Lab, LabPayloads, Machine,
    OnEvent, Resource, ResourceState, ResourceStatus, Role, Status, Tier, UpReport,
};
pub use plan::{Plan, PlanItem, PriceTable};
pub use platform::AwsPlatform;
pub use tags::{ROLE_KEY, UNIT_KEY};

/// Re-exported so callers need no direct `aws-config` dependency.
pub use aws_config::SdkConfig;

use frankenetes_spec::{BackendSpec, ClusterSpec};

/// The SDK configuration from the standard AWS chain (environment, shared config and
/// credentials files, SSO, container and instance metadata), with the region of
/// `spec.backend.aws.region` when set and every service at `endpoint` when given (an
/// emulator such as moto).
pub async fn load_sdk_config(spec: &ClusterSpec, endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let BackendSpec::Aws(aws) = &spec.backend
        && let Some(region) = &aws.region
    {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// A hermetic SDK configuration: this endpoint, region and static key pair, nothing read
/// from the environment or profile files (for tests against moto).
pub fn static_sdk_config(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> SdkConfig {
    use aws_sdk_ec2::config::{Credentials, SharedCredentialsProvider};
    SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "frankenetes-static",
        )))
        .build()
}

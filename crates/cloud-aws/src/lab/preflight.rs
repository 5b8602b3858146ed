//! What `up` checks before its first write call: whatever can fail offline (payloads, the
//! control planes' size) or read-only (instance types and where they are offered, the key pair,
//! the AMI) fails here, so that a refused `up` leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::{join3, try_join_all};

use super::model::Machine;
use super::report::{Event, OnEvent};
use super::{Lab, LabPayloads};
use crate::catalog::{self, Arch, CONTROL_PLANE};
use crate::error::api;
use crate::{Error, tags};

/// The Fedora CoreOS publisher's AWS account (owner of the official AMIs).
pub const FEDORA_COREOS_OWNER: &str = "125523088429";

/// What the checks established.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    /// The AMI of each machine, by unit name.
    pub images: BTreeMap<String, String>,
    /// The machines whose config goes through the payload bucket.
    pub in_bucket: BTreeSet<String>,
}

/// What AWS says of an instance type.
struct TypeInfo {
    arch: Arch,
    memory_mib: u32,
    vcpus: u32,
}

const NODE_TYPE: &str = "spec.backend.aws.instanceType";
const GATEWAY_TYPE: &str = "spec.backend.aws.gatewayInstanceType";

impl Lab {
    /// The offline checks: a payload for every machine; the control planes' instance type
    /// big enough when the table knows it. Returns the machines whose config is over EC2's
    /// user-data limit even compressed (they boot from the payload bucket).
    pub(crate) fn check_offline(&self, payloads: &LabPayloads) -> Result<BTreeSet<String>, Error> {
        self.check_size_offline()?;
        if payloads.gateway.is_empty() {
            return Err(Error::Spec {
                field: "payloads.gateway".into(),
                message:
                    "no Ignition config given for the gateway; render the gateway bundle first"
                        .into(),
            });
        }
        for (node, _) in self.spec.nodes() {
            if !payloads.nodes.contains_key(&node.name) {
                return Err(Error::Spec {
                    field: format!("payloads.nodes[{}]", node.name.as_str()),
                    message:
                        "no Ignition config given for this node; render the node bundles first"
                            .into(),
                });
            }
        }
        Ok(self.oversized(payloads))
    }

    /// The machines whose config does not fit in user data even compressed.
    pub(crate) fn oversized(&self, payloads: &LabPayloads) -> BTreeSet<String> {
        let too_large = |unit: &str, p: &[u8]| {
            matches!(
                crate::userdata::encode(unit, p),
                Err(Error::UserDataTooLarge { .. })
            )
        };
        let mut out = BTreeSet::new();
        if too_large(self.gateway.name.as_str(), &payloads.gateway) {
            out.insert(self.gateway.name.as_str().to_owned());
        }
        for (name, p) in &payloads.nodes {
            if self.spec.node(name.as_str()).is_some() && too_large(name.as_str(), p) {
                out.insert(name.as_str().to_owned());
            }
        }
        out
    }

    /// [`Lab::check_size`] from the table, for the types it knows.
    pub(crate) fn check_size_offline(&self) -> Result<(), Error> {
        match catalog::instance_type(&self.aws.instance_type) {
            Some(t) => self.check_size(t.arch, t.memory_mib, t.vcpus),
            None => Ok(()),
        }
    }

    /// Refuses a node instance type too small for a control plane (when there is one).
    fn check_size(&self, arch: Arch, memory_mib: u32, vcpus: u32) -> Result<(), Error> {
        if self.spec.control_plane.is_empty() {
            return Ok(());
        }
        match CONTROL_PLANE.shortfall(&self.aws.instance_type, arch, memory_mib, vcpus) {
            None => Ok(()),
            Some(why) => Err(Error::Spec {
                field: NODE_TYPE.into(),
                message: format!("{why}. The control planes run on this type: choose a bigger one"),
            }),
        }
    }

    /// Every check, offline then read-only, before `up` writes anything.
    pub(crate) async fn preflight(
        &self,
        payloads: &LabPayloads,
        on: OnEvent<'_>,
    ) -> Result<Ready, Error> {
        let in_bucket = self.check_offline(payloads)?;
        let mut types: Vec<(&'static str, &str)> =
            vec![(NODE_TYPE, self.aws.instance_type.as_str())];
        if self.aws.gateway_instance_type != self.aws.instance_type {
            types.push((GATEWAY_TYPE, self.aws.gateway_instance_type.as_str()));
        }
        // Concurrently, but the first failure in this order is reported: an unknown type
        // before one not offered.
        let (infos, offered, key) = join3(
            try_join_all(types.iter().map(|(field, t)| self.describe_type(field, t))),
            self.check_offered(&types, on),
            self.check_key_pair(on),
        )
        .await;
        let infos = infos?;
        offered?;
        key?;
        let info: BTreeMap<&str, &TypeInfo> =
            types.iter().map(|(_, t)| *t).zip(infos.iter()).collect();
        let node = info.get(self.aws.instance_type.as_str()).copied();
        if let Some(n) = node {
            self.check_size(n.arch, n.memory_mib, n.vcpus)?;
        }
        let arch_of = |m: &Machine| info.get(self.size(m)).map_or(Arch::Amd64, |i| i.arch);
        let archs: BTreeSet<Arch> = self.machines().iter().map(arch_of).collect();
        let by_arch = self.images(&archs, on).await?;
        let images = self
            .machines()
            .iter()
            .filter_map(|m| {
                by_arch
                    .get(&arch_of(m))
                    .map(|ami| (m.unit().to_owned(), ami.clone()))
            })
            .collect();
        Ok(Ready { images, in_bucket })
    }

    /// `DescribeInstanceTypes` for one type: refuses a type EC2 does not have.
    async fn describe_type(&self, field: &str, t: &str) -> Result<TypeInfo, Error> {
        let out = self
            .ec2
            .describe_instance_types()
            .instance_types(aws_sdk_ec2::types::InstanceType::from(t))
            .send()
            .await;
        let bad = || Error::Spec {
            field: field.to_owned(),
            message: format!(
                "{t} is not an EC2 instance type; nothing was created. Choose one from `aws ec2 describe-instance-types`"
            ),
        };
        let out = match out.map_err(|e| api("DescribeInstanceTypes", t, e)) {
            Ok(out) => out,
            Err(e) if e.code() == Some("InvalidInstanceType") => return Err(bad()),
            Err(e) => return Err(e),
        };
        let it = out.instance_types().first().ok_or_else(bad)?;
        let archs: Vec<Arch> = it
            .processor_info()
            .map(|p| {
                p.supported_architectures()
                    .iter()
                    .filter_map(|a| catalog::from_ec2_name(a.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let arch = if archs.contains(&Arch::Amd64) {
            Arch::Amd64
        } else {
            archs
                .first()
                .copied()
                .unwrap_or_else(|| catalog::guess_arch(t))
        };
        let memory = it
            .memory_info()
            .and_then(|m| m.size_in_mib())
            .unwrap_or_default();
        let vcpus = it
            .v_cpu_info()
            .and_then(|v| v.default_v_cpus())
            .unwrap_or_default();
        Ok(TypeInfo {
            arch,
            memory_mib: u32::try_from(memory).unwrap_or(u32::MAX),
            vcpus: u32::try_from(vcpus).unwrap_or_default(),
        })
    }

    /// `DescribeInstanceTypeOfferings`: every type is offered in the zone (or the region).
    async fn check_offered(
        &self,
        types: &[(&'static str, &str)],
        on: OnEvent<'_>,
    ) -> Result<(), Error> {
        let (location_type, location) = match &self.aws.availability_zone {
            Some(az) => (
                aws_sdk_ec2::types::LocationType::AvailabilityZone,
                az.clone(),
            ),
            None => (aws_sdk_ec2::types::LocationType::Region, self.region()),
        };
        let names: Vec<&str> = types.iter().map(|(_, t)| *t).collect();
        let mut req = self
            .ec2
            .describe_instance_type_offerings()
            .location_type(location_type.clone())
            .filters(tags::field("instance-type", &names));
        if self.aws.availability_zone.is_some() {
            req = req.filters(tags::field("location", &[&location]));
        }
        let out = req
            .send()
            .await
            .map_err(|e| api("DescribeInstanceTypeOfferings", &location, e))?;
        let offered: BTreeSet<&str> = out
            .instance_type_offerings()
            .iter()
            .filter_map(|o| o.instance_type().map(|t| t.as_str()))
            .collect();
        for (field, t) in types {
            if !offered.contains(t) {
                return Err(Error::Spec {
                    field: (*field).to_owned(),
                    message: format!(
                        "{t} is not offered in {location}; nothing was created. Choose a type that \
                         `aws ec2 describe-instance-type-offerings --location-type {} --region {}` lists{}",
                        location_type.as_str(),
                        self.region(),
                        if self.aws.availability_zone.is_some() {
                            ", or another availabilityZone"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        on(&Event::Checked(format!(
            "instance types {} offered in {location}",
            names.join(", ")
        )));
        Ok(())
    }

    /// `DescribeKeyPairs`: `spec.backend.aws.keyName` exists in the region.
    async fn check_key_pair(&self, on: OnEvent<'_>) -> Result<(), Error> {
        let Some(key) = &self.aws.key_name else {
            return Ok(());
        };
        match self.ec2.describe_key_pairs().key_names(key).send().await {
            Ok(out) if !out.key_pairs().is_empty() => {
                on(&Event::Checked(format!("key pair {key}")));
                Ok(())
            }
            Ok(_) => Err(self.no_key_pair(key)),
            Err(e) => {
                let e = api("DescribeKeyPairs", key, e);
                if e.is_not_found() {
                    Err(self.no_key_pair(key))
                } else {
                    Err(e)
                }
            }
        }
    }

    fn no_key_pair(&self, key: &str) -> Error {
        let region = self.region();
        Error::Spec {
            field: "spec.backend.aws.keyName".into(),
            message: format!(
                "no EC2 key pair named {key:?} in {region}; nothing was created. Import your public key first \
                 (`aws ec2 import-key-pair --region {region} --key-name {key} --public-key-material fileb://~/.ssh/id_ed25519.pub`) \
                 or remove keyName"
            ),
        }
    }

    /// The AMI for each architecture: `spec.backend.aws.ami` (checked against the
    /// architectures when AWS lists it), or the newest Fedora CoreOS AMI of each.
    async fn images(
        &self,
        archs: &BTreeSet<Arch>,
        on: OnEvent<'_>,
    ) -> Result<BTreeMap<Arch, String>, Error> {
        if let Some(ami) = &self.aws.ami {
            self.check_given_ami(ami, archs, on).await?;
            return Ok(archs.iter().map(|a| (*a, ami.clone())).collect());
        }
        let found = try_join_all(archs.iter().map(|a| async move {
            let (id, name) = self.fedora_coreos(*a).await?;
            on(&Event::Checked(format!(
                "AMI {id} ({name}) for {}",
                catalog::ec2_name(*a)
            )));
            Ok::<_, Error>((*a, id))
        }))
        .await?;
        Ok(found.into_iter().collect())
    }

    /// A given AMI: refused when AWS lists it with another architecture than the machines'.
    /// One AWS does not list is left to `RunInstances` (with a warning): emulators list none
    /// of the ids tests give.
    async fn check_given_ami(
        &self,
        ami: &str,
        archs: &BTreeSet<Arch>,
        on: OnEvent<'_>,
    ) -> Result<(), Error> {
        let out = match self.ec2.describe_images().image_ids(ami).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = api("DescribeImages", ami, e);
                if e.code() == Some("InvalidAMIID.Malformed") {
                    return Err(Error::Spec {
                        field: "spec.backend.aws.ami".into(),
                        message: format!("EC2 says {ami} is not an AMI id; nothing was created"),
                    });
                }
                if !e.is_not_found() {
                    return Err(e);
                }
                on(&Event::Warning(format!(
                    "AMI {ami} is not listed in {}; RunInstances will refuse it if it does not exist",
                    self.region()
                )));
                return Ok(());
            }
        };
        let Some(image) = out.images().first() else {
            on(&Event::Warning(format!(
                "AMI {ami} is not listed in {}",
                self.region()
            )));
            return Ok(());
        };
        let arch = image
            .architecture()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        if let Some(other) = archs
            .iter()
            .map(|a| catalog::ec2_name(*a))
            .find(|a| *a != arch)
        {
            return Err(Error::Spec {
                field: "spec.backend.aws.ami".into(),
                message: format!(
                    "{ami} is a {arch} image, but {other} machines need it (the instance types decide); \
                     nothing was created. Give an {other} AMI, or remove `ami:` to use Fedora CoreOS for each architecture"
                ),
            });
        }
        on(&Event::Checked(format!("AMI {ami} ({arch})")));
        Ok(())
    }

    /// The newest Fedora CoreOS AMI of the stable stream (its versions end in `.3.<n>`;
    /// `testing` is `.2.`, `next` `.1.`, development builds say `dev`) for an architecture, by
    /// build date (the version's second field); any stream when no stable one is listed. Its
    /// id and name.
    async fn fedora_coreos(&self, arch: Arch) -> Result<(String, String), Error> {
        let out = self
            .ec2
            .describe_images()
            .owners(FEDORA_COREOS_OWNER)
            .filters(tags::field("name", &["fedora-coreos-*"]))
            .filters(tags::field("architecture", &[catalog::ec2_name(arch)]))
            .filters(tags::field("state", &["available"]))
            .send()
            .await
            .map_err(|e| api("DescribeImages", "fedora-coreos-*", e))?;
        let newest = |stable_only: bool| {
            out.images()
                .iter()
                .filter_map(|i| Some((fcos_version(i.name()?)?, i)))
                .filter(|(v, _)| !stable_only || v.1)
                .max_by(|(a, x), (b, y)| {
                    a.0.cmp(&b.0)
                        .then(x.creation_date().cmp(&y.creation_date()))
                })
                .map(|(_, i)| i)
        };
        let image = newest(true).or_else(|| newest(false));
        match image.and_then(|i| Some((i.image_id()?, i.name().unwrap_or_default()))) {
            Some((id, name)) => Ok((id.to_owned(), name.to_owned())),
            None => {
                let region = self.region();
                Err(Error::Spec {
                    field: "spec.backend.aws.ami".into(),
                    message: format!(
                        "no Fedora CoreOS {} AMI (owner {FEDORA_COREOS_OWNER}, name fedora-coreos-*) is listed in {region}; \
                         nothing was created. Set `ami:` to a Fedora CoreOS AMI of {region} \
                         (https://fedoraproject.org/coreos/download?stream=stable, AWS, your region), or use a region that has one",
                        catalog::ec2_name(arch)
                    ),
                })
            }
        }
    }
}

/// The build date of a Fedora CoreOS AMI name (`fedora-coreos-43.20261102.3.0-x86_64`) and
/// whether it is of the stable stream.
fn fcos_version(name: &str) -> Option<(u64, bool)> {
    let version = name.strip_prefix("fedora-coreos-")?.split('-').next()?;
    let fields: Vec<&str> = version.split('.').collect();
    let date = fields.get(1)?.parse().ok()?;
    Some((
        date,
        fields.get(2) == Some(&"3") && !version.contains("dev"),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fedora_coreos_streams_from_the_ami_name() {
        use super::fcos_version as v;
        assert_eq!(
            v("fedora-coreos-43.20261102.3.0-x86_64"),
            Some((20261102, true))
        );
        assert_eq!(
            v("fedora-coreos-43.20261110.2.0-aarch64"),
            Some((20261110, false))
        );
        assert_eq!(
            v("fedora-coreos-44.20261111.1.1-x86_64"),
            Some((20261111, false))
        );
        assert_eq!(
            v("fedora-coreos-43.20261112.dev.0-x86_64"),
            Some((20261112, false))
        );
        assert_eq!(
            v("fedora-coreos-43.20261112.3.dev-x86_64"),
            Some((20261112, false))
        );
        assert_eq!(v("amzn2-ami-hvm-2.0"), None);
        assert_eq!(v("fedora-coreos-latest"), None);
    }
}

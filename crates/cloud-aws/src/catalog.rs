//! The EC2 instance types the lab knows offline (memory, vCPUs, architecture, price), and what a
//! control plane needs of one.
//!
//! `plan` works without AWS, so it sizes and prices from this table; `up` asks AWS
//! (`DescribeInstanceTypes`) and applies the same rule to its answer, so a type missing here is
//! still checked before anything is created.

/// The architecture of an instance type: the spec's (one type for the whole workspace: the
/// kubelet the nodes download follows it); EC2 and AMIs name it [`ec2_name`].
pub use frankenetes_spec::Arch;

/// EC2's and AMIs' name of an architecture: `x86_64`, `arm64`.
pub fn ec2_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "arm64",
        // `Arch` is non-exhaustive; amd64 is the only other one Kubernetes and EC2 share.
        _ => "x86_64",
    }
}

/// From EC2's name.
pub fn from_ec2_name(s: &str) -> Option<Arch> {
    match s {
        "x86_64" => Some(Arch::Amd64),
        "arm64" => Some(Arch::Arm64),
        _ => None,
    }
}

/// A guess from the type's name, for types the table lacks: a `g` after the generation digit
/// (`t4g`, `m7g`, `c7gn`) is Graviton.
pub fn guess_arch(instance_type: &str) -> Arch {
    let family = instance_type.split('.').next().unwrap_or_default();
    let graviton = family.len() > 2 && family[2..].contains('g') && !family.starts_with('g');
    if graviton { Arch::Arm64 } else { Arch::Amd64 }
}

/// One instance type: what it has and what it costs.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct InstanceType {
    /// EC2's name (`t3a.small`).
    pub name: &'static str,
    /// Its architecture.
    pub arch: Arch,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory, MiB.
    pub memory_mib: u32,
    /// USD per hour, Linux on-demand, in the price table's region.
    pub usd_hour: f64,
}

const fn t(
    name: &'static str,
    arch: Arch,
    vcpus: u32,
    memory_mib: u32,
    usd_hour: f64,
) -> InstanceType {
    InstanceType {
        name,
        arch,
        vcpus,
        memory_mib,
        usd_hour,
    }
}

/// The burstable types a lab is made of (us-east-1 prices: see [`crate::plan::PRICES`] for the
/// source and date; memory and vCPUs from EC2's instance type pages, the same numbers moto's
/// `DescribeInstanceTypes` returns).
pub const INSTANCE_TYPES: &[InstanceType] = &[
    t("t2.nano", Arch::Amd64, 1, 512, 0.0058),
    t("t2.micro", Arch::Amd64, 1, 1024, 0.0116),
    t("t2.small", Arch::Amd64, 1, 2048, 0.023),
    t("t3.nano", Arch::Amd64, 2, 512, 0.0052),
    t("t3.micro", Arch::Amd64, 2, 1024, 0.0104),
    t("t3.small", Arch::Amd64, 2, 2048, 0.0208),
    t("t3.medium", Arch::Amd64, 2, 4096, 0.0416),
    t("t3a.nano", Arch::Amd64, 2, 512, 0.0047),
    t("t3a.micro", Arch::Amd64, 2, 1024, 0.0094),
    t("t3a.small", Arch::Amd64, 2, 2048, 0.0188),
    t("t3a.medium", Arch::Amd64, 2, 4096, 0.0376),
    t("t3a.large", Arch::Amd64, 2, 8192, 0.0752),
    t("t4g.nano", Arch::Arm64, 2, 512, 0.0042),
    t("t4g.micro", Arch::Arm64, 2, 1024, 0.0084),
    t("t4g.small", Arch::Arm64, 2, 2048, 0.0168),
    t("t4g.medium", Arch::Arm64, 2, 4096, 0.0336),
    t("t4g.large", Arch::Arm64, 2, 8192, 0.0672),
];

/// The table's entry for a type.
pub fn instance_type(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

/// What a control-plane machine needs: kubeadm's preflight minimum (`[ERROR Mem]` below
/// 1,700 MB, `[ERROR NumCPU]` below 2 CPUs). etcd, kube-apiserver, the controller manager and
/// the scheduler do not fit in less; the gateway (NAT and WireGuard) needs far less and is not
/// checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Needs {
    /// Memory, MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub vcpus: u32,
}

/// A control plane's [`Needs`].
pub const CONTROL_PLANE: Needs = Needs {
    memory_mib: 1700,
    vcpus: 2,
};

impl Needs {
    /// Whether a machine with this memory and these vCPUs is enough.
    pub fn fits(&self, memory_mib: u32, vcpus: u32) -> bool {
        memory_mib >= self.memory_mib && vcpus >= self.vcpus
    }

    /// Why `name` (with `memory_mib` and `vcpus`) is not enough, naming the cheapest types of the
    /// table that are (of the same family, and of the same architecture), with their cost;
    /// `None` when it fits.
    pub fn shortfall(&self, name: &str, arch: Arch, memory_mib: u32, vcpus: u32) -> Option<String> {
        if self.fits(memory_mib, vcpus) {
            return None;
        }
        let family = name.split('.').next().unwrap_or_default();
        let cheapest = |same_family: bool| {
            INSTANCE_TYPES
                .iter()
                .filter(|t| t.arch == arch && self.fits(t.memory_mib, t.vcpus))
                .filter(|t| !same_family || t.name.split('.').next() == Some(family))
                .min_by(|a, b| a.usd_hour.total_cmp(&b.usd_hour))
        };
        let describe = |t: &InstanceType| {
            format!(
                "{} ({} MiB, {} vCPUs, ${:.4}/hour on demand in us-east-1)",
                t.name, t.memory_mib, t.vcpus, t.usd_hour
            )
        };
        let mut msg = format!(
            "{name} has {memory_mib} MiB and {vcpus} vCPU(s); a control plane needs at least {} MiB and {} vCPUs \
             (kubeadm's preflight minimum: etcd and kube-apiserver do not fit in less)",
            self.memory_mib, self.vcpus
        );
        match (cheapest(true), cheapest(false)) {
            (Some(f), Some(a)) if f.name == a.name => {
                msg += &format!(
                    "; the smallest {} type that fits is {}",
                    ec2_name(arch),
                    describe(f)
                );
            }
            (Some(f), Some(a)) => {
                msg += &format!(
                    "; the smallest of its family that fits is {}, the cheapest {} type that fits is {}",
                    describe(f),
                    ec2_name(arch),
                    describe(a)
                );
            }
            (None, Some(a)) => {
                msg += &format!(
                    "; the cheapest {} type that fits is {}",
                    ec2_name(arch),
                    describe(a)
                )
            }
            _ => {}
        }
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_follows_the_instance_family() {
        for (t, want) in [
            ("t4g.small", Arch::Arm64),
            ("m7g.large", Arch::Arm64),
            ("c7gn.large", Arch::Arm64),
            ("t3a.nano", Arch::Amd64),
            ("g5.xlarge", Arch::Amd64),
            ("m6i.large", Arch::Amd64),
        ] {
            assert_eq!(guess_arch(t), want, "{t}");
        }
        for t in INSTANCE_TYPES {
            assert_eq!(guess_arch(t.name), t.arch, "{}", t.name);
        }
    }

    #[test]
    fn the_table_is_one_entry_per_type_and_halves_down_each_family() {
        let mut names: Vec<_> = INSTANCE_TYPES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), INSTANCE_TYPES.len());
        for w in INSTANCE_TYPES.windows(2) {
            let fam = |t: &InstanceType| t.name.split('.').next().unwrap_or_default().to_owned();
            if fam(&w[0]) == fam(&w[1]) {
                assert_eq!(
                    w[1].memory_mib,
                    w[0].memory_mib * 2,
                    "{} -> {}",
                    w[0].name,
                    w[1].name
                );
                assert!(
                    w[1].usd_hour > w[0].usd_hour,
                    "{} -> {}",
                    w[0].name,
                    w[1].name
                );
            }
        }
    }

    #[test]
    fn a_nano_control_plane_is_refused_naming_what_fits_and_its_cost() {
        let nano = instance_type("t3a.nano").unwrap();
        let msg = CONTROL_PLANE
            .shortfall(nano.name, nano.arch, nano.memory_mib, nano.vcpus)
            .unwrap();
        assert!(
            msg.starts_with("t3a.nano has 512 MiB and 2 vCPU(s)"),
            "{msg}"
        );
        assert!(msg.contains("at least 1700 MiB and 2 vCPUs"), "{msg}");
        assert!(
            msg.contains(
                "the smallest x86_64 type that fits is t3a.small (2048 MiB, 2 vCPUs, $0.0188/hour"
            ),
            "{msg}"
        );
        // Intel's small is dearer than AMD's: both named.
        let msg = CONTROL_PLANE
            .shortfall("t3.micro", Arch::Amd64, 1024, 2)
            .unwrap();
        assert!(
            msg.contains("smallest of its family that fits is t3.small")
                && msg.contains("cheapest x86_64 type that fits is t3a.small"),
            "{msg}"
        );
        // Enough memory, one vCPU.
        let msg = CONTROL_PLANE
            .shortfall("t2.small", Arch::Amd64, 2048, 1)
            .unwrap();
        assert!(msg.contains("t3a.small"), "{msg}");
        // Graviton stays Graviton (the AMI follows the architecture).
        let msg = CONTROL_PLANE
            .shortfall("t4g.nano", Arch::Arm64, 512, 2)
            .unwrap();
        assert!(msg.contains("arm64 type that fits is t4g.small"), "{msg}");
        assert_eq!(
            CONTROL_PLANE.shortfall("t3a.small", Arch::Amd64, 2048, 2),
            None
        );
        assert_eq!(
            CONTROL_PLANE.shortfall("m9z.huge", Arch::Amd64, 65536, 16),
            None
        );
    }
}

//! The tags every resource carries, and the filters that find them again.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use frankenetes_compute::ClusterTag;

/// Tag key naming a resource's role in the lab (`vpc`, `subnet-nodes`, `eni-control-01`), so
/// that `up` finds each one again by tag.
pub const ROLE_KEY: &str = "frankenetes.dev/role";
/// Tag key naming the unit (machine) an instance is.
pub const UNIT_KEY: &str = "frankenetes.dev/unit";

/// The EC2 tags of a resource: the cluster tag, its role, and a `Name`.
pub(crate) fn ec2_tags(cluster: &str, role: &str, name: &str) -> Vec<Tag> {
    vec![
        Tag::builder().key(ClusterTag::KEY).value(cluster).build(),
        Tag::builder().key(ROLE_KEY).value(role).build(),
        Tag::builder().key("Name").value(name).build(),
    ]
}

/// A TagSpecification carrying [`ec2_tags`] (plus `extra`) for a resource type.
pub(crate) fn spec(
    rt: ResourceType,
    cluster: &str,
    role: &str,
    name: &str,
    extra: &[(&str, &str)],
) -> TagSpecification {
    let mut b = TagSpecification::builder().resource_type(rt);
    for t in ec2_tags(cluster, role, name) {
        b = b.tags(t);
    }
    for (k, v) in extra {
        b = b.tags(Tag::builder().key(*k).value(*v).build());
    }
    b.build()
}

/// `tag:<key>=<value>`.
pub(crate) fn filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// A filter on any other field.
pub(crate) fn field(name: &str, values: &[&str]) -> Filter {
    let mut b = Filter::builder().name(name);
    for v in values {
        b = b.values(*v);
    }
    b.build()
}

/// The value of `key` among `tags`.
pub(crate) fn value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

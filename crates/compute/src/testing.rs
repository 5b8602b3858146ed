//! The conformance suite every [`ComputeBackend`] runs (feature `testing`; not stable API).
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_backend_conforms() {
//!     let backend = MyBackend::new(/* … */);
//!     frankenetes_compute::testing::lifecycle(&backend, sample_unit()).await;
//! }
//! ```

#![allow(clippy::panic)] // a test suite fails by panicking

use crate::{BackendErrorKind, ClusterTag, ComputeBackend, UnitSpec, UnitState};

/// Create a tagged unit, create it again (adopted, not duplicated), find it by tag (and not
/// under another tag), describe it, delete it, see the list empty, delete it again (`Ok` or
/// `NotFound`), and describe it gone (`NotFound`). `unit` must carry a tag used by nothing
/// else.
pub async fn lifecycle(backend: &dyn ComputeBackend, unit: UnitSpec) {
    let name = backend.name().to_owned();
    let created = backend
        .create(&unit)
        .await
        .unwrap_or_else(|e| panic!("{name}: create {}: {e}", unit.name));
    assert_eq!(
        created.name, unit.name,
        "{name}: created unit keeps its name"
    );
    assert_eq!(
        created.tag, unit.tag,
        "{name}: created unit carries the tag"
    );
    assert!(
        matches!(created.state, UnitState::Pending | UnitState::Running),
        "{name}: new unit is {:?}",
        created.state
    );

    let again = backend
        .create(&unit)
        .await
        .unwrap_or_else(|e| panic!("{name}: second create: {e}"));
    assert_eq!(
        again.id, created.id,
        "{name}: a second create adopts the unit"
    );

    let listed = backend
        .list(&unit.tag)
        .await
        .unwrap_or_else(|e| panic!("{name}: list: {e}"));
    let ours: Vec<_> = listed.iter().filter(|u| u.name == unit.name).collect();
    assert_eq!(
        ours.len(),
        1,
        "{name}: exactly one unit named {} under its tag: {listed:?}",
        unit.name
    );
    assert!(
        listed.iter().all(|u| u.tag == unit.tag),
        "{name}: list returns only the tag's units"
    );
    let other = ClusterTag::new(format!("{}-other", unit.tag.cluster));
    let foreign = backend
        .list(&other)
        .await
        .unwrap_or_else(|e| panic!("{name}: list other: {e}"));
    assert!(
        foreign.iter().all(|u| u.name != unit.name),
        "{name}: another tag does not see the unit"
    );

    let described = backend
        .describe(&created.id)
        .await
        .unwrap_or_else(|e| panic!("{name}: describe: {e}"));
    assert_eq!(described.id, created.id);

    backend
        .delete(&created.id)
        .await
        .unwrap_or_else(|e| panic!("{name}: delete: {e}"));
    let after = backend
        .list(&unit.tag)
        .await
        .unwrap_or_else(|e| panic!("{name}: list after delete: {e}"));
    assert!(
        after.iter().all(|u| u.name != unit.name),
        "{name}: deleted unit still listed: {after:?}"
    );
    match backend.delete(&created.id).await {
        Ok(()) => {}
        Err(e) if e.kind == BackendErrorKind::NotFound => {}
        Err(e) => panic!("{name}: deleting a deleted unit must be Ok or NotFound, got {e}"),
    }
    match backend.describe(&created.id).await {
        Err(e) if e.kind == BackendErrorKind::NotFound => {}
        other => panic!("{name}: describing a deleted unit must be NotFound, got {other:?}"),
    }
}

//! The official ARM example payloads in `fixtures/` (copied unchanged from
//! Azure/azure-rest-api-specs, MIT; `synthesized/` are hand-written and say so), compiled in so
//! the replay server needs no file at run time.

/// `(file name, contents)`, file names as in `fixtures/`.
pub(crate) static FIXTURES: &[(&str, &str)] = &[
    (
        "ContainerGroupsCreateOrUpdate.json",
        include_str!("../fixtures/ContainerGroupsCreateOrUpdate.json"),
    ),
    (
        "ContainerGroupsDelete.json",
        include_str!("../fixtures/ContainerGroupsDelete.json"),
    ),
    (
        "ContainerGroupsGet_Failed.json",
        include_str!("../fixtures/ContainerGroupsGet_Failed.json"),
    ),
    (
        "ContainerGroupsGet_Succeeded.json",
        include_str!("../fixtures/ContainerGroupsGet_Succeeded.json"),
    ),
    (
        "ContainerGroupsList.json",
        include_str!("../fixtures/ContainerGroupsList.json"),
    ),
    (
        "ContainerGroupsListByResourceGroup.json",
        include_str!("../fixtures/ContainerGroupsListByResourceGroup.json"),
    ),
    (
        "ContainerGroupsRestart.json",
        include_str!("../fixtures/ContainerGroupsRestart.json"),
    ),
    (
        "ContainerGroupsStart.json",
        include_str!("../fixtures/ContainerGroupsStart.json"),
    ),
    (
        "ContainerGroupsStop.json",
        include_str!("../fixtures/ContainerGroupsStop.json"),
    ),
    (
        "ContainerGroupsUpdate.json",
        include_str!("../fixtures/ContainerGroupsUpdate.json"),
    ),
    (
        "FileSharesPut.json",
        include_str!("../fixtures/FileSharesPut.json"),
    ),
    (
        "StorageAccountListKeys.json",
        include_str!("../fixtures/StorageAccountListKeys.json"),
    ),
    (
        "synthesized/AsyncOperation_Failed.json",
        include_str!("../fixtures/synthesized/AsyncOperation_Failed.json"),
    ),
    (
        "synthesized/AsyncOperation_InProgress.json",
        include_str!("../fixtures/synthesized/AsyncOperation_InProgress.json"),
    ),
    (
        "synthesized/AsyncOperation_Succeeded.json",
        include_str!("../fixtures/synthesized/AsyncOperation_Succeeded.json"),
    ),
    (
        "synthesized/CloudError_DnsNameLabelAlreadyTaken.json",
        include_str!("../fixtures/synthesized/CloudError_DnsNameLabelAlreadyTaken.json"),
    ),
    (
        "synthesized/CloudError_InaccessibleImage.json",
        include_str!("../fixtures/synthesized/CloudError_InaccessibleImage.json"),
    ),
    (
        "synthesized/CloudError_ServiceUnavailable_Quota.json",
        include_str!("../fixtures/synthesized/CloudError_ServiceUnavailable_Quota.json"),
    ),
];

/// A fixture by file name (`"ContainerGroupsDelete.json"`, `"synthesized/…"`).
pub(crate) fn text(name: &str) -> Option<&'static str> {
    FIXTURES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

//! No flag injection (#18.1): a value that would split into a second flag, cut the command
//! line or be a flag itself is refused for every component that takes `extraArgs`, naming the
//! field, before anything is written; values that are one token pass unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::collections::BTreeMap;

use frankenetes_spec::ClusterSpec;

fn extra_args<'a>(spec: &'a mut ClusterSpec, section: &str) -> &'a mut BTreeMap<String, String> {
    match section {
        "apiServer" => &mut spec.api_server.extra_args,
        "controllerManager" => &mut spec.controller_manager.extra_args,
        "scheduler" => &mut spec.scheduler.extra_args,
        "etcd" => &mut spec.etcd.extra_args,
        _ => unreachable!(),
    }
}

const HOSTILE: &[&str] = &[
    "30 --anonymous-auth=true",
    "30\n--anonymous-auth=true",
    "30\r\n--profiling=true",
    "30\t--anonymous-auth=true",
    "--anonymous-auth=true",
    "30\u{2028}--anonymous-auth=true",
    "1 2",
];

#[test]
fn a_value_carrying_a_flag_is_refused_naming_the_field_and_nothing_is_written() {
    for (section, flag) in [
        ("apiServer", "audit-log-maxage"),
        ("controllerManager", "concurrent-gc-syncs"),
        ("scheduler", "v"),
        ("etcd", "quota-backend-bytes"),
    ] {
        for value in HOSTILE {
            let mut spec = common::lab();
            extra_args(&mut spec, section).insert(flag.into(), (*value).into());
            let field = format!("spec.{section}.extraArgs.{flag}: ");
            let e = frankenetes_manifests::check(&spec).unwrap_err();
            assert!(e.is_bad_input(), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&field), "{section} {value:?}: {msg}");
            assert!(!msg.contains('\n'), "the message is one line: {msg:?}");
            // render refuses it the same way, so no unit or .ign is ever written.
            let out = tempfile::tempdir().unwrap();
            let plan = frankenetes_pki::PkiPlan::from(&spec);
            let (pki, _) = frankenetes_pki::sync(&plan, out.path(), Default::default()).unwrap();
            let e = frankenetes_manifests::render(&spec, &pki).unwrap_err();
            assert_eq!(e.to_string(), msg);
            assert!(!out.path().join("nodes/control-01.ign").exists());
            assert!(!out.path().join("nodes/control-01/etc/systemd").exists());
        }
    }
    // The security guard's flag is named in the message.
    let mut spec = common::lab();
    spec.api_server
        .extra_args
        .insert("audit-log-maxage".into(), "30 --anonymous-auth=true".into());
    let msg = frankenetes_manifests::check(&spec).unwrap_err().to_string();
    assert!(
        msg.starts_with("spec.apiServer.extraArgs.audit-log-maxage: ")
            && msg.contains("--anonymous-auth"),
        "{msg}"
    );
}

#[test]
fn the_same_from_a_cluster_yaml() {
    // The spec refuses control characters itself; a space is the manifests' to refuse.
    let spec = common::spec(
        ["10.10.16.11", "10.10.16.12", "10.10.16.13", "10.10.16.21"],
        "  apiServer:\n    extraArgs:\n      audit-log-maxage: \"30 --anonymous-auth=true\"\n",
    );
    let e = frankenetes_manifests::check(&spec).unwrap_err();
    assert!(e.is_bad_input());
    assert!(
        e.to_string()
            .starts_with("spec.apiServer.extraArgs.audit-log-maxage: the value \"30 --anonymous-auth=true\" carries a second flag, --anonymous-auth"),
        "{e}"
    );
}

#[test]
fn one_token_values_pass_unchanged() {
    let mut spec = common::lab();
    let hostile_but_one_token = "^https://a\\.example(:[0-9]+)?$,%h,\"q\",'s',;,é";
    spec.api_server
        .extra_args
        .insert("cors-allowed-origins".into(), hostile_but_one_token.into());
    spec.etcd
        .extra_args
        .insert("quota-backend-bytes".into(), "8589934592".into());
    let (_dir, rendered) = common::render_to_dir(&spec);
    let cp = rendered.control_plane("control-01").unwrap();
    assert_eq!(
        cp.apiserver.get("cors-allowed-origins"),
        Some(hostile_but_one_token)
    );
}

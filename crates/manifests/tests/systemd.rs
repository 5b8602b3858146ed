//! Quoting proven by systemd itself (#17.8, #18.1): command lines written into units come back
//! from a real systemd manager (systemd 252: a private `systemd --user`, see
//! `common/systemd.rs`) as exactly the argv they were made from — hostile values included,
//! and a newline inside a value cuts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::systemd::UserManager;
use frankenetes_manifests::{Layout, Unit};

fn probe_unit(argv: &[String]) -> Unit {
    Unit::service("probe.service", "argv probe", argv, false, &[])
}

/// Values systemd's unit-file syntax treats specially: white space, quotes, backslashes and C
/// escapes, specifiers (`%`), environment expansion (`$`), `;` (separates commands), a
/// leading `-`/`@`/`+`/`!`/`:` (prefixes of the binary), control characters, and non-ASCII.
const HOSTILE: &[&str] = &[
    "a b",
    "  leading and trailing  ",
    "",
    "%",
    "100%",
    "%n %H %%",
    "$HOME",
    "${HOME}",
    "$$",
    "a$",
    "\"",
    "'",
    "'single' \"double\"",
    "\\",
    "back\\slash\\",
    "\\x41\\n\\t",
    ";",
    "a;b",
    " ; ",
    "-",
    "@x",
    "+x",
    "!x",
    ":x",
    "tab\there",
    "line\nbreak",
    "cr\rlf",
    "bell\u{7}",
    "é ü 日本 🚀",
    "30 --anonymous-auth=true",
    "--profiling=true",
];

/// More values, from a fixed-seed generator over an alphabet of the special characters.
fn generated(n: usize) -> Vec<String> {
    let alphabet: Vec<char> = "ab -_=,.:;%$\"'\\/@!+*?[]{}()\t\né€😀#&|<>~`^"
        .chars()
        .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = (next() % 12) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn hostile_arguments_come_back_from_systemd_exactly() {
    let m = UserManager::start();
    let mut argv = vec!["/usr/local/bin/probe".to_owned()];
    argv.extend(HOSTILE.iter().map(|s| (*s).to_owned()));
    argv.extend(generated(400));
    argv.push("--last=still-here".into());
    let unit = probe_unit(&argv);
    assert_eq!(m.argv_of("probe.service", &unit.to_string()), argv);
    unit.check().unwrap();
    // One at a time too: each is exactly one argument, wherever it stands.
    for h in HOSTILE {
        let argv = vec![
            "/usr/local/bin/probe".to_owned(),
            (*h).to_owned(),
            "--after".into(),
        ];
        let got = m.argv_of("probe.service", &probe_unit(&argv).to_string());
        assert_eq!(got, argv, "{h:?}");
    }
}

#[test]
fn rendered_units_run_exactly_their_command_lines() {
    let mut spec = common::lab();
    spec.api_server.extra_args.insert(
        "cors-allowed-origins".into(),
        "^https://a\\.example(:[0-9]+)?$,%h,\"q\",'s',;,é".into(),
    );
    let (_dir, rendered) = common::render_to_dir(&spec);
    let m = UserManager::start();
    for (name, cp) in &rendered.control_planes {
        let node = rendered.node(name).unwrap();
        for (unit, binary, flags) in [
            ("frankenetes-etcd.service", "etcd", &cp.etcd),
            (
                "frankenetes-kube-apiserver.service",
                "kube-apiserver",
                &cp.apiserver,
            ),
            (
                "frankenetes-kube-controller-manager.service",
                "kube-controller-manager",
                &cp.controller_manager,
            ),
            (
                "frankenetes-kube-scheduler.service",
                "kube-scheduler",
                &cp.scheduler,
            ),
        ] {
            let text = node.unit(unit).unwrap().contents().unwrap();
            let mut want = vec![format!("/usr/local/bin/{binary}")];
            want.extend(flags.args());
            assert_eq!(m.argv_of(unit, &text), want, "{name}: {unit}");
        }
    }
}

#[test]
fn a_bundle_directory_with_spaces_stays_one_argument_per_flag() {
    // The local backend runs components from a bundle directory, which may hold a space.
    let spec = common::lab();
    let node = &spec.control_plane[0];
    let layout = Layout::under(
        "/home/me/my lab/nodes/control-01",
        "/home/me/my lab/etcd $x",
    );
    let cp = frankenetes_manifests::control_plane(&spec, node, &layout).unwrap();
    let mut argv = vec!["/usr/local/bin/kube-apiserver".to_owned()];
    argv.extend(cp.apiserver.args());
    let m = UserManager::start();
    assert_eq!(
        m.argv_of("probe.service", &probe_unit(&argv).to_string()),
        argv
    );
    let mut argv = vec!["/usr/local/bin/etcd".to_owned()];
    argv.extend(cp.etcd.args());
    assert!(argv.contains(&"--data-dir=/home/me/my lab/etcd $x".to_owned()));
    assert_eq!(
        m.argv_of("probe.service", &probe_unit(&argv).to_string()),
        argv
    );
}

#[test]
fn a_newline_in_a_value_cuts_nothing() {
    // Render refuses it (tests/injection.rs); were it to reach a unit, systemd still gives it
    // back as one argument, and every flag after it is still there.
    let spec = common::lab();
    let cp = frankenetes_manifests::control_plane(
        &spec,
        &spec.control_plane[0],
        &Layout::machine(&spec),
    )
    .unwrap();
    let mut argv = vec!["/usr/local/bin/kube-apiserver".to_owned()];
    argv.push("--audit-log-maxage=30\nExecStartPre=/bin/evil\n--anonymous-auth=true".into());
    argv.extend(cp.apiserver.args());
    let unit = probe_unit(&argv);
    let text = unit.to_string();
    assert!(!text.contains("\nExecStartPre="), "{text}");
    let m = UserManager::start();
    let got = m.argv_of("probe.service", &text);
    assert_eq!(got, argv);
    for a in cp.apiserver.args() {
        assert!(got.contains(&a), "{a} lost");
    }
    assert!(!got.iter().any(|a| a == "--anonymous-auth=true"));
}

/// Every unit of every node's overlay passes `systemd-analyze verify` in a scratch root that
/// holds the overlay, the OS's unit files and (for the bare-binary units, whose binaries the
/// operator installs) stub executables.
#[test]
fn systemd_analyze_verifies_every_rendered_unit() {
    let (dir, rendered) = common::render_to_dir(&common::lab());
    for node in &rendered.nodes {
        let root = tempfile::tempdir().unwrap();
        let copy = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", node.root(dir.path()).display()))
            .arg(root.path())
            .status()
            .unwrap();
        assert!(copy.success());
        common::systemd::give_os_units(root.path(), &["containerd.service"]);
        let binaries: Vec<String> = node
            .units
            .iter()
            .filter_map(|u| u.get("Service", "ExecStart"))
            .map(|e| e.split_whitespace().next().unwrap().to_owned())
            .collect();
        common::systemd::stub_binaries(root.path(), &binaries);
        let ours: Vec<String> = node
            .units
            .iter()
            .filter(|u| u.contents().is_some())
            .map(|u| u.name.clone())
            .collect();
        common::systemd::verify(root.path(), &ours);
    }
}

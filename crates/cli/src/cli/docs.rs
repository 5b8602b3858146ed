//! Docs are tests: every `frankenetes …` command shown in README.md and docs/*.md — in code
//! blocks and in inline code — is parsed by this CLI. The README's local life cycle (up,
//! status, snapshot, pause, resume, restore, down, kubeconfig, completion, pki, render) also
//! runs end to end in tests/lifecycle.rs and tests/cli.rs; the cloud ones against moto
//! (tests/aws_cli.rs) and the ARM replay (cloud-azure's tests).

use clap::{CommandFactory, Parser};

use super::Cli;

/// A command line split as a POSIX shell would split a simple one: words, single and double
/// quotes; stops at a comment, a pipe, a redirection or `&&`/`;`.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '#' | '|' | '>' | '<' | ';' | '&') if !in_word => break,
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// The `frankenetes` invocations in a Markdown text: (line number, argv without the program).
pub(crate) fn commands(markdown: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (i, line) in markdown.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let candidates: Vec<String> = if in_block {
            vec![t.trim_start_matches("$ ").to_owned()]
        } else {
            // Inline code spans.
            t.split('`')
                .enumerate()
                .filter(|(k, _)| k % 2 == 1)
                .map(|(_, s)| s.to_owned())
                .collect()
        };
        for c in candidates {
            let w = words(&c);
            let start = if let Some(p) = w.iter().position(|x| x == "--")
                && w.first().is_some_and(|x| x == "cargo")
                && w.iter()
                    .any(|x| x == "frankenetes-cli" || x == "frankenetes")
            {
                // `cargo run --release -p frankenetes-cli -- up …`
                p + 1
            } else if let Some(p) = w
                .iter()
                .position(|x| x == "frankenetes" || x.ends_with("/frankenetes") || x == "$bin")
            {
                // Only the command word, not `cargo add frankenetes` or a prose mention.
                if p != 0 && !w[..p].iter().all(|x| x.contains('=') || x == "sudo") {
                    continue;
                }
                p + 1
            } else {
                continue;
            };
            let args = w[start..].to_vec();
            if args.is_empty() || args[0].starts_with('<') {
                continue;
            }
            out.push((i + 1, args));
        }
    }
    out
}

/// README.md and every docs/*.md, with their names.
fn documents() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs = vec![(
        "README.md".to_owned(),
        std::fs::read_to_string(root.join("README.md")).expect("README.md"),
    )];
    let mut files: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    for f in files {
        let name = format!(
            "docs/{}",
            f.file_name().unwrap_or_default().to_string_lossy()
        );
        docs.push((name, std::fs::read_to_string(&f).expect("a doc")));
    }
    docs
}

#[test]
fn the_cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_documented_command_parses() {
    let mut failures = Vec::new();
    let mut seen = 0;
    for (name, text) in documents() {
        for (line, args) in commands(&text) {
            seen += 1;
            let argv = std::iter::once("frankenetes".to_owned()).chain(args.iter().cloned());
            if let Err(e) = Cli::try_parse_from(argv) {
                // `--help` and `--version` "fail" with their output: they parse.
                if matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) {
                    continue;
                }
                failures.push(format!(
                    "{name}:{line}: frankenetes {}\n{}",
                    args.join(" "),
                    e.render()
                ));
            }
        }
    }
    assert!(
        seen > 20,
        "only {seen} documented commands found: is the extraction right?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The command is in the package `frankenetes-cli`; `frankenetes` is the library facade, which
/// has no binary: a doc that runs or installs it shows a command that fails.
#[test]
fn no_doc_runs_the_library_package() {
    let mut failures = Vec::new();
    for (name, text) in documents() {
        for (i, line) in text.lines().enumerate() {
            let w = words(line);
            let runs_lib = w.windows(2).any(|p| p[0] == "-p" && p[1] == "frankenetes")
                && w.first().is_some_and(|x| x == "cargo");
            let installs_lib = w
                .windows(2)
                .any(|p| p[0] == "--path" && p[1] == "crates/frankenetes");
            if runs_lib
                || installs_lib
                || line.contains("`cargo install --path crates/frankenetes ")
            {
                failures.push(format!("{name}:{}: {line}", i + 1));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "use -p frankenetes-cli / --path crates/cli:\n{}",
        failures.join("\n")
    );
}

#[test]
fn extraction_finds_the_shapes_the_docs_use() {
    let md = "```sh\ncargo run --release -p frankenetes-cli -- up -f cluster.yaml   # comment\n\
              frankenetes snapshot -f cluster.yaml backup.db\n$ frankenetes init > cluster.yaml\n\
              cargo add frankenetes-pki\n```\nRun `frankenetes pki check out` then `kubectl get nodes`.\n";
    let got: Vec<Vec<String>> = commands(md).into_iter().map(|(_, a)| a).collect();
    assert_eq!(
        got,
        vec![
            vec!["up", "-f", "cluster.yaml"],
            vec!["snapshot", "-f", "cluster.yaml", "backup.db"],
            vec!["init"],
            vec!["pki", "check", "out"],
        ]
    );
}

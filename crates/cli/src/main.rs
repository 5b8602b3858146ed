//! The `frankenetes` command line (see `frankenetes --help`; the commands live in `cli/`).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI prints

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

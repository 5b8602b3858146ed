//! Running async work from a command: one runtime, Ctrl-C turned into exit 130 with a sentence
//! about what was left, and progress printed as it happens.

use std::io::IsTerminal;

use frankenetes::bootstrap::Event;

use super::fail::CliError;

/// Runs `fut` on a new runtime; Ctrl-C (SIGINT) ends it with exit 130 and `on_interrupt`.
pub(crate) fn block_on<T>(
    on_interrupt: &str,
    fut: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(async {
        // Registered before any work starts, so an early Ctrl-C is caught too.
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| anyhow::anyhow!("cannot catch SIGINT: {e}"))?;
        tokio::select! {
            r = fut => r,
            _ = interrupt.recv() => Err(CliError::interrupted(on_interrupt)),
        }
    })
}

/// Progress of a long operation: a spinner on a terminal, plain lines otherwise (CI, pipes).
/// At verbosity 0 what the platform found (adopted) is not shown; at 1 and more it is.
pub(crate) fn progress(verbose: u8) -> impl Fn(&Event) + Send + Sync + 'static {
    use frankenetes::compute::Progress;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    move |e: &Event| {
        match e {
            Event::Started(p) => {
                if let Some(pb) = &bar {
                    pb.set_message(format!("{p}…"));
                    return;
                }
            }
            Event::Waiting(p, what) => {
                if let Some(pb) = &bar {
                    pb.set_message(format!("{p}: {what}"));
                    return;
                }
            }
            Event::Platform(_, Progress::Found { .. }) if verbose == 0 => return,
            _ => {}
        }
        let line = e.to_string();
        match &bar {
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
    }
}

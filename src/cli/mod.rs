//! Shared plumbing of the binaries: logging set-up, error reporting at the edge, the
//! runner's command line, and shell completions and man pages for both programs.

pub mod bench_args;
pub mod completions;
pub mod run_args;

use std::process::ExitCode;

/// Restores the default action of SIGPIPE, so that output piped into `head` and the like
/// ends the process quietly, as it does any Unix tool. Rust ignores the signal, which turns
/// every `println!` after the reader has gone into a panic ("failed printing to stdout").
pub fn end_quietly_on_closed_pipe() {
    sigpipe::reset();
}

/// Structured logs on stderr; `RUST_LOG` chooses the level (default: warnings only, so
/// progress bars stay readable; `RUST_LOG=info` or `debug` for more).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Prints an error with its chain of causes as one paragraph and exits with status 2.
pub fn exit_with(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and each of its sources, joined by ": ", leaving out a source whose text the
/// message already holds (the library's messages name their cause; the chain keeps it for
/// code that walks `source()`).
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// A progress bar with an ETA on standard error, drawn only on a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn causes_are_kept_and_shown_once() {
        let io = std::io::Error::other("disk on fire");
        let e = crate::results::ResultsError::Write {
            path: PathBuf::from("t.csv"),
            cause: io,
        };
        assert!(std::error::Error::source(&e).is_some(), "the chain is kept");
        let text = describe(&anyhow::Error::new(e));
        assert_eq!(text.matches("disk on fire").count(), 1, "{text}");
        let wrapped = anyhow::Error::msg("inner cause").context("outer");
        assert_eq!(describe(&wrapped), "outer: inner cause");
    }
}

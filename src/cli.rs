//! Shared plumbing of the binaries: logging set-up and error reporting at the edge.

use std::process::ExitCode;

/// Restores the default action of SIGPIPE, so that output piped into `head` and the like
/// ends the process quietly, as it does any Unix tool. Rust ignores the signal, which turns
/// every `println!` after the reader has gone into a panic ("failed printing to stdout").
pub fn end_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to its default, once, before any output.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

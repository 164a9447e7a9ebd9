//! The programs' one way to install logging: text for a person at a
//! terminal (coloured only there), JSON lines for a platform's collector.
//! `RUST_LOG` overrides the default filter.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    /// For a program whose stdout is its result (the janitor's report).
    Stderr,
}

/// Installs the tracing subscriber; a second call changes nothing.
pub fn init(format: LogFormat, default_filter: &str, output: Output) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ansi = match output {
        Output::Stdout => std::io::stdout().is_terminal(),
        Output::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match (format, output) {
        (LogFormat::Json, Output::Stdout) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, Output::Stdout) => builder.try_init(),
        (LogFormat::Json, Output::Stderr) => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .try_init(),
        (LogFormat::Text, Output::Stderr) => builder.with_writer(std::io::stderr).try_init(),
    };
}

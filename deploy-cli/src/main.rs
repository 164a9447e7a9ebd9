//! `switchyard`: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::FromArgMatches;
use switchyard_cli::{Cli, settings};
use switchyard_core::config::{Flags, ProcessEnv};

#[tokio::main]
async fn main() -> ExitCode {
    let matches = switchyard_core::config::parse_args(settings::command());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let flags = Flags::new(&matches, settings::ALL, &ProcessEnv);
    let json = cli.global.json;
    match switchyard_cli::run(cli, &flags).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json {
                // --json promises one JSON object, failures included.
                let err =
                    serde_json::json!({ "error": format!("{:#}", f.error), "exit_code": f.code });
                println!("{err}");
            } else {
                eprintln!("switchyard: {:#}", f.error);
            }
            ExitCode::from(f.code)
        }
    }
}

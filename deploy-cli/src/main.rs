//! `switchyard`: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use switchyard_cli::Cli;
use switchyard_core::config::ProcessEnv;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match switchyard_cli::run(cli, &ProcessEnv).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("switchyard: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

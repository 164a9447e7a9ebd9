//! `switchyard`: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use switchyard_cli::Cli;
use switchyard_core::config::ProcessEnv;

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = switchyard_core::config::parse_args(switchyard_cli::settings::ALL);
    let json = cli.global.json;
    match switchyard_cli::run(cli, &ProcessEnv).await {
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

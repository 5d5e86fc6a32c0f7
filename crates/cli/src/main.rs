//! `meetpool`: the service and its operator commands, in one binary.
#![forbid(unsafe_code)]

mod adopt;
mod cli;
mod events;
mod output;
mod rooms;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A `.env` file in the working directory is read first; real environment
    // variables and flags win over it.
    let _ = dotenvy::dotenv();
    let args = cli::Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

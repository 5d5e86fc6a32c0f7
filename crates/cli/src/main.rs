//! `meetpool`: the service and its operator commands, in one binary.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod config;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use meetpool_app::AppError;

fn main() -> ExitCode {
    // A `.env` file in the working directory is read first; real environment
    // variables and flags win over it.
    let _ = dotenvy::dotenv();
    let args = args::Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The service hides an unexpected failure's cause from its
            // clients; the operator running a command is told it.
            let cause = e.chain().find_map(|c| match c.downcast_ref::<AppError>() {
                Some(AppError::Internal(cause)) => Some(cause.clone()),
                _ => None,
            });
            match cause {
                Some(cause) => eprintln!("error: {e:#}: {cause}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

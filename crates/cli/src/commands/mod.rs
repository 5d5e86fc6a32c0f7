//! Each command, one file per group; `run` sends the parsed arguments to
//! the one asked for.
pub mod adopt;
pub mod bookings;
pub mod events;
pub mod links;
pub mod migrate;
pub mod payments;
pub mod platform;
pub mod rooms;
pub mod session_types;
pub mod status;

use crate::args::{Args, Command};

pub async fn run(args: Args) -> anyhow::Result<()> {
    crate::config::init_logging(args.config.log_format);
    if let Command::Adopt(adopt) = &args.command {
        return adopt::run(&args.config, adopt, args.json).await;
    }
    let app = args.config.app().await?;
    if !matches!(
        args.command,
        Command::Serve { .. } | Command::Migrate { .. }
    ) {
        app.check_migrated().await?;
    }
    let as_json = args.json;
    match args.command {
        Command::Serve { no_migrate } => crate::serve::serve(&args.config, app, no_migrate).await,
        Command::Migrate { change_settings } => migrate::run(&app, change_settings).await,
        Command::Adopt(_) => unreachable!("adopt runs without the service's store"),
        Command::Links(cmd) => links::run(&app, cmd, as_json).await,
        Command::SessionTypes(cmd) => session_types::run(&app, cmd, as_json).await,
        Command::Bookings(cmd) => bookings::run(&app, cmd, as_json).await,
        Command::Assign { booking } => bookings::assign(&app, booking, as_json).await,
        Command::Events(cmd) => events::run(&app, cmd, as_json).await,
        Command::Platform(cmd) => platform::run(&app, cmd, as_json).await,
        Command::Payments(cmd) => payments::run(&app, cmd, as_json).await,
        Command::Capacity { from, to } => status::capacity(&app, from, to, as_json).await,
        Command::Status => status::status(&app, as_json).await,
    }
}

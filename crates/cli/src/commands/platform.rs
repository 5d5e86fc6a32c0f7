//! `meetpool platform`: an adopted platform's rows seen from meetpool.
use clap::Subcommand;
use meetpool_app::views::ProblemView;
use meetpool_app::App;

use crate::output::{json, table};

#[derive(Subcommand, Debug)]
pub enum PlatformCommand {
    /// The platform's bookings meetpool could not take in (no link until
    /// fixed), with the reason and how to fix each.
    Problems,
}

pub async fn run(app: &App, cmd: PlatformCommand, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        PlatformCommand::Problems => {
            let problems: Vec<ProblemView> = app
                .platform_problems()
                .await?
                .iter()
                .map(ProblemView::from)
                .collect();
            if as_json {
                return json(&problems);
            }
            if problems.is_empty() {
                println!("no problems: meetpool holds every row of the platform's bookings");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = problems
                .iter()
                .map(|p| {
                    vec![
                        p.row_id.clone(),
                        p.order_id.clone().unwrap_or_else(|| "-".into()),
                        p.reason.to_owned(),
                        if p.without_link {
                            "paid, no link".into()
                        } else if p.paid {
                            "paid".into()
                        } else {
                            "-".into()
                        },
                        p.since.clone(),
                        p.message.clone(),
                    ]
                })
                .collect();
            table(
                &["ROW", "ORDER", "REASON", "PAYMENT", "SINCE", "FIX"],
                &rows,
            );
            Ok(())
        }
    }
}

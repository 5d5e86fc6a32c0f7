//! `meetpool payments`: reconciliation with Midtrans by hand.
use clap::Subcommand;
use meetpool_app::App;

use crate::output::{json, table};

#[derive(Subcommand, Debug)]
pub enum PaymentsCommand {
    /// Ask Midtrans' status API about every booking whose payment is
    /// pending and whose session has not started, and apply what it says
    /// as its notification would be (one reconciliation pass, now).
    Reconcile {
        /// Print what Midtrans says and what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(app: &App, cmd: PaymentsCommand, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        PaymentsCommand::Reconcile { dry_run } => {
            let checks = app.reconcile_payments(dry_run).await?;
            if as_json {
                return json(&checks);
            }
            let rows: Vec<Vec<String>> = checks
                .iter()
                .map(|c| {
                    vec![
                        c.booking_id.clone(),
                        c.order_id.clone(),
                        c.midtrans_status.clone().unwrap_or_else(|| "-".into()),
                        format!("{} -> {}", c.payment_status, c.then),
                        c.outcome.to_owned(),
                        c.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &[
                    "BOOKING", "ORDER", "MIDTRANS", "PAYMENT", "OUTCOME", "DETAIL",
                ],
                &rows,
            );
            if dry_run {
                println!("(dry run: nothing changed)");
            }
            Ok(())
        }
    }
}

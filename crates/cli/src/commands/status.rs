//! `meetpool status` and `meetpool capacity`: the pool at a glance.
use meetpool_app::views::PoolStatusView;
use meetpool_app::App;

use crate::output::{json, table};

pub async fn capacity(
    app: &App,
    from: Option<String>,
    to: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let days = app.capacity(from.as_deref(), to.as_deref()).await?;
    if as_json {
        return json(&days);
    }
    let rows: Vec<Vec<String>> = days
        .iter()
        .map(|d| {
            vec![
                d.date.clone(),
                d.peak_sessions.to_string(),
                d.enabled_links.to_string(),
                d.headroom.to_string(),
                d.unassigned.to_string(),
                if d.warning {
                    "peak reaches the pool"
                } else {
                    ""
                }
                .to_owned(),
            ]
        })
        .collect();
    table(
        &["DATE", "PEAK", "LINKS", "HEADROOM", "UNASSIGNED", "WARNING"],
        &rows,
    );
    Ok(())
}

pub async fn status(app: &App, as_json: bool) -> anyhow::Result<()> {
    let status = app.pool_status().await?;
    let view = PoolStatusView::from(&status);
    if as_json {
        return json(&view);
    }
    table(
        &["TOTAL LINKS", "AVAILABLE", "IN USE NOW", "UNASSIGNED PAID"],
        &[vec![
            view.total_links.to_string(),
            view.available_links.to_string(),
            view.in_use_now.to_string(),
            view.unassigned_paid_bookings.to_string(),
        ]],
    );
    Ok(())
}

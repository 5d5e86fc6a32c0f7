//! `meetpool serve`: the HTTP service and the background work beside it.
use std::time::Duration;

use anyhow::Context;
use meetpool_app::App;
use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use crate::args::ConfigArgs;

/// The shortest admin token `serve` accepts: one that guessing, even at
/// the rate the sign-in limit allows from countless addresses, never finds.
const ADMIN_TOKEN_MIN_CHARS: usize = 16;

pub async fn serve(config: &ConfigArgs, app: App, no_migrate: bool) -> anyhow::Result<()> {
    if let Some(token) = &config.admin_token {
        let chars = token.expose_secret().trim().chars().count();
        if chars < ADMIN_TOKEN_MIN_CHARS {
            anyhow::bail!(
                "MEETPOOL_ADMIN_TOKEN is {chars} characters long; it must be at least \
                 {ADMIN_TOKEN_MIN_CHARS}, and random. Make one with `openssl rand -hex 32`, or leave \
                 it unset and meetpool serve generates one and prints it"
            );
        }
    }
    let http = config.http_settings()?;
    app.start_database(!no_migrate).await?;
    let admin_token = match &config.admin_token {
        Some(t) => t.clone(),
        None => {
            let token = format!("mp_{}", uuid::Uuid::new_v4().simple());
            eprintln!(
                "No MEETPOOL_ADMIN_TOKEN set; generated one for this run (set MEETPOOL_ADMIN_TOKEN to keep it):\n  {token}"
            );
            SecretString::from(token)
        }
    };
    if config.midtrans_server_key.is_none() {
        warn!("MIDTRANS_SERVER_KEY is not set: the Midtrans webhook answers 503 not_configured");
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    info!(
        address = %listener.local_addr()?,
        database = app.backend().as_str(),
        allocation = app.config().policy.as_str(),
        "meetpool is listening"
    );
    let (stop_sweeper, stopped) = tokio::sync::oneshot::channel::<()>();
    let sweeper = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_sweeper(SWEEP_PERIOD, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    // On an adopted database, the platform's own writes are carried out as
    // they come.
    let (stop_sync, sync_stopped) = tokio::sync::oneshot::channel::<()>();
    let sync = if app.adopted().await? {
        info!("adopted database: carrying out the platform's own changes");
        let app = app.clone();
        Some(tokio::spawn(async move {
            app.run_platform_sync(async {
                let _ = sync_stopped.await;
            })
            .await
        }))
    } else {
        None
    };
    let (stop_rooms, rooms_stopped) = tokio::sync::oneshot::channel::<()>();
    let rooms = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_rooms(async {
                let _ = rooms_stopped.await;
            })
            .await
        })
    };
    let (stop_deliverer, deliverer_stopped) = tokio::sync::oneshot::channel::<()>();
    let deliverer = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_deliverer(async {
                let _ = deliverer_stopped.await;
            })
            .await
        })
    };
    // Payments whose notification never arrived, asked about at Midtrans.
    let (stop_reconciler, reconciler_stopped) = tokio::sync::oneshot::channel::<()>();
    if app.config().midtrans_server_key.is_some() {
        if let Some(schedule) = &app.config().midtrans_reconcile {
            info!(schedule = ?schedule, "reconciling pending payments with Midtrans' status API");
        }
    }
    let reconciler = {
        let app = app.clone();
        tokio::spawn(async move {
            app.run_reconciler(async {
                let _ = reconciler_stopped.await;
            })
            .await
        })
    };
    let router = meetpool_http::router_with(app, admin_token, &http);
    let served = meetpool_http::launch_with(listener, router, &http, shutdown_signal()).await;
    let _ = stop_sweeper.send(());
    let _ = stop_sync.send(());
    let _ = stop_deliverer.send(());
    let _ = stop_rooms.send(());
    let _ = stop_reconciler.send(());
    let _ = reconciler.await;
    let _ = sweeper.await;
    let _ = rooms.await;
    if let Some(sync) = sync {
        let _ = sync.await;
    }
    let _ = deliverer.await;
    served?;
    info!("meetpool stopped");
    Ok(())
}

/// How often waiting bookings are offered links that no request noticed.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

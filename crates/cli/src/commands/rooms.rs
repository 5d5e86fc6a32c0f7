//! Rooms at the provider: their configuration, and `meetpool links check`.
use anyhow::Context;
use meetpool_app::{
    parse_duration, parse_schedule, provider_endpoint, App, GoogleConfig, Provider, RoomsConfig,
    ZoomConfig,
};
use serde::Serialize;

use crate::args::ConfigArgs;
use crate::output::{json, table};

/// A duration, or `off`.
fn duration_or_off(name: &str, raw: &str) -> anyhow::Result<Option<std::time::Duration>> {
    if raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(raw)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{name}: {e}, or off"))
}

/// What the flags and environment say about rooms at their providers: a
/// provider is configured when all its credentials are given, and refused
/// when only some are.
pub fn config(args: &ConfigArgs) -> anyhow::Result<RoomsConfig> {
    let google = match (
        &args.google_client_id,
        &args.google_client_secret,
        &args.google_refresh_token,
    ) {
        (None, None, None) => None,
        (Some(id), Some(secret), Some(refresh)) => Some(GoogleConfig {
            client_id: id.clone(),
            client_secret: secret.clone(),
            refresh_token: refresh.clone(),
            token_url: provider_endpoint("MEETPOOL_GOOGLE_TOKEN_URL", &args.google_token_url)
                .map_err(anyhow::Error::msg)?,
            api: provider_endpoint("MEETPOOL_GOOGLE_MEET_API", &args.google_meet_api)
                .map_err(anyhow::Error::msg)?,
        }),
        _ => anyhow::bail!(
            "Google Meet needs MEETPOOL_GOOGLE_CLIENT_ID, MEETPOOL_GOOGLE_CLIENT_SECRET and \
             MEETPOOL_GOOGLE_REFRESH_TOKEN together; some are missing"
        ),
    };
    let zoom = match (
        &args.zoom_account_id,
        &args.zoom_client_id,
        &args.zoom_client_secret,
    ) {
        (None, None, None) => None,
        (Some(account), Some(id), Some(secret)) => Some(ZoomConfig {
            account_id: account.clone(),
            client_id: id.clone(),
            client_secret: secret.clone(),
            token_url: provider_endpoint("MEETPOOL_ZOOM_TOKEN_URL", &args.zoom_token_url)
                .map_err(anyhow::Error::msg)?,
            api: provider_endpoint("MEETPOOL_ZOOM_API", &args.zoom_api)
                .map_err(anyhow::Error::msg)?,
        }),
        _ => anyhow::bail!(
            "Zoom needs MEETPOOL_ZOOM_ACCOUNT_ID, MEETPOOL_ZOOM_CLIENT_ID and \
             MEETPOOL_ZOOM_CLIENT_SECRET together; some are missing"
        ),
    };
    let rooms = RoomsConfig {
        google,
        zoom,
        end_grace: duration_or_off("MEETPOOL_ROOM_END_GRACE", &args.room_end_grace)?,
        attendance_after: duration_or_off("MEETPOOL_ROOM_ATTENDANCE", &args.room_attendance)?,
        check_every: duration_or_off("MEETPOOL_ROOM_CHECK", &args.room_check)?,
        grow_max: args.pool_grow_max,
        grow_provider: args
            .pool_grow_provider
            .as_deref()
            .map(str::parse::<Provider>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("MEETPOOL_POOL_GROW_PROVIDER: {e}"))?,
        retry: parse_schedule(&args.rooms_retry)
            .map_err(|e| anyhow::anyhow!("MEETPOOL_ROOMS_RETRY: {e}"))?,
        ..RoomsConfig::default()
    };
    if let Some(p) = rooms.grow_provider {
        if !rooms.has(p) {
            anyhow::bail!(
                "MEETPOOL_POOL_GROW_PROVIDER is {} but {} is not configured",
                p.as_str(),
                p.title()
            );
        }
    }
    Ok(rooms)
}

#[derive(Serialize)]
struct CheckView {
    link_id: String,
    meeting_link: String,
    provider: &'static str,
    is_available: bool,
    checked_at: Option<String>,
    outcome: Option<String>,
}

/// `meetpool links check`.
pub async fn check(app: &App, as_json: bool) -> anyhow::Result<()> {
    let checks = app.check_rooms().await.context("cannot check the rooms")?;
    let views: Vec<CheckView> = checks
        .into_iter()
        .map(|c| CheckView {
            link_id: c.link.id.to_string(),
            meeting_link: c.link.meeting_link,
            provider: c.provider.as_str(),
            is_available: c.link.is_available,
            checked_at: c.last.as_ref().map(|(at, _)| at.to_string()),
            outcome: c.last.map(|(_, outcome)| outcome),
        })
        .collect();
    if as_json {
        return json(&views);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.link_id.clone(),
                v.meeting_link.clone(),
                v.provider.to_owned(),
                if v.is_available {
                    "enabled"
                } else {
                    "disabled"
                }
                .to_owned(),
                v.checked_at.clone().unwrap_or_else(|| "-".into()),
                v.outcome.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &["ID", "LINK", "PROVIDER", "STATE", "CHECKED", "FOUND"],
        &rows,
    );
    Ok(())
}

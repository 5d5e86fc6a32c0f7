//! `meetpool links`: the pool of meeting links.
use anyhow::{bail, Context};
use meetpool_app::views::LinkView;
use meetpool_app::{App, LinkInput};
use meetpool_domain::LinkId;
use meetpool_store::Link;

use crate::args::LinksCommand;
use crate::output::{json, table};

/// A link by its id, by its URL as stored, or else by its room (any
/// spelling of it) when exactly one link has that room.
async fn find_link(app: &App, key: &str) -> anyhow::Result<Link> {
    let links = app.links().await?;
    let id: Option<LinkId> = key.parse().ok();
    if let Some(found) = links
        .iter()
        .find(|l| Some(l.id) == id || l.meeting_link == key)
    {
        return Ok(found.clone());
    }
    // The room the database holds unique (a Zoom link with or without its
    // passcode, say), read from the links as stored.
    let wanted = meetpool_domain::MeetingUrl::parse(key)
        .with_context(|| format!("no link {key} in the pool"))?
        .room();
    let mut same_room = links
        .iter()
        .filter(|l| meetpool_domain::room::room_of(&l.meeting_link) == wanted);
    match (same_room.next(), same_room.next()) {
        (Some(only), None) => Ok(only.clone()),
        (Some(_), Some(_)) => bail!("several links are the room {wanted}: name one by its id"),
        (None, _) => bail!("no link {key} in the pool"),
    }
}

pub async fn run(app: &App, cmd: LinksCommand, as_json: bool) -> anyhow::Result<()> {
    let changed = match cmd {
        LinksCommand::Add { url, notes } => {
            app.add_link(LinkInput {
                meeting_link: Some(url),
                notes: Some(notes),
                is_available: Some(true),
            })
            .await?
        }
        LinksCommand::Disable { link } => {
            let id = find_link(app, &link).await?.id;
            app.update_link(
                id,
                LinkInput {
                    is_available: Some(false),
                    ..Default::default()
                },
            )
            .await?
        }
        LinksCommand::Enable { link } => {
            let id = find_link(app, &link).await?.id;
            app.update_link(
                id,
                LinkInput {
                    is_available: Some(true),
                    ..Default::default()
                },
            )
            .await?
        }
        LinksCommand::Check => return super::rooms::check(app, as_json).await,
        LinksCommand::List => {
            let links = app.links().await?;
            let views: Vec<LinkView> = links.iter().map(Into::into).collect();
            if as_json {
                return json(&views);
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|l| {
                    vec![
                        l.id.clone(),
                        l.meeting_link.clone(),
                        if l.is_available {
                            "enabled"
                        } else {
                            "disabled"
                        }
                        .to_owned(),
                        l.notes.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(&["ID", "LINK", "STATE", "NOTES"], &rows);
            return Ok(());
        }
    };
    if as_json {
        return json(&LinkView::from(&changed));
    }
    println!(
        "{} {} ({})",
        changed.id,
        changed.meeting_link,
        if changed.is_available {
            "enabled"
        } else {
            "disabled"
        }
    );
    Ok(())
}

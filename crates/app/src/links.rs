//! The link pool: adding, changing, disabling and deleting links.
use jiff::Timestamp;
use meetpool_domain::values::{optional_text, NOTES_MAX};
use meetpool_domain::{EventKind, LinkId, MeetingUrl};
use meetpool_store::{
    BookingChange, Link, LinkChange, LinkPatch, Migrated, NewEvent, NewLink, StoreError,
};
use tracing::{info, instrument, warn};

use crate::allocate::OnExhausted;
use crate::bookings::not_found;
use crate::work::Work;
use crate::{App, AppError, Result};

#[derive(Clone, Debug, Default)]
pub struct LinkInput {
    pub meeting_link: Option<String>,
    /// `Some(None)`: clear the notes.
    pub notes: Option<Option<String>>,
    pub is_available: Option<bool>,
}

fn parse_url(raw: &str) -> Result<MeetingUrl> {
    MeetingUrl::parse(raw).map_err(|e| AppError::invalid("invalid_meeting_link", e))
}

fn parse_notes(raw: Option<&str>) -> Result<Option<String>> {
    optional_text("notes", raw, NOTES_MAX, true).map_err(|e| AppError::invalid("invalid_notes", e))
}

/// A uniqueness refusal on a link: its URL, or its room under another
/// spelling (migration 0004), is already in the pool.
fn duplicate(url: Option<&MeetingUrl>) -> impl Fn(StoreError) -> AppError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => AppError::conflict(
            "duplicate_link",
            match url {
                Some(url) => format!("{url} is already in the pool (perhaps spelled another way)"),
                None => "this link's meeting room is already in the pool as another enabled link"
                    .to_owned(),
            },
        ),
        other => other.into(),
    }
}

impl App {
    pub async fn links(&self) -> Result<Vec<Link>> {
        Ok(self.store().links().await?)
    }

    pub async fn link(&self, id: LinkId) -> Result<Link> {
        self.store()
            .link(id)
            .await
            .map_err(not_found("meeting link"))
    }

    #[instrument(skip_all)]
    pub async fn add_link(&self, input: LinkInput) -> Result<Link> {
        let raw = input
            .meeting_link
            .as_deref()
            .ok_or_else(|| AppError::invalid("invalid_meeting_link", "meeting_link is required"))?;
        let new = NewLink {
            id: LinkId::new(),
            meeting_link: parse_url(raw)?,
            notes: parse_notes(input.notes.clone().flatten().as_deref())?,
            is_available: input.is_available.unwrap_or(true),
        };
        let link = self
            .retrying(|| async {
                let mut work = self.begin().await?;
                let link = work
                    .tx
                    .insert_link(&new)
                    .await
                    .map_err(duplicate(Some(&new.meeting_link)))?;
                work.commit().await?;
                Ok(link)
            })
            .await?;
        info!(link_id = %link.id, "meeting link added to the pool");
        if link.is_available {
            self.backfill_after_capacity().await;
        }
        Ok(link)
    }

    /// Changes a link. Disabling it moves its sessions that have not started
    /// to other links (or to the unassigned queue); enabling it offers it to
    /// the bookings waiting for a link.
    #[instrument(skip(self, input), fields(link_id = %id))]
    pub async fn update_link(&self, id: LinkId, input: LinkInput) -> Result<Link> {
        let patch = LinkPatch {
            meeting_link: input.meeting_link.as_deref().map(parse_url).transpose()?,
            notes: input
                .notes
                .as_ref()
                .map(|n| parse_notes(n.as_deref()))
                .transpose()?,
            is_available: input.is_available,
        };
        let (before, after) = self
            .retrying(|| async {
                let mut work = self.begin().await?;
                let before = self
                    .store()
                    .link(id)
                    .await
                    .map_err(not_found("meeting link"))?;
                let after = work
                    .tx
                    .update_link(id, &patch)
                    .await
                    .map_err(duplicate(patch.meeting_link.as_ref()))?;
                if before.is_available && !after.is_available {
                    self.move_sessions_off(&mut work, id, "link disabled")
                        .await?;
                }
                work.commit().await?;
                Ok((before, after))
            })
            .await?;
        if !before.is_available && after.is_available {
            self.backfill_after_capacity().await;
        }
        Ok(after)
    }

    #[instrument(skip(self), fields(link_id = %id))]
    pub async fn delete_link(&self, id: LinkId) -> Result<()> {
        self.retrying(|| async {
            let mut work = self.begin().await?;
            work.tx.delete_link(id).await.map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound("meeting link"),
                StoreError::Conflict(_) => AppError::conflict(
                    "link_in_use",
                    "bookings reference this link: disable it instead (its coming sessions move to other links)",
                ),
                other => other.into(),
            })?;
            work.commit().await?;
            Ok(())
        })
        .await?;
        info!(link_id = %id, "meeting link deleted");
        Ok(())
    }

    /// Moves the coming sessions of a disabled link (`reason`, on their
    /// trail) to other links, or into the unassigned queue, inside `work`.
    async fn move_sessions_off(&self, work: &mut Work, id: LinkId, reason: &str) -> Result<usize> {
        let moving = work.tx.bookings_on_link_from(id, Timestamp::now()).await?;
        for booking in &moving {
            // Off the disabled link and onto another in one write, or into
            // the unassigned queue.
            let change = BookingChange {
                link: LinkChange::Clear,
                events: vec![NewEvent::new(
                    EventKind::Released,
                    Some(id),
                    serde_json::json!({ "reason": reason }),
                )],
                ..BookingChange::default()
            };
            self.give_link(work, booking, OnExhausted::Alert, change)
                .await?;
        }
        if !moving.is_empty() {
            warn!(link_id = %id, moved = moving.len(), reason, "link disabled: its coming sessions were moved");
        }
        Ok(moving.len())
    }

    /// Moves the coming sessions off the links a migration disabled for not
    /// being safe links (see [`meetpool_store::Migrated`]), as disabling
    /// them by hand would, in one unit of work per link.
    pub(crate) async fn move_off_unsafe_links(&self, migrated: &Migrated) -> Result<()> {
        for link in &migrated.disabled_unsafe {
            warn!(
                link_id = %link.link_id,
                meeting_link = ?link.meeting_link,
                "a pool link that is not an https:// URL naming a host was disabled by the migration"
            );
            self.retrying(|| async {
                let mut work = self.begin().await?;
                self.move_sessions_off(&mut work, link.link_id, "link is not a safe https:// link")
                    .await?;
                work.commit().await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// New capacity goes to the waiting bookings at once. A failure here is
    /// logged, not returned: the change that made the capacity is committed,
    /// and the periodic sweep tries again.
    async fn backfill_after_capacity(&self) {
        match self.backfill_all().await {
            Ok(0) => {}
            Ok(n) => info!(assigned = n, "waiting bookings got links from new capacity"),
            Err(e) => {
                warn!(error = %e, "backfill after new capacity failed; the periodic sweep will retry")
            }
        }
    }
}

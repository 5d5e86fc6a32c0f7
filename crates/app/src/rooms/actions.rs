//! What each provider action does: end a session's conference, check a
//! room, create one, read a session's attendance; and what a finished
//! action leaves on the booking's trail.
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::{EventKind, LinkId};
use meetpool_store::{ActionKind, Link, NewAction, NewEvent, ProviderAction};
use serde_json::json;
use tracing::{info, warn};

use super::oauth::CallError;
use super::queue::Failure;
use super::{room_of, Created, Ended, Provider};
use crate::metrics::Alert;
use crate::{App, AppError, LinkInput, Result};

impl App {
    pub(super) async fn record_on_booking(
        &self,
        booking: meetpool_domain::BookingId,
        link: Option<LinkId>,
        detail: serde_json::Value,
    ) -> Result<()> {
        self.record_event_on(booking, EventKind::ProviderAction, link, detail)
            .await
    }

    pub(super) async fn record_event_on(
        &self,
        booking: meetpool_domain::BookingId,
        kind: EventKind,
        link: Option<LinkId>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut work = self.begin().await?;
        work.tx
            .record_event(booking, &NewEvent::new(kind, link, detail))
            .await?;
        work.commit().await
    }

    /// Once a Meet session's end was dealt with (its conference ended, or
    /// none was under way, or the next session had begun), its attendance
    /// is read a little later, when Meet has its conference record.
    pub(super) async fn after_end(&self, action: &ProviderAction, outcome: &str) {
        let Some(after) = self.config().rooms.attendance_after else {
            return;
        };
        let read = action.kind == ActionKind::End
            && action.provider == Provider::GoogleMeet.as_str()
            && matches!(outcome, "ended" | "no_conference" | "next_session_began");
        let Some(booking) = action.booking_id.filter(|_| read) else {
            return;
        };
        let queued = self
            .store()
            .provider_actions()
            .enqueue(&NewAction {
                kind: ActionKind::Attendance,
                provider: action.provider.clone(),
                link: action.link_id,
                booking: Some(booking),
                dedup_key: format!("attendance:{booking}"),
                due_at: Timestamp::now()
                    + SignedDuration::try_from(after).unwrap_or(SignedDuration::MAX),
            })
            .await;
        if let Err(e) = queued {
            warn!(booking_id = %booking, error = %e, "cannot queue the reading of a session's attendance");
        }
    }

    /// Reads who attended the session from its conference record and puts
    /// it on the booking (an `attendance` event, told to the platform as
    /// `booking.attendance`).
    pub(super) async fn read_attendance(
        &self,
        provider: Provider,
        action: &ProviderAction,
    ) -> Result<(&'static str, Option<LinkId>), Failure> {
        let Some((link, room)) = self.room(provider, action).await? else {
            return Ok(("not_at_provider", None));
        };
        let Some(booking) = action.booking_id else {
            return Ok(("not_at_provider", None));
        };
        let booking = self.booking(booking).await?;
        // The session's time, from when its join URL opens to its end.
        let opens = SignedDuration::from_mins(i64::from(self.config().join_opens_minutes));
        let (from, to) = (booking.window.start - opens, booking.window.end);
        let Some(attendance) = self
            .meet()?
            .attendance(&self.rooms.http, &room, from, to)
            .await?
        else {
            return Ok(("gone", None));
        };
        let mut detail = attendance.to_json();
        detail["provider"] = json!(provider.as_str());
        self.record_event_on(booking.id, EventKind::Attendance, Some(link.id), detail)
            .await?;
        info!(booking_id = %booking.id, participants = attendance.participants, minutes = attendance.minutes, "the session's attendance was read");
        Ok((
            if attendance.participants > 0 {
                "attended"
            } else {
                "no_show"
            },
            None,
        ))
    }

    /// The link an action is about, and its room at `provider`.
    pub(super) async fn room(
        &self,
        provider: Provider,
        action: &ProviderAction,
    ) -> Result<Option<(Link, String)>, Failure> {
        let Some(id) = action.link_id else {
            return Ok(None);
        };
        let link = match self.store().link(id).await {
            Ok(link) => link,
            Err(meetpool_store::StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(AppError::from(e).into()),
        };
        Ok(room_of(&link.meeting_link)
            .filter(|(p, _)| *p == provider)
            .map(|(_, room)| (link, room)))
    }

    /// Ends the conference a session left in its room, unless the next
    /// session there has begun.
    pub(super) async fn end_conference(
        &self,
        provider: Provider,
        action: &ProviderAction,
    ) -> Result<(&'static str, Option<LinkId>), Failure> {
        let Some((link, room)) = self.room(provider, action).await? else {
            return Ok(("not_at_provider", None));
        };
        let Some(booking) = action.booking_id else {
            return Ok(("not_at_provider", None));
        };
        let booking = self.booking(booking).await?;
        let began = self
            .store()
            .provider_actions()
            .next_session_began(link.id, booking.id, booking.window.start, Timestamp::now())
            .await
            .map_err(AppError::from)?;
        if began {
            info!(booking_id = %booking.id, link_id = %link.id, "the next session on the room has begun: its conference is left on");
            return Ok(("next_session_began", None));
        }
        let ended = match provider {
            Provider::GoogleMeet => self.meet()?.end(&self.rooms.http, &room).await?,
            Provider::Zoom => self.zoom()?.end(&self.rooms.http, &room).await?,
        };
        Ok(match ended {
            Ended::Now => {
                info!(booking_id = %booking.id, link_id = %link.id, provider = provider.as_str(), "the session's conference was ended");
                ("ended", None)
            }
            Ended::NoConference => ("no_conference", None),
            Ended::Gone => ("gone", None),
        })
    }

    /// Checks that the provider still knows the room; disables the link
    /// when it does not, which moves its coming sessions.
    pub(super) async fn check_room(
        &self,
        provider: Provider,
        action: &ProviderAction,
    ) -> Result<(&'static str, Option<LinkId>), Failure> {
        let Some((link, room)) = self.room(provider, action).await? else {
            return Ok(("not_at_provider", None));
        };
        if !link.is_available {
            return Ok(("disabled", None));
        }
        let exists = match provider {
            Provider::GoogleMeet => self.meet()?.exists(&self.rooms.http, &room).await?,
            Provider::Zoom => self.zoom()?.exists(&self.rooms.http, &room).await?,
        };
        if exists {
            return Ok(("exists", None));
        }
        self.update_link(
            link.id,
            LinkInput {
                is_available: Some(false),
                ..LinkInput::default()
            },
        )
        .await?;
        self.counters.alert(Alert::RoomGone);
        warn!(
            link_id = %link.id, provider = provider.as_str(), alert = Alert::RoomGone.as_str(),
            "the provider no longer knows this room: the link was disabled and its coming sessions moved"
        );
        Ok(("gone", None))
    }

    /// Creates a room and adds it to the pool, which gives it to waiting
    /// bookings at once. A room created whose adding failed is added by
    /// the next attempt, not created again.
    pub(super) async fn create_room(
        &self,
        provider: Provider,
        action: &ProviderAction,
    ) -> Result<(&'static str, Option<LinkId>), Failure> {
        let created = match (
            action.detail["meeting_link"].as_str(),
            action.detail["reference"].as_str(),
        ) {
            (Some(link), Some(reference)) => Created {
                meeting_link: link.to_owned(),
                reference: reference.to_owned(),
            },
            _ => match provider {
                Provider::GoogleMeet => self.meet()?.create(&self.rooms.http).await?,
                Provider::Zoom => self.zoom()?.create(&self.rooms.http).await?,
            },
        };
        let notes = format!(
            "Created by meetpool at {} ({}) when the pool ran out",
            provider.title(),
            created.reference
        );
        match self
            .add_link(LinkInput {
                meeting_link: Some(created.meeting_link.clone()),
                notes: Some(Some(notes)),
                is_available: Some(true),
            })
            .await
        {
            Ok(link) => {
                info!(link_id = %link.id, provider = provider.as_str(), reference = %created.reference, "a room was created and added to the pool");
                Ok(("created", Some(link.id)))
            }
            Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => Err(Failure {
                error: CallError::Refused(format!(
                    "the room created ({}) cannot join the pool: {e}",
                    created.meeting_link
                )),
                detail: None,
            }),
            Err(e) => Err(Failure {
                error: CallError::Later {
                    error: format!("the room created cannot be added to the pool yet: {e}"),
                    after: None,
                },
                detail: Some(json!({
                    "meeting_link": created.meeting_link,
                    "reference": created.reference,
                })),
            }),
        }
    }

    pub(super) fn meet(&self) -> Result<&super::meet::Meet, Failure> {
        self.rooms
            .meet
            .as_ref()
            .ok_or_else(|| CallError::Refused("Google Meet is not configured".to_owned()).into())
    }

    pub(super) fn zoom(&self) -> Result<&super::zoom::Zoom, Failure> {
        self.rooms
            .zoom
            .as_ref()
            .ok_or_else(|| CallError::Refused("Zoom is not configured".to_owned()).into())
    }
}

//! Google Meet through the Meet REST API v2
//! (`https://developers.google.com/workspace/meet/api/reference/rest`).
//!
//! A pooled link holds a meeting code; `spaces.get` resolves it
//! (`GET /v2/spaces/{meetingCode}`) to the space's resource name, which
//! `spaces.endActiveConference` needs (`POST /v2/spaces/{space}:endActiveConference`).
//! `spaces.create` (`POST /v2/spaces`) makes a room. Errors come as
//! `{"error": {"code", "message", "status"}}`.
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use super::oauth::{unexpected, Answer, CallError, Grant, OAuth};
use super::{Attendance, Created, Ended, GoogleConfig};

pub(crate) struct Meet {
    api: url::Url,
    oauth: OAuth,
}

/// The parts of a `Space` meetpool reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Space {
    name: String,
    #[serde(default)]
    meeting_uri: Option<String>,
    #[serde(default)]
    active_conference: Option<serde_json::Value>,
}

/// Google's error shape, in words.
fn words(answer: &Answer) -> String {
    let e = &answer.body["error"];
    match (e["status"].as_str(), e["message"].as_str()) {
        (Some(status), Some(message)) => format!(" {status}: {message}"),
        (None, Some(message)) | (Some(message), None) => format!(": {message}"),
        (None, None) => String::new(),
    }
}

impl Meet {
    pub(crate) fn new(config: &GoogleConfig) -> Self {
        Self {
            api: config.api.clone(),
            oauth: OAuth::new(
                config.token_url.clone(),
                Grant::RefreshToken {
                    client_id: config.client_id.clone(),
                    client_secret: config.client_secret.clone(),
                    refresh_token: config.refresh_token.clone(),
                },
            ),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_str().trim_end_matches('/'))
    }

    /// `spaces.get` on a meeting code: `None` when Meet knows no such room.
    async fn space(&self, http: &reqwest::Client, code: &str) -> Result<Option<Space>, CallError> {
        let url = self.url(&format!("/v2/spaces/{code}"));
        let answer = self.oauth.call(http, |h| h.get(&url)).await?;
        match answer.status.as_u16() {
            200 => serde_json::from_value(answer.body)
                .map(Some)
                .map_err(|e| CallError::Later {
                    error: format!("spaces.get answered a space without a name: {e}"),
                    after: None,
                }),
            // Only Google's own word that the space is unknown: a 404 from
            // anything else (a wrong MEETPOOL_GOOGLE_MEET_API) must never
            // pass for a gone room, which would be disabled.
            404 if answer.body["error"]["status"] == "NOT_FOUND" => Ok(None),
            _ => Err(unexpected(&answer, words(&answer))),
        }
    }

    /// Whether Meet still knows the room.
    pub(crate) async fn exists(
        &self,
        http: &reqwest::Client,
        code: &str,
    ) -> Result<bool, CallError> {
        Ok(self.space(http, code).await?.is_some())
    }

    /// Ends the room's conference, if one is under way.
    pub(crate) async fn end(&self, http: &reqwest::Client, code: &str) -> Result<Ended, CallError> {
        let Some(space) = self.space(http, code).await? else {
            return Ok(Ended::Gone);
        };
        if space.active_conference.is_none() {
            return Ok(Ended::NoConference);
        }
        let url = self.url(&format!("/v2/{}:endActiveConference", space.name));
        let answer = self
            .oauth
            .call(http, |h| h.post(&url).json(&json!({})))
            .await?;
        match answer.status.as_u16() {
            200 => Ok(Ended::Now),
            // The conference ended in the meantime.
            400 if answer.body["error"]["status"] == "FAILED_PRECONDITION" => {
                Ok(Ended::NoConference)
            }
            404 if answer.body["error"]["status"] == "NOT_FOUND" => Ok(Ended::Gone),
            _ => Err(unexpected(&answer, words(&answer))),
        }
    }

    /// Who attended the room between `from` and `to`: every participant of
    /// its conference records (`conferenceRecords.list` by the space's
    /// name, `conferenceRecords.participants.list`) counted from their
    /// first join to their last leave, clipped to the window. `None` when
    /// Meet no longer knows the room.
    pub(crate) async fn attendance(
        &self,
        http: &reqwest::Client,
        code: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Attendance>, CallError> {
        let Some(space) = self.space(http, code).await? else {
            return Ok(None);
        };
        // A conference that began up to a day before the window may still
        // be under way in it (left on for a session that followed).
        let filter = format!(
            r#"space.name = "{}" AND start_time>="{}" AND start_time<="{}""#,
            space.name,
            (from - SignedDuration::from_hours(24)).strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
            to.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        );
        let records = self
            .pages(http, "/v2/conferenceRecords", &filter, "conferenceRecords")
            .await?;
        let mut spans = Vec::new();
        let mut names = Vec::new();
        for record in records {
            let Some(name) = record["name"].as_str() else {
                continue;
            };
            let ended = record["endTime"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok());
            if ended.is_some_and(|e| e <= from) {
                continue;
            }
            names.push(name.to_owned());
            let path = format!("/v2/{name}/participants");
            for p in self.pages(http, &path, "", "participants").await? {
                let joined = p["earliestStartTime"]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok());
                let left = p["latestEndTime"]
                    .as_str()
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .unwrap_or(to);
                if let Some(joined) = joined {
                    let (a, b) = (joined.max(from), left.min(to));
                    if a < b {
                        spans.push((a, b));
                    }
                }
            }
        }
        Ok(Some(Attendance::from_spans(spans, names)))
    }

    /// Every item of a paginated list (`pageToken`, `nextPageToken`), up to
    /// ten pages.
    async fn pages(
        &self,
        http: &reqwest::Client,
        path: &str,
        filter: &str,
        items: &str,
    ) -> Result<Vec<serde_json::Value>, CallError> {
        let url = self.url(path);
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let answer = self
                .oauth
                .call(http, |h| {
                    let mut q: Vec<(&str, &str)> = vec![("pageSize", "100")];
                    if !filter.is_empty() {
                        q.push(("filter", filter));
                    }
                    if let Some(t) = &token {
                        q.push(("pageToken", t));
                    }
                    h.get(&url).query(&q)
                })
                .await?;
            if answer.status.as_u16() != 200 {
                return Err(unexpected(&answer, words(&answer)));
            }
            if let Some(list) = answer.body[items].as_array() {
                all.extend(list.iter().cloned());
            }
            match answer.body["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(all)
    }

    /// `spaces.create`: a room anyone with its link may join (`OPEN`), as
    /// a pool's participants come from outside the owner's organisation.
    pub(crate) async fn create(&self, http: &reqwest::Client) -> Result<Created, CallError> {
        let url = self.url("/v2/spaces");
        let answer = self
            .oauth
            .call(http, |h| {
                h.post(&url)
                    .json(&json!({ "config": { "accessType": "OPEN" } }))
            })
            .await?;
        if answer.status.as_u16() != 200 {
            return Err(unexpected(&answer, words(&answer)));
        }
        let space: Space = serde_json::from_value(answer.body).map_err(|e| CallError::Later {
            error: format!("spaces.create answered without a space: {e}"),
            after: None,
        })?;
        let meeting_link = space.meeting_uri.ok_or_else(|| CallError::Later {
            error: "spaces.create answered a space without its meetingUri".to_owned(),
            after: None,
        })?;
        Ok(Created {
            meeting_link,
            reference: space.name,
        })
    }
}

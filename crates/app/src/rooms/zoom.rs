//! Zoom through its REST API (`https://developers.zoom.us/docs/api/`) with a
//! Server-to-Server OAuth app's token.
//!
//! The meeting number in a pooled link is the room: `GET
//! /v2/meetings/{meetingId}` checks it (404, code 3001, when it is gone),
//! `PUT /v2/meetings/{meetingId}/status` with `{"action": "end"}` ends it
//! (204), and `POST /v2/users/me/meetings` makes a recurring meeting with
//! no fixed time (type 3), which can be joined again and again. Errors come
//! as `{"code", "message"}`.
use serde_json::json;

use super::oauth::{unexpected, Answer, CallError, Grant, OAuth};
use super::{Created, Ended, ZoomConfig};

pub(crate) struct Zoom {
    api: url::Url,
    oauth: OAuth,
}

fn words(answer: &Answer) -> String {
    match (
        answer.body["code"].as_i64(),
        answer.body["message"].as_str(),
    ) {
        (Some(code), Some(message)) => format!(" code {code}: {message}"),
        (None, Some(message)) => format!(": {message}"),
        (Some(code), None) => format!(" code {code}"),
        (None, None) => String::new(),
    }
}

impl Zoom {
    pub(crate) fn new(config: &ZoomConfig) -> Self {
        Self {
            api: config.api.clone(),
            oauth: OAuth::new(
                config.token_url.clone(),
                Grant::AccountCredentials {
                    account_id: config.account_id.clone(),
                    client_id: config.client_id.clone(),
                    client_secret: config.client_secret.clone(),
                },
            ),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_str().trim_end_matches('/'))
    }

    pub(crate) async fn exists(&self, http: &reqwest::Client, id: &str) -> Result<bool, CallError> {
        let url = self.url(&format!("/v2/meetings/{id}"));
        let answer = self.oauth.call(http, |h| h.get(&url)).await?;
        match answer.status.as_u16() {
            200 => Ok(true),
            // Only Zoom's own word that the meeting does not exist (code
            // 3001): a 404 from anything else (a wrong MEETPOOL_ZOOM_API)
            // must never pass for a gone room, which would be disabled.
            404 if answer.body["code"] == 3001 => Ok(false),
            _ => Err(unexpected(&answer, words(&answer))),
        }
    }

    pub(crate) async fn end(&self, http: &reqwest::Client, id: &str) -> Result<Ended, CallError> {
        let url = self.url(&format!("/v2/meetings/{id}/status"));
        let answer = self
            .oauth
            .call(http, |h| h.put(&url).json(&json!({ "action": "end" })))
            .await?;
        match answer.status.as_u16() {
            200 | 204 => Ok(Ended::Now),
            404 if answer.body["code"] == 3001 => Ok(Ended::Gone),
            _ => Err(unexpected(&answer, words(&answer))),
        }
    }

    pub(crate) async fn create(&self, http: &reqwest::Client) -> Result<Created, CallError> {
        let url = self.url("/v2/users/me/meetings");
        let body = json!({
            "topic": "meetpool room",
            "type": 3,
            // Participants meet without the account's owner.
            "settings": { "join_before_host": true, "waiting_room": false },
        });
        let answer = self.oauth.call(http, |h| h.post(&url).json(&body)).await?;
        if !matches!(answer.status.as_u16(), 200 | 201) {
            return Err(unexpected(&answer, words(&answer)));
        }
        let (Some(id), Some(join_url)) =
            (answer.body["id"].as_i64(), answer.body["join_url"].as_str())
        else {
            return Err(CallError::Later {
                error: "the meeting was answered without its id or join_url".to_owned(),
                after: None,
            });
        };
        Ok(Created {
            meeting_link: join_url.to_owned(),
            reference: format!("meeting {id}"),
        })
    }
}

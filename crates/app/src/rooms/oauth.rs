//! Access tokens and calls: a provider's token is fetched when first
//! needed, kept until shortly before it expires, and fetched again once
//! when an answer 401 says it no longer holds. Tokens and secrets never
//! reach a log or an error message.
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How a call to a provider failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// It may pass (the provider down, slow, rate-limiting, or a token
    /// refused): try again, not before `after` when the provider said.
    Later {
        error: String,
        after: Option<Duration>,
    },
    /// The provider refused what was asked: another attempt would be
    /// refused too.
    Refused(String),
}

/// How an access token is obtained.
pub(crate) enum Grant {
    /// Google: a refresh token of the rooms' owner.
    RefreshToken {
        client_id: String,
        client_secret: SecretString,
        refresh_token: SecretString,
    },
    /// Zoom: a Server-to-Server OAuth app's account credentials.
    AccountCredentials {
        account_id: String,
        client_id: String,
        client_secret: SecretString,
    },
}

pub(crate) struct OAuth {
    token_url: url::Url,
    grant: Grant,
    cached: Mutex<Option<(SecretString, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An answer read whole.
pub(crate) struct Answer {
    pub status: StatusCode,
    /// The body as JSON (`null` when it is not).
    pub body: serde_json::Value,
    /// The wait a 429 or 503 asked for (`Retry-After`, in seconds).
    pub retry_after: Option<Duration>,
}

impl OAuth {
    pub(crate) fn new(token_url: url::Url, grant: Grant) -> Self {
        Self {
            token_url,
            grant,
            cached: Mutex::new(None),
        }
    }

    /// A token to use: the kept one unless it expires within a minute or
    /// is `refused`, in which case a new one.
    async fn token(
        &self,
        http: &reqwest::Client,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, CallError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref() {
            let is_refused = refused.is_some_and(|r| r.expose_secret() == token.expose_secret());
            if !is_refused && *expires > Instant::now() + Duration::from_secs(60) {
                return Ok(token.clone());
            }
        }
        let request = match &self.grant {
            Grant::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => http.post(self.token_url.clone()).form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.expose_secret()),
                ("refresh_token", refresh_token.expose_secret()),
            ]),
            Grant::AccountCredentials {
                account_id,
                client_id,
                client_secret,
            } => http
                .post(self.token_url.clone())
                .basic_auth(client_id, Some(client_secret.expose_secret()))
                .form(&[
                    ("grant_type", "account_credentials"),
                    ("account_id", account_id.as_str()),
                ]),
        };
        let answer = send(request).await?;
        if !answer.status.is_success() {
            // Both providers answer `{"error": "...", "error_description"
            // or "reason": "..."}`: words about the grant, never the secret.
            let what = ["error", "error_description", "reason"]
                .iter()
                .filter_map(|k| answer.body.get(k).and_then(|v| v.as_str()))
                .collect::<Vec<_>>()
                .join(": ");
            return Err(CallError::Later {
                error: format!(
                    "the token endpoint answered HTTP {}{}{what}",
                    answer.status.as_u16(),
                    if what.is_empty() { "" } else { ": " }
                ),
                after: answer.retry_after,
            });
        }
        let token: TokenAnswer =
            serde_json::from_value(answer.body).map_err(|e| CallError::Later {
                error: format!("the token endpoint answered without an access token: {e}"),
                after: None,
            })?;
        let token_secret = SecretString::from(token.access_token);
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        *cached = Some((token_secret.clone(), Instant::now() + lifetime));
        Ok(token_secret)
    }

    /// Sends the request `build` makes with a bearer token; on 401, once
    /// more with a new token.
    pub(crate) async fn call(
        &self,
        http: &reqwest::Client,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, CallError> {
        let token = self.token(http, None).await?;
        let answer = send(build(http).bearer_auth(token.expose_secret())).await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let token = self.token(http, Some(&token)).await?;
        send(build(http).bearer_auth(token.expose_secret())).await
    }
}

async fn send(request: RequestBuilder) -> Result<Answer, CallError> {
    let res = request.send().await.map_err(|e| CallError::Later {
        error: failure(&e),
        after: None,
    })?;
    let status = res.status();
    let after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = res.bytes().await.map_err(|e| CallError::Later {
        error: failure(&e),
        after: None,
    })?;
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok(Answer {
        status,
        body,
        retry_after: after,
    })
}

/// An answer that is not what was asked for, as an error: rate limits and
/// the provider's own failures pass, the rest is a refusal. `words` is the
/// provider's message, taken from its error shape.
pub(crate) fn unexpected(answer: &Answer, words: String) -> CallError {
    let error = format!("HTTP {}{words}", answer.status.as_u16());
    if answer.status == StatusCode::TOO_MANY_REQUESTS
        || answer.status == StatusCode::UNAUTHORIZED
        || answer.status == StatusCode::REQUEST_TIMEOUT
        || answer.status.is_server_error()
    {
        CallError::Later {
            error,
            after: answer.retry_after,
        }
    } else {
        CallError::Refused(error)
    }
}

fn failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

use meetpool_store::StoreError;
use serde_json::Value;
use thiserror::Error;

/// Every way a use case can fail, in terms a caller can act on. The HTTP
/// layer turns each into one status code and JSON body; the CLI prints it.
#[derive(Debug, Error)]
pub enum AppError {
    /// The request is not well formed (400).
    #[error("{message}")]
    Malformed { code: &'static str, message: String },
    /// Well formed, but a value is not acceptable (422).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// The caller could not be authenticated (401).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// A feature needs configuration it does not have (503).
    #[error("{0}")]
    NotConfigured(String),
    /// The payment gateway's status API did not give a usable answer (503,
    /// so that Midtrans sends the notification again).
    #[error("{0}")]
    Gateway(String),
    /// The database cannot be reached (503): try again later.
    #[error("the database is unavailable")]
    Unavailable,
    /// A concurrency conflict that retries did not resolve in time.
    #[error("too much contention, try again")]
    Busy,
    /// A bug or an unexpected failure; details go to the log, not the caller.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self::Malformed {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(code: &'static str, message: impl ToString) -> Self {
        Self::Invalid {
            code,
            message: message.to_string(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, AppError::Busy)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("record"),
            StoreError::Conflict(what) => AppError::conflict(
                "conflict",
                format!("conflicts with an existing record ({what})"),
            ),
            StoreError::Refused(what) => AppError::invalid(
                "refused_by_database",
                format!("the database refused a value: {what}"),
            ),
            StoreError::Overlap | StoreError::Retry => AppError::Busy,
            StoreError::Unavailable(cause) => {
                // The caller hears "try again"; the operator needs the why
                // (a server gone, or a table dropped under the service).
                tracing::error!(cause = %cause, "the database is unavailable");
                AppError::Unavailable
            }
            e @ (StoreError::DuplicateRooms(_)
            | StoreError::ReadOnly
            | StoreError::NotMigrated
            | StoreError::NewerSchema { .. }) => AppError::NotConfigured(e.to_string()),
            // Said in words by the store (a migration that failed, a role
            // without the rights): the operator's to read, not a bug.
            StoreError::Config(what) => AppError::NotConfigured(what),
            other => {
                AppError::Internal(format!("{other}: {:?}", std::error::Error::source(&other)))
            }
        }
    }
}

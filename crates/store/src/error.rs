use thiserror::Error;

/// One error type for both backends; callers never see a driver error.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule refused the write (which one is said).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused to give a link to two overlapping sessions.
    #[error("the link is already held by an overlapping session")]
    Overlap,
    /// A concurrency conflict (deadlock, serialisation failure, busy
    /// database): the transaction may be tried again.
    #[error("concurrency conflict, try again")]
    Retry,
    /// The database cannot be reached.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database error")]
    Other(#[source] sqlx::Error),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// A migration cannot make rooms unique: the pool already holds one
    /// meeting room under several enabled links.
    #[error("{}", DuplicateRoom::report(.0))]
    DuplicateRooms(Vec<DuplicateRoom>),
}

/// One enabled link of a room that has several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRoom {
    pub room: String,
    pub link_id: String,
    pub meeting_link: String,
}

impl DuplicateRoom {
    fn report(rooms: &[DuplicateRoom]) -> String {
        let mut out = String::from(
            "the pool holds one meeting room under several enabled links, \
             so two sessions at one time could be sent to the same room:\n",
        );
        let mut last = None;
        for d in rooms {
            if last != Some(&d.room) {
                out.push_str(&format!("  room {}\n", d.room));
                last = Some(&d.room);
            }
            out.push_str(&format!("    link {}  {}\n", d.link_id, d.meeting_link));
        }
        out.push_str(
            "Nothing was changed. Keep one link per room and disable the others with \
             `meetpool links disable <link id>` (their coming sessions move to other links \
             or to the unassigned queue; their history stays), then run `meetpool migrate` again.",
        );
        out
    }
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Retry | StoreError::Overlap)
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }

    /// Sorts a driver error into the port's kinds. `overlap_marker` is how
    /// the backend spells its double-booking refusal.
    pub(crate) fn classify(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::RowNotFound => StoreError::NotFound,
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::Protocol(_) => {
                StoreError::Unavailable(e)
            }
            E::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let msg = db.message();
                let constraint = db.constraint().map(str::to_owned);
                if msg.contains("meetpool: double booking") {
                    return StoreError::Overlap;
                }
                match code.as_str() {
                    // PostgreSQL
                    "23P01" => StoreError::Overlap,
                    "40P01" | "40001" | "55P03" => StoreError::Retry,
                    "23505" => StoreError::Conflict(constraint.unwrap_or_else(|| "unique".into())),
                    "23503" => {
                        StoreError::Conflict(constraint.unwrap_or_else(|| "referenced".into()))
                    }
                    "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "08001"
                    | "08004" => StoreError::Unavailable(e),
                    // SQLite: extended result codes
                    "5" | "6" | "261" | "262" | "517" => StoreError::Retry,
                    "2067" | "1555" => StoreError::Conflict(sqlite_unique_target(msg)),
                    // ON DELETE RESTRICT reports itself as a trigger (1811).
                    "787" | "1811" if msg.contains("FOREIGN KEY") => {
                        StoreError::Conflict("referenced".into())
                    }
                    _ => StoreError::Other(e),
                }
            }
            _ => StoreError::Other(e),
        }
    }
}

/// "UNIQUE constraint failed: bookings.order_id" -> "bookings.order_id".
fn sqlite_unique_target(msg: &str) -> String {
    msg.rsplit(": ").next().unwrap_or("unique").to_owned()
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::classify(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError as M;
        let text = e.to_string();
        match e {
            // A refusal or an outage is said as such; any other failure
            // names the migration.
            M::Execute(inner) | M::ExecuteMigration(inner, _) => {
                match StoreError::classify(inner) {
                    StoreError::Other(_) => StoreError::Config(text),
                    kind => kind,
                }
            }
            _ => StoreError::Config(text),
        }
    }
}

use thiserror::Error;

/// One error type for both backends; callers never see a driver error.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule refused the write (which one is said).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused a value: a type, a range, a length, a check or
    /// a missing value. On an adopted database these are the platform's own
    /// rules (its columns' types and constraints), which the service cannot
    /// know beforehand; the database's words say which.
    #[error("the database refused a value: {0}")]
    Refused(String),
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
    /// The database lacks some of this version's migrations.
    #[error("the database is not migrated: run `meetpool migrate` first")]
    NotMigrated,
    /// The database was migrated by a newer meetpool: this binary does not
    /// know its schema and must not run on it.
    #[error(
        "the database's schema is version {database}, newer than this meetpool's ({binary}): \
         a newer meetpool migrated it. Run that version of meetpool (or a later one) on it; \
         this one would misread or damage what the newer one wrote"
    )]
    NewerSchema { database: i64, binary: i64 },
    /// The database may be read but not written (a read-only file, say).
    #[error("the database is read-only: meetpool needs to write to it")]
    ReadOnly,
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

    /// Sorts a driver error into the port's kinds: what every driver
    /// shares here, and a database's own refusals by the adapter whose
    /// database it is ([`crate::postgres::classify`],
    /// [`crate::sqlite::classify`]).
    pub(crate) fn classify(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::RowNotFound => StoreError::NotFound,
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::Protocol(_) => {
                StoreError::Unavailable(e)
            }
            E::Database(db) => {
                let kind = if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    crate::postgres::classify(db.as_ref())
                } else {
                    crate::sqlite::classify(db.as_ref())
                };
                match kind {
                    Kind::Conflict(what) => StoreError::Conflict(what),
                    Kind::Refused(what) => StoreError::Refused(what),
                    Kind::Overlap => StoreError::Overlap,
                    Kind::Retry => StoreError::Retry,
                    Kind::Unavailable => StoreError::Unavailable(e),
                    Kind::ReadOnly => StoreError::ReadOnly,
                    Kind::Other => StoreError::Other(e),
                }
            }
            _ => StoreError::Other(e),
        }
    }
}

/// What an adapter makes of its database's refusal.
pub(crate) enum Kind {
    Conflict(String),
    /// A value the database will not store, in its words.
    Refused(String),
    Overlap,
    Retry,
    Unavailable,
    /// The database may be read but not written.
    ReadOnly,
    Other,
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

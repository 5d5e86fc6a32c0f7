//! What only PostgreSQL has: the previous system's SQL, and replicas racing.

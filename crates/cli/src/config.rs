//! The flags turned into the application's configuration, the HTTP
//! settings and the connected store; and the logging they ask for.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use meetpool_app::{App, Config, MidtransVerify};
use meetpool_domain::Policy;
use meetpool_http::HttpSettings;
use meetpool_store::{ConnectOptions, Coordination, DbSettings};

use crate::args::{ConfigArgs, CoordinationArg, LogFormat, PoolerArg, Switch, VerifyArg};

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

impl ConfigArgs {
    /// The settings to run with: each one given, else the database's
    /// (`stored`), else the default. Settings belong to the install: a
    /// command run without them never changes them.
    pub fn settings(&self, stored: Option<DbSettings>) -> DbSettings {
        DbSettings {
            timezone: self
                .timezone
                .clone()
                .or_else(|| stored.as_ref().map(|s| s.timezone.clone()))
                .unwrap_or_else(|| "UTC".to_owned()),
            buffer_minutes: self
                .buffer_minutes
                .or(stored.map(|s| s.buffer_minutes))
                .unwrap_or(0),
        }
    }

    fn app_config(&self, settings: &DbSettings) -> anyhow::Result<Config> {
        let mut config = Config::new(&settings.timezone).map_err(anyhow::Error::msg)?;
        config.buffer_minutes = settings.buffer_minutes;
        config.policy = self
            .allocation
            .parse::<Policy>()
            .map_err(anyhow::Error::msg)?;
        config.midtrans_server_key = self.midtrans_server_key.clone();
        config.midtrans_verify = match self.midtrans_verify {
            VerifyArg::Signature => MidtransVerify::Signature,
            VerifyArg::Status => MidtransVerify::Status,
        };
        config
            .set_midtrans_api_base(&self.midtrans_api_base)
            .map_err(anyhow::Error::msg)?;
        config.midtrans_amount_check = self.midtrans_amount_check == Switch::On;
        config.midtrans_reconcile =
            meetpool_app::parse_reconcile_schedule(&self.midtrans_reconcile)
                .map_err(|e| anyhow::anyhow!("MEETPOOL_MIDTRANS_RECONCILE: {e}"))?;
        config.join_opens_minutes = self.join_opens_minutes;
        config.slot_minutes = self.slot_minutes;
        config.hold_minutes = self.hold_minutes;
        config.repack_freeze_minutes = self.repack_freeze_minutes;
        config.public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        config.events = crate::commands::events::config(self)?;
        config.rooms = crate::commands::rooms::config(self)?;
        Ok(config)
    }

    pub fn http_settings(&self) -> anyhow::Result<HttpSettings> {
        let mut http = HttpSettings {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_connections: usize::try_from(self.max_connections)?,
            max_body_bytes: usize::try_from(self.max_body_bytes)?,
            cors_origins: Vec::new(),
        };
        http.allow_origins(self.cors_origins.iter().map(String::as_str))
            .map_err(|e| anyhow::anyhow!("MEETPOOL_CORS_ORIGINS: {e}"))?;
        Ok(http)
    }

    pub async fn app(&self) -> anyhow::Result<App> {
        let options = ConnectOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_secs(self.db_acquire_timeout_secs),
            coordination: match self.pg_coordination {
                CoordinationArg::HourLocks => Coordination::HourLocks,
                CoordinationArg::ConstraintOnly => Coordination::ConstraintOnly,
            },
            create_if_missing: true,
            pooler: self.db_pooler == PoolerArg::Transaction,
            direct_url: self.direct_database_url.clone(),
        };
        let store = meetpool_store::connect(&self.database_url, &options)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database ({})",
                    redact_url(&self.database_url)
                )
            })?;
        // A database not migrated yet has no settings of its own.
        let stored = store.stored_settings().await.unwrap_or(None);
        let settings = self.settings(stored);
        Ok(App::new(Arc::from(store), self.app_config(&settings)?))
    }
}

/// The database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

//! Session types: what is sold, and how long it lasts.
use jiff::Timestamp;
use meetpool_domain::values::required_text;
use meetpool_domain::{DurationMinutes, SessionTypeId};
use meetpool_store::SessionType;

use crate::bookings::not_found;
use crate::{App, AppError, Result};

#[derive(Clone, Debug, Default)]
pub struct SessionTypeInput {
    pub name: Option<String>,
    pub duration: Option<i64>,
    pub price: Option<i64>,
}

fn check(st: &SessionType) -> Result<()> {
    required_text("name", &st.name).map_err(|e| AppError::invalid("invalid_name", e))?;
    DurationMinutes::new(i64::from(st.duration))
        .map_err(|e| AppError::invalid("invalid_duration", e))?;
    if st.price < 0 {
        return Err(AppError::invalid(
            "invalid_price",
            "price must not be negative",
        ));
    }
    Ok(())
}

fn duration(raw: i64) -> Result<i32> {
    DurationMinutes::new(raw)
        .map(DurationMinutes::get)
        .map_err(|e| AppError::invalid("invalid_duration", e))
}

impl App {
    pub async fn session_types(&self) -> Result<Vec<SessionType>> {
        Ok(self.store().session_types().await?)
    }

    pub async fn session_type(&self, id: SessionTypeId) -> Result<SessionType> {
        self.store()
            .session_type(id)
            .await
            .map_err(not_found("session type"))
    }

    pub async fn create_session_type(&self, input: SessionTypeInput) -> Result<SessionType> {
        let st =
            SessionType {
                id: SessionTypeId::new(),
                name: input.name.unwrap_or_default().trim().to_owned(),
                duration: duration(input.duration.ok_or_else(|| {
                    AppError::invalid("invalid_duration", "duration is required")
                })?)?,
                price: input.price.unwrap_or(0),
                created_at: Timestamp::now(),
            };
        check(&st)?;
        self.retrying(|| async {
            let mut work = self.begin().await?;
            work.tx.insert_session_type(&st).await?;
            work.commit().await?;
            Ok(())
        })
        .await?;
        self.session_type(st.id).await
    }

    /// Changes a session type. Bookings already made keep the times they
    /// were sold with.
    pub async fn update_session_type(
        &self,
        id: SessionTypeId,
        input: SessionTypeInput,
    ) -> Result<SessionType> {
        let mut st = self.session_type(id).await?;
        if let Some(name) = input.name {
            st.name = name.trim().to_owned();
        }
        if let Some(d) = input.duration {
            st.duration = duration(d)?;
        }
        if let Some(p) = input.price {
            st.price = p;
        }
        check(&st)?;
        self.retrying(|| async {
            let mut work = self.begin().await?;
            work.tx
                .update_session_type(&st)
                .await
                .map_err(not_found("session type"))?;
            work.commit().await?;
            Ok(())
        })
        .await?;
        self.session_type(id).await
    }
}

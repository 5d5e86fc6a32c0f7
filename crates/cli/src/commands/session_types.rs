//! `meetpool session-types`.
use meetpool_app::views::SessionTypeView;
use meetpool_app::{App, SessionTypeInput};

use crate::args::SessionTypesCommand;
use crate::output::{json, table};

pub async fn run(app: &App, cmd: SessionTypesCommand, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        SessionTypesCommand::Add {
            name,
            duration,
            price,
        } => {
            let st = app
                .create_session_type(SessionTypeInput {
                    name: Some(name),
                    duration: Some(duration),
                    price: Some(price),
                })
                .await?;
            if as_json {
                return json(&SessionTypeView::from(&st));
            }
            println!("{} {} ({} min)", st.id, st.name, st.duration);
        }
        SessionTypesCommand::List => {
            let all = app.session_types().await?;
            let views: Vec<SessionTypeView> = all.iter().map(Into::into).collect();
            if as_json {
                return json(&views);
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.name.clone(),
                        s.duration.to_string(),
                        s.price.to_string(),
                    ]
                })
                .collect();
            table(&["ID", "NAME", "MINUTES", "PRICE"], &rows);
        }
    }
    Ok(())
}

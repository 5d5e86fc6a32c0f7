//! `meetpool migrate`.
use meetpool_app::App;

pub async fn run(app: &App, change_settings: bool) -> anyhow::Result<()> {
    let migrated = app.prepare_database(change_settings).await?;
    println!("database migrated ({})", app.backend().as_str());
    if !migrated.disabled_unsafe.is_empty() {
        println!(
            "disabled {} pool link(s) that are not an https:// URL naming a host \
             (a browser must never be sent there); their coming sessions moved to other \
             links or to the unassigned queue:",
            migrated.disabled_unsafe.len()
        );
        for link in &migrated.disabled_unsafe {
            // Debug-quoted: the text came from the database and may
            // hold anything, terminal escapes included.
            println!("  link {}  {:?}", link.link_id, link.meeting_link);
        }
    }
    Ok(())
}

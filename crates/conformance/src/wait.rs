//! The one way the tests wait: poll a condition until it holds or a
//! deadline passes.

use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] asks again.
const EVERY: Duration = Duration::from_millis(20);

/// Polls `check` until it answers true; fails the test with
/// "not within {deadline:?}: {what}" if it has not by `deadline`.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < until,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(EVERY).await;
    }
}

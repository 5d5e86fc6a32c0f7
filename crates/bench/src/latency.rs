//! The `latency` command: how one notification's latency grows with the
//! bookings already stored. A second server on a smaller history can be
//! measured alongside, turn by turn, so that the machine's own drift cancels
//! out of the ratio.
use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::cli::LatencyArgs;
use crate::db::count_bookings;
use crate::explain::explain;
use crate::probe::Probe;
use crate::report::{pct, say};

pub async fn run(a: LatencyArgs) -> Result<()> {
    let j = a.api.json;
    let count = a.warmup + a.notifications;
    // The baseline first, so that every turn goes baseline, then measured.
    let mut probes = Vec::new();
    if let Some(url) = &a.baseline_url {
        let mut api = a.api.clone();
        api.url = url.clone();
        api.database_url = a.baseline_database_url.clone();
        probes.push(Probe::new(api, count).await?);
    }
    probes.push(Probe::new(a.api.clone(), count).await?);
    for p in &mut probes {
        p.send(0..a.warmup, false).await;
    }
    // Alternating turns; which server goes first alternates as well.
    let turn = a.turn.max(1);
    let mut from = a.warmup;
    let mut round = 0;
    while from < count {
        let to = (from + turn).min(count);
        let n = probes.len();
        for k in 0..n {
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            probes[i].send(from..to, true).await;
        }
        from = to;
        round += 1;
    }
    for p in &mut probes {
        p.timed.latencies.sort();
        if let Some(url) = &p.bench.api.database_url {
            p.stored = Some(count_bookings(url).await?);
        }
        p.report(j);
    }
    let ratio = match probes.as_slice() {
        [base, measured] => {
            let r = pct(&measured.timed.latencies, 50.0) / pct(&base.timed.latencies, 50.0);
            say(
                j,
                format!(
                    "p50 ratio, {} stored against {} stored, measured in alternating turns of {turn}: {r:.2}x",
                    measured.stored.map_or("?".into(), |n| n.to_string()),
                    base.stored.map_or("?".into(), |n| n.to_string()),
                ),
            );
            Some(r)
        }
        _ => None,
    };
    let main = probes.last().expect("the measured server");
    if let (Some(url), false) = (&a.api.database_url, a.no_explain) {
        for line in explain(url, &main.orders[main.orders.len() / 2]).await? {
            say(j, line);
        }
    }
    if j {
        let mut out = main.json();
        out["baseline"] = probes
            .first()
            .filter(|_| probes.len() == 2)
            .map_or(Value::Null, Probe::json);
        out["p50_ratio"] = json!(ratio);
        println!("{out}");
    }
    let errors: usize = probes.iter().map(Probe::errors).sum();
    if errors > 0 {
        bail!("{errors} notifications failed");
    }
    Ok(())
}

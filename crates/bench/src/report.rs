//! How results reach the reader: percentiles in milliseconds as every
//! report prints them, and text that stays off stdout under --json, where
//! the scripts in bench/ expect one JSON object and nothing else.
use std::time::Duration;

pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

pub fn say(json_mode: bool, line: impl AsRef<str>) {
    if json_mode {
        eprintln!("{}", line.as_ref());
    } else {
        println!("{}", line.as_ref());
    }
}

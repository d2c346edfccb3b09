//! What the benches share: settings from the environment, the periods and
//! fields they record in, the values they load, and the process's own CPU
//! and memory figures.

use fieldsync::sync::{Mutation, RawValue};
use fieldsync::Hlc;

/// Fields a village may take without a parts check: amounts and the note.
pub const FIELDS: [&str; 9] = [
    "road_km",
    "drainage_km",
    "canal_km",
    "village_cultural_house",
    "village_sports_area",
    "playground",
    "smart_house_library",
    "model_residential_area",
    "note",
];

/// The number in environment variable `name`, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The comma-separated numbers in environment variable `name`, or in `default`.
pub fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Every period the server accepts: years, quarters and months of 2000-2100.
pub fn periods() -> Vec<String> {
    let mut all = Vec::new();
    for y in 2000..=2100 {
        all.push(y.to_string());
        all.extend((1..=4).map(|q| format!("{y}-Q{q}")));
        all.extend((1..=12).map(|m| format!("{y}-{m:02}")));
    }
    all
}

/// CPU seconds of this process so far (user + system), from /proc/self/stat.
pub fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from `state` (field 3) here.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture the server runs on.
    Some(ticks as f64 / 100.0)
}

/// Peak resident set size of this process, in MiB (VmHWM).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Starts counting the peak RSS afresh from here (Linux ≥ 4.0); whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A valid value for cell `k` (village, period, field) of a bench's data
/// set: the villages first, then the fields, then the periods.
pub fn cell_mutation(villages: &[String], periods: &[String], k: usize, id: u64) -> Mutation {
    let v = &villages[k % villages.len()];
    let field = FIELDS[(k / villages.len()) % FIELDS.len()];
    let p = &periods[k / (villages.len() * FIELDS.len())];
    let value = match field {
        "road_km" | "drainage_km" | "canal_km" => {
            RawValue::Amount(format!("{}.{:02}", k % 150, k % 100))
        }
        "playground" => RawValue::Amount((k % 21).to_string()),
        "note" => RawValue::Text(format!("Thôn đã hoàn thành {} hạng mục.", k % 9 + 1)),
        _ => RawValue::Amount((k % 11).to_string()),
    };
    Mutation {
        id,
        village_id: v.clone(),
        period: p.clone(),
        field: field.into(),
        value,
        base_version: 0,
        hlc: Hlc(id),
        author: "Loader".into(),
    }
}

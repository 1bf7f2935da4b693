//! Timing, memory and the JSON lines (one per mode, the same fields as the peers').

use std::time::Instant;

use serde_json::{json, Value};

use crate::opts::Opts;

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MiB.
pub(crate) fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident set (`VmHWM`) in MiB.
pub(crate) fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM")
}

/// Current resident set (`VmRSS`) in MiB.
pub(crate) fn rss_mib() -> Option<f64> {
    status_mib("VmRSS")
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What every JSON line carries.
pub(crate) fn base_record(o: &Opts) -> Value {
    let fused = std::env::var("NERVE_FUSED").map_or(true, |v| v != "0");
    json!({
        // `NERVE_FUSED=0` times the step-by-step reference path, reported as its own column.
        "impl": if fused { "nerve" } else { "nerve-unfused" },
        "version": env!("CARGO_PKG_VERSION"),
        "workload": o.workload,
        "round": o.round,
        "threads": rayon::current_num_threads(),
        "fused": fused,
    })
}

pub(crate) fn emit(o: &Opts, mut record: Value, extra: Value) {
    if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    if !o.json_only {
        eprintln!("{}", human(&record));
    }
    println!("{record}");
}

pub(crate) fn human(r: &Value) -> String {
    match r.get("median_ms") {
        Some(m) => format!(
            "nerve {} {}: median {:.2} ms (min {:.2}), peak RSS {:.0} MiB",
            r["workload"].as_str().unwrap_or(""),
            r["mode"].as_str().unwrap_or(""),
            m.as_f64().unwrap_or(f64::NAN),
            r["min_ms"].as_f64().unwrap_or(f64::NAN),
            r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN)
        ),
        None => {
            let skip = [
                "impl", "version", "workload", "round", "threads", "fused", "mode",
            ];
            let fields: Vec<String> = r
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "nerve {} {}: {}",
                r["workload"].as_str().unwrap_or(""),
                r["mode"].as_str().unwrap_or(""),
                fields.join(" ")
            )
        }
    }
}

/// Runs `step` `warmup` times untimed, then `iters` times timed; emits one JSON line.
pub(crate) fn time_mode(o: &Opts, mode: &str, extra: Value, mut step: impl FnMut()) -> f64 {
    // Resident memory with the model and input built.
    let rss_before = rss_mib();
    for _ in 0..o.warmup {
        step();
    }
    let mut times = Vec::with_capacity(o.iters);
    for _ in 0..o.iters {
        let t0 = Instant::now();
        step();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let med = median(&times);
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mut record = json!({
        "mode": mode,
        "iters": o.iters,
        "warmup": o.warmup,
        "median_ms": round3(med),
        "min_ms": round3(min),
        "times_ms": times.iter().map(|&t| round3(t)).collect::<Vec<_>>(),
        "peak_rss_mib": peak_rss_mib().map(|m| m.round()),
        "rss_before_mib": rss_before.map(|m| m.round()),
    });
    if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    emit(o, base_record(o), record);
    med
}

pub(crate) fn wants(o: &Opts, mode: &str) -> bool {
    o.modes.as_ref().is_none_or(|m| m.iter().any(|x| x == mode))
}

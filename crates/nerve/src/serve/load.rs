//! The load tester: many clients stream completions from a server for a fixed time and
//! measure what users feel (time to first token, time between tokens), what the server
//! delivers (tokens/s) and what it costs (resident memory, sampled over the run).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::viz::curves::{panels as panels_png, Panel, Series};

/// What to send and for how long.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent clients, each sending one streaming request after another.
    pub clients: usize,
    /// How long clients keep starting requests (those running at the end finish).
    pub duration: Duration,
    /// The prompt of every request.
    pub prompt: String,
    /// `max_tokens` of every request.
    pub max_tokens: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Process whose resident memory is sampled (`None`: this process).
    pub pid: Option<u32>,
}

/// What one request saw.
#[derive(Debug, Default)]
struct Seen {
    ttft: Option<f64>,
    gaps: Vec<f64>,
    tokens: usize,
}

/// The results of a load run.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Clients.
    pub clients: usize,
    /// Requests that completed.
    pub requests: usize,
    /// Requests that failed (HTTP error, error event, broken stream).
    pub errors: usize,
    /// The first error seen.
    pub first_error: Option<String>,
    /// Tokens generated in completed requests.
    pub tokens: usize,
    /// Seconds from the start until the last request ended.
    pub seconds: f64,
    /// Time to first token of each request, seconds.
    pub ttft: Vec<f64>,
    /// Time between consecutive pieces of text, seconds.
    pub gaps: Vec<f64>,
    /// `(seconds since start, resident KiB)` samples.
    pub rss: Vec<(f64, u64)>,
    /// Each completed request: `(seconds since start when it ended, tokens, time to first
    /// token in seconds)`.
    pub timeline: Vec<(f64, usize, f64)>,
}

/// The `q`-quantile (0..=1) of `values`, by the nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

impl LoadReport {
    /// Generated tokens per second over the run.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }

    /// Largest resident-memory sample, KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.rss.iter().map(|r| r.1).max().unwrap_or(0)
    }

    /// Mean resident memory of the first and the second half of the samples, KiB: equal
    /// when memory is flat over time.
    pub fn rss_halves_kib(&self) -> (u64, u64) {
        let half = self.rss.len() / 2;
        let mean = |s: &[(f64, u64)]| s.iter().map(|r| r.1).sum::<u64>() / s.len().max(1) as u64;
        (mean(&self.rss[..half]), mean(&self.rss[half..]))
    }

    /// One Markdown table row: clients, requests, errors, tokens/s, TTFT p50/p99 (ms), gap
    /// p50/p99 (ms), peak RSS (MiB), RSS first/second half (MiB).
    pub fn table_row(&self) -> String {
        let ms = |v: &[f64], q| quantile(v, q) * 1e3;
        let (a, b) = self.rss_halves_kib();
        format!(
            "| {} | {} | {} | {:.1} | {:.0} / {:.0} | {:.1} / {:.1} | {:.0} | {:.0} / {:.0} |",
            self.clients,
            self.requests,
            self.errors,
            self.tokens_per_second(),
            ms(&self.ttft, 0.5),
            ms(&self.ttft, 0.99),
            ms(&self.gaps, 0.5),
            ms(&self.gaps, 0.99),
            self.peak_rss_kib() as f64 / 1024.0,
            a as f64 / 1024.0,
            b as f64 / 1024.0,
        )
    }

    /// Draws the run over time: tokens/s (over a trailing 5-s window, counted when requests
    /// end, which happens in waves of a batch), time to first token of each request, and
    /// resident memory; a PNG at `path`.
    pub fn write_plot(&self, path: &Path) -> Result<()> {
        const WINDOW: usize = 5;
        let buckets = (self.seconds.ceil() as usize).max(1);
        let mut per_second = vec![0usize; buckets];
        for &(end, tokens, _) in &self.timeline {
            per_second[(end as usize).min(buckets - 1)] += tokens;
        }
        let throughput = (0..buckets)
            .map(|i| {
                let from = (i + 1).saturating_sub(WINDOW);
                let n: usize = per_second[from..=i].iter().sum();
                ((i + 1) as f64, n as f64 / (i + 1 - from) as f64)
            })
            .collect();
        let ttft = self.timeline.iter().map(|&(end, _, t)| (end, t)).collect();
        let rss = self
            .rss
            .iter()
            .map(|&(t, kib)| (t, kib as f64 / 1024.0))
            .collect();
        let panels = [
            Panel::new(
                "throughput",
                "tokens/s",
                vec![Series::new("5-s window", throughput)],
            ),
            Panel::new(
                "time to first token",
                "s",
                vec![Series::new("by request end", ttft)],
            ),
            Panel::new("resident memory", "MiB", vec![Series::new("RSS", rss)]),
        ];
        let title = format!(
            "load test: {} clients, {} requests, {} errors",
            self.clients, self.requests, self.errors
        );
        panels_png(path, &title, "seconds since start", &panels)
    }

    /// The header of [`table_row`](Self::table_row).
    pub fn table_header() -> &'static str {
        "| clients | requests | errors | tokens/s | TTFT p50 / p99 (ms) | token gap p50 / p99 (ms) | peak RSS (MiB) | RSS 1st / 2nd half (MiB) |\n\
         |---|---|---|---|---|---|---|---|"
    }
}

/// Resident memory of `pid` (or this process), KiB, from `/proc`; `None` where unreadable.
pub fn resident_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One streaming request; what it saw, or why it failed.
async fn one_request(addr: SocketAddr, body: Bytes) -> std::result::Result<Seen, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let req = Request::post("/v1/completions")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !res.status().is_success() {
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    let mut seen = Seen::default();
    let mut last = start;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = res.body_mut().frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                if data == "[DONE]" {
                    return if seen.ttft.is_some() || seen.tokens > 0 {
                        Ok(seen)
                    } else {
                        Err("stream ended without a completion".into())
                    };
                }
                let v: Value = serde_json::from_str(data).map_err(|e| format!("event: {e}"))?;
                if let Some(err) = v.get("error") {
                    return Err(format!("error event: {err}"));
                }
                let choice = &v["choices"][0];
                if choice["text"].as_str().is_some_and(|t| !t.is_empty()) {
                    let now = Instant::now();
                    match seen.ttft {
                        None => seen.ttft = Some((now - start).as_secs_f64()),
                        Some(_) => seen.gaps.push((now - last).as_secs_f64()),
                    }
                    last = now;
                }
                if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                    seen.tokens = n as usize;
                }
            }
        }
    }
    Err("stream closed before [DONE]".into())
}

/// Runs the load: `clients` tasks send streaming requests back to back until `duration` has
/// passed, while a sampler reads resident memory every 250 ms.
pub fn run_load(config: &LoadConfig) -> Result<LoadReport> {
    if config.clients == 0 {
        return Err(Error::invalid("clients", "must be at least 1"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("load test", e.to_string()))?;
    let body = Bytes::from(
        json!({
            "prompt": config.prompt,
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
            "stream": true,
        })
        .to_string(),
    );
    let report = Arc::new(Mutex::new(LoadReport {
        clients: config.clients,
        ..Default::default()
    }));
    let start = Instant::now();
    let deadline = start + config.duration;
    runtime.block_on(async {
        let sampler = {
            let (report, pid) = (report.clone(), config.pid);
            tokio::spawn(async move {
                loop {
                    if let Some(kib) = resident_kib(pid) {
                        let t = start.elapsed().as_secs_f64();
                        report
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .rss
                            .push((t, kib));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let clients: Vec<_> = (0..config.clients)
            .map(|_| {
                let (report, body, addr) = (report.clone(), body.clone(), config.addr);
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let result = one_request(addr, body.clone()).await;
                        let failed = result.is_err();
                        {
                            let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                            match result {
                                Ok(seen) => {
                                    let end = start.elapsed().as_secs_f64();
                                    r.timeline
                                        .push((end, seen.tokens, seen.ttft.unwrap_or(0.0)));
                                    r.requests += 1;
                                    r.tokens += seen.tokens;
                                    r.ttft.extend(seen.ttft);
                                    r.gaps.extend(seen.gaps);
                                }
                                Err(e) => {
                                    r.errors += 1;
                                    r.first_error.get_or_insert(e);
                                }
                            }
                        }
                        if failed {
                            // Do not spin on a refusing server.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            let _ = c.await;
        }
        sampler.abort();
    });
    let mut report = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

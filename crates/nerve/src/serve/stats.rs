//! What the server counts, and its Prometheus text exposition for `GET /metrics`.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Window over which `nerve_tokens_per_second` is averaged.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// How a request ended, for `nerve_requests_total{outcome=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Completed (stop or length).
    Completed,
    /// Refused before it was queued (bad input).
    Invalid,
    /// Refused because the queue was full or the server was shutting down.
    Rejected,
    /// The client went away, or shutdown cancelled it.
    Cancelled,
    /// The model failed on it (e.g. non-finite logits).
    Failed,
}

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Completed, "completed"),
    (Outcome::Invalid, "invalid"),
    (Outcome::Rejected, "rejected"),
    (Outcome::Cancelled, "cancelled"),
    (Outcome::Failed, "failed"),
];

/// Counters and gauges shared by the HTTP handlers and the decoding loop.
#[derive(Debug)]
pub struct ServerStats {
    started: Instant,
    requests: [AtomicU64; 5],
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    batch_steps: AtomicU64,
    queued: AtomicUsize,
    active: AtomicUsize,
    ttft_micros: AtomicU64,
    ttft_count: AtomicU64,
    recent: Mutex<VecDeque<(Instant, usize)>>,
}

impl Default for ServerStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: Default::default(),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            batch_steps: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            ttft_micros: AtomicU64::new(0),
            ttft_count: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl ServerStats {
    fn counter(&self, outcome: Outcome) -> &AtomicU64 {
        let i = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        &self.requests[i]
    }

    /// Counts one finished request.
    pub fn count(&self, outcome: Outcome) {
        self.counter(outcome).fetch_add(1, Ordering::Relaxed);
    }

    /// Requests that ended as `outcome` so far.
    pub fn requests(&self, outcome: Outcome) -> u64 {
        self.counter(outcome).load(Ordering::Relaxed)
    }

    /// Takes a place in the queue unless `limit` requests already wait; false if full.
    pub fn try_enqueue(&self, limit: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < limit).then_some(q + 1)
            })
            .is_ok()
    }

    /// Gives a queue place back (the request started, or left).
    pub fn dequeue(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Requests waiting for a place in the batch.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Sequences being decoded.
    pub fn active_streams(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    pub(crate) fn set_active(&self, n: usize) {
        self.active.store(n, Ordering::Release);
    }

    pub(crate) fn add_prompt_tokens(&self, n: usize) {
        self.prompt_tokens.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn first_token(&self, after: Duration) {
        self.ttft_micros
            .fetch_add(after.as_micros() as u64, Ordering::Relaxed);
        self.ttft_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one batch step that generated `tokens` tokens.
    pub(crate) fn step(&self, tokens: usize) {
        self.batch_steps.fetch_add(1, Ordering::Relaxed);
        self.generated_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.push_back((now, tokens));
        while recent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            recent.pop_front();
        }
    }

    /// Tokens generated since the server started.
    pub fn generated_tokens(&self) -> u64 {
        self.generated_tokens.load(Ordering::Relaxed)
    }

    /// Tokens generated per second over the last ten seconds (or since start, if sooner).
    pub fn tokens_per_second(&self) -> f64 {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let span = RATE_WINDOW
            .min(now.duration_since(self.started))
            .as_secs_f64();
        let fresh: usize = recent
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= RATE_WINDOW)
            .map(|(_, n)| n)
            .sum();
        fresh as f64 / span.max(1e-3)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: String| vec![(String::new(), v)];
        metric(
            "nerve_requests_total",
            "counter",
            "Completion requests by how they ended.",
            &OUTCOMES
                .iter()
                .zip(&self.requests)
                .map(|((_, name), n)| {
                    (
                        format!("{{outcome=\"{name}\"}}"),
                        n.load(Ordering::Relaxed).to_string(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        metric(
            "nerve_generated_tokens_total",
            "counter",
            "Tokens generated.",
            &plain(self.generated_tokens().to_string()),
        );
        metric(
            "nerve_prompt_tokens_total",
            "counter",
            "Prompt tokens read.",
            &plain(self.prompt_tokens.load(Ordering::Relaxed).to_string()),
        );
        metric(
            "nerve_batch_steps_total",
            "counter",
            "Decoding steps (one token for every active stream).",
            &plain(self.batch_steps.load(Ordering::Relaxed).to_string()),
        );
        metric(
            "nerve_tokens_per_second",
            "gauge",
            "Tokens generated per second over the last 10 s.",
            &plain(format!("{:.3}", self.tokens_per_second())),
        );
        metric(
            "nerve_queue_depth",
            "gauge",
            "Requests waiting for a place in the batch.",
            &plain(self.queue_depth().to_string()),
        );
        metric(
            "nerve_active_streams",
            "gauge",
            "Sequences being decoded.",
            &plain(self.active_streams().to_string()),
        );
        metric(
            "nerve_time_to_first_token_seconds",
            "summary",
            "Time from a request's arrival to its first generated token.",
            &[
                (
                    "_sum".into(),
                    format!(
                        "{:.6}",
                        self.ttft_micros.load(Ordering::Relaxed) as f64 * 1e-6
                    ),
                ),
                (
                    "_count".into(),
                    self.ttft_count.load(Ordering::Relaxed).to_string(),
                ),
            ],
        );
        out
    }
}

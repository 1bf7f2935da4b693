//! The decoding loop: one thread owns the model and advances every active sequence by one
//! token per step (continuous batching: requests join and leave between steps); a new
//! request's prompt is read up to 16 tokens per step (chunked prefill) before it joins. It never
//! waits on a client: events go out on unbounded channels, so a slow reader only grows its
//! own buffer (bounded by `max_tokens`), and a closed channel frees the sequence at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::request::{FinishReason, Usage};
use super::stats::{Outcome, ServerStats};
use super::stop::StopFilter;
use crate::models::batch_decode::BatchDecoder;
use crate::models::mmfree::engine::PREFILL_CHUNK;
use crate::text::{IncrementalDecoder, Sampler, Tokenizer};

/// What a request's handler hears from the decoding loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text of the completion.
    Text(String),
    /// The completion ended normally.
    Finished(FinishReason, Usage),
    /// The request ended without finishing: `(overloaded, message)`; `overloaded` means the
    /// server refused it for now (shutdown), not that the request was wrong.
    Failed(bool, String),
}

/// A request waiting for a place in the batch.
pub struct Job {
    /// Token ids to read before generating (at least one).
    pub prompt: Vec<u32>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// The request's sampler.
    pub sampler: Sampler,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Where the events go.
    pub events: UnboundedSender<Event>,
    /// When the request arrived (for time to first token).
    pub arrived: Instant,
}

/// Shutdown: once begun, no request is admitted, and active ones get until the deadline.
#[derive(Debug, Default)]
pub struct Shutdown {
    begun: AtomicBool,
    deadline: OnceLock<Instant>,
}

impl Shutdown {
    /// Starts shutting down; sequences still running after `grace` are cancelled.
    pub fn begin(&self, grace: Duration) {
        let _ = self.deadline.set(Instant::now() + grace);
        self.begun.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn begun(&self) -> bool {
        self.begun.load(Ordering::Acquire)
    }

    fn overdue(&self) -> bool {
        self.deadline.get().is_some_and(|d| Instant::now() >= *d)
    }
}

/// A sequence being decoded.
struct Active {
    slot: usize,
    job: Job,
    /// Prompt tokens fed so far.
    fed: usize,
    /// The last sampled token, fed at the next step.
    last: u32,
    generated: usize,
    text: IncrementalDecoder,
    stop: StopFilter,
}

impl Active {
    fn next_token(&self) -> u32 {
        self.job.prompt.get(self.fed).copied().unwrap_or(self.last)
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.job.prompt.len(),
            completion_tokens: self.generated,
        }
    }
}

/// The decoding loop's fixed parts.
pub struct Scheduler {
    /// The model.
    pub decoder: Box<dyn BatchDecoder>,
    /// Its tokenizer (to turn tokens into text).
    pub tokenizer: Arc<Tokenizer>,
    /// End-of-text token, if any.
    pub eos: Option<u32>,
    /// Most sequences decoded at once.
    pub max_batch: usize,
    /// Counters shared with the handlers.
    pub stats: Arc<ServerStats>,
    /// The shutdown signal.
    pub shutdown: Arc<Shutdown>,
}

impl Scheduler {
    /// Runs until shutdown has begun and every sequence has ended (or the job channel closes).
    pub fn run(mut self, jobs: Receiver<Job>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        let mut active: Vec<Active> = Vec::new();
        loop {
            if active.is_empty() && pending.is_empty() {
                match jobs.recv_timeout(Duration::from_millis(50)) {
                    Ok(job) => pending.push_back(job),
                    Err(RecvTimeoutError::Timeout) if !self.shutdown.begun() => continue,
                    Err(_) => break,
                }
            }
            pending.extend(jobs.try_iter());
            if self.shutdown.begun() {
                for job in pending.drain(..) {
                    self.stats.dequeue();
                    self.stats.count(Outcome::Rejected);
                    let _ = job
                        .events
                        .send(Event::Failed(true, "server is shutting down".into()));
                }
                if self.shutdown.overdue() {
                    for a in active.drain(..) {
                        self.end(
                            a,
                            Outcome::Cancelled,
                            Event::Failed(true, "cancelled: server is shutting down".into()),
                        );
                    }
                }
                if active.is_empty() {
                    break;
                }
            }
            self.admit(&mut pending, &mut active);
            if !active.is_empty() {
                self.step(&mut active);
            }
        }
        self.stats.set_active(0);
    }

    /// Drops sequences whose client left and fills the batch from the queue.
    fn admit(&mut self, pending: &mut VecDeque<Job>, active: &mut Vec<Active>) {
        let (gone, kept): (Vec<Active>, Vec<Active>) =
            active.drain(..).partition(|a| a.job.events.is_closed());
        *active = kept;
        for a in gone {
            self.end(
                a,
                Outcome::Cancelled,
                Event::Failed(false, "client left".into()),
            );
        }
        while active.len() < self.max_batch {
            let Some(job) = pending.pop_front() else {
                break;
            };
            self.stats.dequeue();
            if job.events.is_closed() {
                self.stats.count(Outcome::Cancelled);
                continue;
            }
            self.stats.add_prompt_tokens(job.prompt.len());
            active.push(Active {
                slot: self.decoder.open(),
                stop: StopFilter::new(job.stop.clone()),
                job,
                fed: 0,
                last: 0,
                generated: 0,
                text: IncrementalDecoder::new(),
            });
        }
        self.stats.set_active(active.len());
    }

    fn end(&mut self, a: Active, outcome: Outcome, event: Event) {
        self.decoder.close(a.slot);
        self.stats.count(outcome);
        let _ = a.job.events.send(event);
    }

    /// Reads up to [`PREFILL_CHUNK`] more prompt tokens of every sequence that has more than
    /// one left (the last one goes through the batch step, which samples after it).
    fn prefill(&mut self, active: &mut Vec<Active>) {
        let mut failed = Vec::new();
        for (i, a) in active.iter_mut().enumerate() {
            let end = (a.fed + PREFILL_CHUNK).min(a.job.prompt.len().saturating_sub(1));
            if end > a.fed {
                match self.decoder.prefill(a.slot, &a.job.prompt[a.fed..end]) {
                    Ok(()) => a.fed = end,
                    Err(e) => failed.push((i, e.to_string())),
                }
            }
        }
        for (i, message) in failed.into_iter().rev() {
            let a = active.swap_remove(i);
            self.end(a, Outcome::Failed, Event::Failed(false, message));
        }
    }

    /// One token for every active sequence whose prompt is read up to its last token;
    /// samples for those past their prompt.
    fn step(&mut self, active: &mut Vec<Active>) {
        self.prefill(active);
        // Long prompts take several steps of prefill before they join the batch step.
        let ready: Vec<usize> = (0..active.len())
            .filter(|&i| active[i].fed + 1 >= active[i].job.prompt.len())
            .collect();
        let slots: Vec<usize> = ready.iter().map(|&i| active[i].slot).collect();
        let tokens: Vec<u32> = ready.iter().map(|&i| active[i].next_token()).collect();
        if slots.is_empty() {
            return;
        }
        if let Err(e) = self.decoder.step(&slots, &tokens) {
            for a in active.drain(..) {
                self.end(a, Outcome::Failed, Event::Failed(false, e.to_string()));
            }
            return;
        }
        let mut generated = 0;
        let mut done = Vec::new();
        for &i in &ready {
            let a = &mut active[i];
            if a.fed < a.job.prompt.len() {
                a.fed += 1;
                if a.fed < a.job.prompt.len() {
                    continue;
                }
            }
            generated += 1;
            if let Some(end) = self.sample(a) {
                done.push((i, end));
            }
        }
        self.stats.step(generated);
        for (i, (outcome, event)) in done.into_iter().rev() {
            let a = active.swap_remove(i);
            self.end(a, outcome, event);
        }
        // swap_remove reordered the batch; decoding order does not matter to the results.
        self.stats.set_active(active.len());
    }

    /// Draws the next token of `a` and sends its text; returns how it ended, if it did.
    fn sample(&self, a: &mut Active) -> Option<(Outcome, Event)> {
        let token = match a.job.sampler.sample(self.decoder.logits(a.slot)) {
            Ok(t) => t,
            Err(e) => return Some((Outcome::Failed, Event::Failed(false, format!("model: {e}")))),
        };
        a.generated += 1;
        a.last = token;
        if a.generated == 1 {
            self.stats.first_token(a.job.arrived.elapsed());
        }
        let finished = |a: &mut Active, reason| {
            let rest = a.stop.finish();
            if !rest.is_empty() {
                let _ = a.job.events.send(Event::Text(rest));
            }
            Some((Outcome::Completed, Event::Finished(reason, a.usage())))
        };
        if Some(token) == self.eos {
            return finished(a, FinishReason::Stop);
        }
        let piece = match a.text.push(&self.tokenizer, token) {
            Ok(p) => p,
            Err(e) => return Some((Outcome::Failed, Event::Failed(false, e.to_string()))),
        };
        let (text, stopped) = a.stop.push(&piece);
        if !text.is_empty() {
            let _ = a.job.events.send(Event::Text(text));
        }
        if stopped {
            return Some((
                Outcome::Completed,
                Event::Finished(FinishReason::Stop, a.usage()),
            ));
        }
        if a.generated >= a.job.max_tokens {
            return finished(a, FinishReason::Length);
        }
        None
    }
}

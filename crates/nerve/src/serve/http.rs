//! The HTTP side: routes, request checks, queue admission and the response bodies (JSON, or
//! server-sent events `data: {json}` ... `data: [DONE]`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;

use super::request::{
    completion_json, parse_completion, Prompt, RequestError, RequestLimits, ResponseHeader,
};
use super::scheduler::{Event, Job, Shutdown};
use super::stats::{Outcome, ServerStats};
use crate::text::{Sampler, Tokenizer};

/// Everything the handlers share.
pub struct AppState {
    /// To the decoding loop.
    pub jobs: Sender<Job>,
    /// The model's tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// Token put before every prompt.
    pub bos: Option<u32>,
    /// The model's vocabulary size.
    pub vocab_size: usize,
    /// Limits on `max_tokens`.
    pub limits: RequestLimits,
    /// Longest prompt accepted, in tokens.
    pub max_prompt_tokens: usize,
    /// Most requests waiting for a place in the batch.
    pub max_queue: usize,
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// The shutdown signal.
    pub shutdown: Arc<Shutdown>,
    /// Name reported as `model`.
    pub model_name: String,
    /// Source of response ids and unseeded sampling seeds.
    pub counter: AtomicU64,
}

/// The routes: `POST /v1/completions`, `GET /v1/models`, `GET /health`, `GET /metrics`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn error(status: StatusCode, kind: &str, e: &RequestError) -> Response {
    (status, Json(e.to_json(kind))).into_response()
}

fn unavailable(message: &str) -> Response {
    let e = RequestError {
        param: None,
        message: message.to_string(),
    };
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "server_overloaded", &e);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The prompt as token ids, checked against the model and the server's limit.
fn prompt_tokens(state: &AppState, prompt: Prompt) -> Result<Vec<u32>, RequestError> {
    let mut ids = match prompt {
        Prompt::Text(text) => state
            .tokenizer
            .encode(&text)
            .map_err(|e| RequestError::field("prompt", e.to_string()))?,
        Prompt::Tokens(ids) => ids,
    };
    if let Some(&bad) = ids.iter().find(|&&t| t as usize >= state.vocab_size) {
        return Err(RequestError::field(
            "prompt",
            format!(
                "token id {bad} is outside the model's vocabulary of {}",
                state.vocab_size
            ),
        ));
    }
    if let Some(b) = state.bos {
        ids.insert(0, b);
    }
    if ids.is_empty() {
        return Err(RequestError::field(
            "prompt",
            "is empty; give at least one token",
        ));
    }
    if ids.len() > state.max_prompt_tokens {
        return Err(RequestError::field(
            "prompt",
            format!(
                "{} tokens exceed this server's limit of {}",
                ids.len(),
                state.max_prompt_tokens
            ),
        ));
    }
    Ok(ids)
}

async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let arrived = Instant::now();
    let parsed = parse_completion(&body, &state.limits)
        .and_then(|req| Ok((prompt_tokens(&state, req.prompt.clone())?, req)));
    let (prompt, req) = match parsed {
        Ok(p) => p,
        Err(e) => {
            state.stats.count(Outcome::Invalid);
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", &e);
        }
    };
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let mut sampling = req.sampling.clone();
    if !req.seeded {
        sampling.seed = unix_now() ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    let sampler = match Sampler::new(sampling) {
        Ok(s) => s,
        Err(e) => {
            state.stats.count(Outcome::Invalid);
            let e = RequestError {
                param: None,
                message: e.to_string(),
            };
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", &e);
        }
    };
    if state.shutdown.begun() {
        state.stats.count(Outcome::Rejected);
        return unavailable("server is shutting down");
    }
    if !state.stats.try_enqueue(state.max_queue) {
        state.stats.count(Outcome::Rejected);
        return unavailable(&format!(
            "server busy: {} requests already wait; retry later",
            state.max_queue
        ));
    }
    let (tx, rx) = unbounded_channel();
    let job = Job {
        prompt,
        max_tokens: req.max_tokens,
        sampler,
        stop: req.stop,
        events: tx,
        arrived,
    };
    if state.jobs.send(job).is_err() {
        state.stats.dequeue();
        state.stats.count(Outcome::Rejected);
        return unavailable("server is shutting down");
    }
    let head = ResponseHeader {
        id: format!("cmpl-{:x}{n:06x}", unix_now()),
        created: unix_now(),
        model: state.model_name.clone(),
    };
    if req.stream {
        stream_response(head, rx)
    } else {
        whole_response(head, rx).await
    }
}

fn sse_json(value: serde_json::Value) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default().data(value.to_string()))
}

fn stream_response(head: ResponseHeader, rx: UnboundedReceiver<Event>) -> Response {
    let events = UnboundedReceiverStream::new(rx).map(move |event| match event {
        Event::Text(text) => sse_json(completion_json(&head, &text, None, None)),
        Event::Finished(reason, usage) => {
            sse_json(completion_json(&head, "", Some(reason), Some(usage)))
        }
        Event::Failed(overloaded, message) => {
            let kind = if overloaded {
                "server_overloaded"
            } else {
                "server_error"
            };
            sse_json(
                RequestError {
                    param: None,
                    message,
                }
                .to_json(kind),
            )
        }
    });
    let done = tokio_stream::once(Ok(SseEvent::default().data("[DONE]")));
    Sse::new(events.chain(done))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn whole_response(head: ResponseHeader, mut rx: UnboundedReceiver<Event>) -> Response {
    let mut text = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Text(piece) => text.push_str(&piece),
            Event::Finished(reason, usage) => {
                return Json(completion_json(&head, &text, Some(reason), Some(usage)))
                    .into_response()
            }
            Event::Failed(true, message) => return unavailable(&message),
            Event::Failed(false, message) => {
                let e = RequestError {
                    param: None,
                    message,
                };
                return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &e);
            }
        }
    }
    unavailable("the decoding loop stopped")
}

async fn models(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({"object": "list", "data": [
        {"id": state.model_name, "object": "model", "created": 0, "owned_by": "nerve"}
    ]}))
    .into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let body = json!({
        "status": if state.shutdown.begun() { "shutting down" } else { "ok" },
        "model": state.model_name,
        "active_streams": state.stats.active_streams(),
        "queue_depth": state.stats.queue_depth(),
    });
    let status = if state.shutdown.begun() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.stats.render(),
    )
        .into_response()
}

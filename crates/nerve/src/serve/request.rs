//! `POST /v1/completions` bodies (OpenAI's completions API, the subset a recurrent model
//! serves) and the JSON the server answers with. Every refusal names the field.

use serde_json::{json, Map, Value};

use crate::text::SamplerConfig;

/// Largest number of stop strings (as OpenAI's API allows).
pub const MAX_STOPS: usize = 4;

/// A refused request: the field at fault (OpenAI's `param`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// The field, or `None` for the body as a whole.
    pub param: Option<String>,
    /// One line saying what is wrong.
    pub message: String,
}

impl RequestError {
    /// An error about `param`.
    pub fn field(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_string()),
            message: format!("{param}: {}", message.into()),
        }
    }

    /// OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`.
    pub fn to_json(&self, kind: &str) -> Value {
        json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": null}})
    }
}

/// The prompt: text, or token ids as OpenAI's API also accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Text, tokenized by the model's tokenizer.
    Text(String),
    /// Token ids, fed as given.
    Tokens(Vec<u32>),
}

/// A checked completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// What to continue.
    pub prompt: Prompt,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Temperature, top-k, top-p and seed (`None`: the server picks one).
    pub sampling: SamplerConfig,
    /// Whether the seed was given.
    pub seeded: bool,
    /// Strings that end the completion (not included in it).
    pub stop: Vec<String>,
    /// Send server-sent events as tokens come.
    pub stream: bool,
}

/// The server's limits on requests.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Largest `max_tokens` accepted.
    pub max_tokens: usize,
    /// `max_tokens` when the request gives none.
    pub default_max_tokens: usize,
}

fn number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, RequestError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(RequestError::field(
            key,
            format!("expected a number, got {}", kind(other)),
        )),
    }
}

fn integer(body: &Map<String, Value>, key: &str) -> Result<Option<i64>, RequestError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| RequestError::field(key, format!("expected an integer, got {n}"))),
        Some(other) => Err(RequestError::field(
            key,
            format!("expected an integer, got {}", kind(other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn prompt(body: &Map<String, Value>) -> Result<Prompt, RequestError> {
    let bad = |m: String| Err(RequestError::field("prompt", m));
    match body.get("prompt") {
        None | Some(Value::Null) => bad("is required".into()),
        Some(Value::String(s)) => Ok(Prompt::Text(s.clone())),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(s)] => Ok(Prompt::Text(s.clone())),
            [] => bad("is empty".into()),
            [Value::String(_), ..] | [Value::Array(_), ..] => bad(
                "several prompts in one request are not supported; send one request each".into(),
            ),
            _ => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_u64()
                        .and_then(|t| u32::try_from(t).ok())
                        .ok_or_else(|| {
                            RequestError::field(
                                "prompt",
                                format!("item {i} is not a token id: {v}"),
                            )
                        })
                })
                .collect::<Result<_, _>>()
                .map(Prompt::Tokens),
        },
        Some(other) => bad(format!(
            "expected a string or an array of token ids, got {}",
            kind(other)
        )),
    }
}

fn stop(body: &Map<String, Value>) -> Result<Vec<String>, RequestError> {
    let stops = match body.get("stop") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(RequestError::field(
                    "stop",
                    format!("expected strings, got {}", kind(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(RequestError::field(
                "stop",
                format!(
                    "expected a string or an array of strings, got {}",
                    kind(other)
                ),
            ))
        }
    };
    if stops.len() > MAX_STOPS {
        return Err(RequestError::field(
            "stop",
            format!("{} strings; at most {MAX_STOPS}", stops.len()),
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(RequestError::field(
            "stop",
            "an empty string never matches; remove it",
        ));
    }
    Ok(stops)
}

/// Options of OpenAI's API this server does not implement, and the value that means "off".
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), RequestError> {
    let off = |key: &str, ok: &dyn Fn(&Value) -> bool| match body.get(key) {
        Some(v) if !v.is_null() && !ok(v) => {
            Err(RequestError::field(key, "is not supported by this server"))
        }
        _ => Ok(()),
    };
    off("n", &|v| v.as_u64() == Some(1))?;
    off("best_of", &|v| v.as_u64() == Some(1))?;
    off("echo", &|v| v.as_bool() == Some(false))?;
    off("logprobs", &|v| v.as_u64() == Some(0))?;
    off("suffix", &|v| v.as_str() == Some(""))?;
    off("presence_penalty", &|v| v.as_f64() == Some(0.0))?;
    off("frequency_penalty", &|v| v.as_f64() == Some(0.0))?;
    off("logit_bias", &|v| v.as_object().is_some_and(Map::is_empty))
}

/// Parses and checks a request body; unknown fields (`model`, `user`, ...) are ignored.
pub fn parse_completion(
    body: &[u8],
    limits: &RequestLimits,
) -> Result<CompletionRequest, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RequestError {
        param: None,
        message: format!("request body is not valid JSON: {e}"),
    })?;
    let Value::Object(body) = value else {
        return Err(RequestError {
            param: None,
            message: format!("request body: expected a JSON object, got {}", kind(&value)),
        });
    };
    refuse_unsupported(&body)?;
    let max_tokens = match integer(&body, "max_tokens")? {
        None => limits.default_max_tokens.min(limits.max_tokens),
        Some(n) if n < 1 => {
            return Err(RequestError::field(
                "max_tokens",
                format!("{n}; must be at least 1"),
            ))
        }
        Some(n) if n as u64 > limits.max_tokens as u64 => {
            return Err(RequestError::field(
                "max_tokens",
                format!("{n} exceeds this server's limit of {}", limits.max_tokens),
            ))
        }
        Some(n) => n as usize,
    };
    let temperature = number(&body, "temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(RequestError::field(
            "temperature",
            format!("{temperature}; must be between 0 and 2"),
        ));
    }
    let top_p = number(&body, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(RequestError::field(
            "top_p",
            format!("{top_p}; must be in (0, 1]"),
        ));
    }
    let top_k = match integer(&body, "top_k")? {
        None | Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(k) => {
            return Err(RequestError::field(
                "top_k",
                format!("{k}; must be -1, 0 (all) or positive"),
            ))
        }
    };
    let seed = match integer(&body, "seed")? {
        Some(s) if s < 0 => {
            return Err(RequestError::field(
                "seed",
                format!("{s}; must be at least 0"),
            ))
        }
        s => s.map(|s| s as u64),
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(RequestError::field(
                "stream",
                format!("expected a boolean, got {}", kind(other)),
            ))
        }
    };
    Ok(CompletionRequest {
        prompt: prompt(&body)?,
        max_tokens,
        sampling: SamplerConfig {
            temperature,
            top_k,
            top_p,
            seed: seed.unwrap_or(0),
        },
        seeded: seed.is_some(),
        stop: stop(&body)?,
        stream,
    })
}

/// Why a completion ended, as OpenAI's `finish_reason` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop string or the end-of-text token.
    Stop,
    /// `max_tokens` reached.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Token counts of a finished completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}

impl Usage {
    fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        })
    }
}

/// Identifies a response: its id, creation time (Unix seconds) and model name.
#[derive(Debug, Clone)]
pub struct ResponseHeader {
    /// `cmpl-...`.
    pub id: String,
    /// Unix time in seconds.
    pub created: u64,
    /// The served model's name.
    pub model: String,
}

/// A `text_completion` object; in a stream, `usage` comes with the last chunk only.
pub fn completion_json(
    head: &ResponseHeader,
    text: &str,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
) -> Value {
    json!({
        "id": head.id,
        "object": "text_completion",
        "created": head.created,
        "model": head.model,
        "choices": [{
            "text": text,
            "index": 0,
            "logprobs": null,
            "finish_reason": finish.map(FinishReason::as_str),
        }],
        "usage": usage.map(Usage::to_json),
    })
}

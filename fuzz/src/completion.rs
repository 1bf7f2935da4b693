//! Target for `POST /v1/completions` bodies, the server's request parser.

use nerve::serve::request::{parse_completion, Prompt, RequestLimits, MAX_STOPS};

const LIMITS: RequestLimits = RequestLimits {
    max_tokens: 1000,
    default_max_tokens: 16,
};

/// Request bytes: an accepted request is within the limits; a refusal is one line, and names
/// its field whenever it has one.
pub fn completion_request(data: &[u8]) {
    match parse_completion(data, &LIMITS) {
        Ok(req) => {
            assert!((1..=LIMITS.max_tokens).contains(&req.max_tokens));
            assert!(req.stop.len() <= MAX_STOPS && req.stop.iter().all(|s| !s.is_empty()));
            req.sampling
                .validate()
                .expect("accepted sampling settings are valid");
            if let Prompt::Tokens(ids) = &req.prompt {
                assert!(!ids.is_empty());
            }
        }
        Err(e) => {
            assert!(!e.message.contains('\n'), "{}", e.message);
            if let Some(p) = &e.param {
                assert!(e.message.starts_with(p.as_str()), "{}", e.message);
            }
        }
    }
}

/// Requests a client would send, valid and not.
pub fn completion_seeds() -> Vec<(String, Vec<u8>)> {
    [
        r#"{"prompt": "ROMEO:", "max_tokens": 40, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "seed": 1, "stop": ["\n\n", "END"], "stream": true, "model": "x"}"#,
        r#"{"prompt": [1, 2, 3], "max_tokens": 5, "n": 1, "echo": false, "logprobs": null}"#,
        r#"{"prompt": ["one"], "stop": "x", "temperature": 0}"#,
        r#"{"prompt": "a", "max_tokens": "ten", "presence_penalty": 0.5}"#,
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| (format!("request-{i}.json"), s.as_bytes().to_vec()))
    .collect()
}

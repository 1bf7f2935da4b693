//! `nerve lm serve` in process: completions equal single-stream generation, streaming follows
//! OpenAI's event format, bad requests name their field, the queue is bounded, clients that
//! leave free their stream, shutdown finishes or cancels, and a short load test has no errors.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use nerve::models::batch_decode::{open_dir, BatchDecoder, SpikeGptBatch};
use nerve::models::generate::{generate, BurnStepper, TokenStepper};
use nerve::models::language_model::LanguageModel;
use nerve::models::mmfree::{save_dir, MmFreeConfig, MmFreeEngine, MmFreeWeights, SaveDtype};
use nerve::serve::load::{run_load, LoadConfig};
use nerve::serve::{Outcome, ServeConfig, Server};
use nerve::text::tokenizer::StreamDecoder;
use nerve::text::{Sampler, SamplerConfig, Tokenizer};
use serde_json::{json, Value};

use super::http_client::{read_reply, request, send};

const TEXT: &str = "to be or not to be: that is the question.\n";

/// A random MatMul-free model over `TEXT`'s characters, saved as a model directory.
fn mmfree_dir(width: usize, layers: usize) -> (tempfile::TempDir, MmFreeWeights) {
    let tok = Tokenizer::chars_from_text(TEXT).unwrap();
    let weights =
        MmFreeWeights::random(MmFreeConfig::new(tok.vocab_size(), width, layers), 11).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_dir(&weights, dir.path(), SaveDtype::F32, None).unwrap();
    tok.save_dir(dir.path()).unwrap();
    (dir, weights)
}

fn start(dir: &Path, config: ServeConfig) -> Server {
    let tokenizer = Tokenizer::load_dir(dir).unwrap();
    let model = open_dir(dir, &tokenizer, &Device::flex()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Server::start(listener, model, tokenizer, config).unwrap()
}

/// What single-stream generation prints for `prompt`.
fn generated(
    model: &mut dyn TokenStepper,
    tok: &Tokenizer,
    prompt: &str,
    n: usize,
    s: SamplerConfig,
) -> String {
    model.reset();
    let mut sampler = Sampler::new(s).unwrap();
    let mut decoder = StreamDecoder::new(tok);
    let mut text = String::new();
    let ids = tok.encode(prompt).unwrap();
    generate(model, &ids, &mut sampler, n, None, &mut |id| {
        text.push_str(&decoder.push(id)?);
        Ok(())
    })
    .unwrap();
    text
}

fn completion(
    prompt: &str,
    max_tokens: usize,
    temperature: f64,
    seed: u64,
    stream: bool,
) -> String {
    json!({"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "seed": seed,
           "stream": stream, "model": "ignored"})
    .to_string()
}

#[test]
fn served_completions_equal_single_stream_generation_while_requests_join_and_leave() {
    let (dir, weights) = mmfree_dir(32, 2);
    let tok = Tokenizer::chars_from_text(TEXT).unwrap();
    let server = start(
        dir.path(),
        ServeConfig {
            max_batch: 3,
            ..ServeConfig::default()
        },
    );
    let addr = server.addr();
    let cases: Vec<(String, usize, f64, u64)> = (0..8)
        .map(|i| {
            // The last two prompts are longer than a prefill chunk (16 tokens).
            let prompt = match i {
                6 | 7 => &TEXT[i - 6..i + 14 * (i - 5)],
                _ => &TEXT[i..i + 1 + i % 5],
            };
            (prompt.to_string(), 5 + 9 * i, [0.0, 0.8][i % 2], i as u64)
        })
        .collect();
    // Eight requests at once over three batch places: they queue, join and leave mid-batch.
    let replies: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(p, n, t, seed)| {
                s.spawn(move || {
                    request(
                        addr,
                        "POST",
                        "/v1/completions",
                        &completion(p, *n, *t, *seed, false),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let r = h.join().unwrap();
                assert_eq!(r.status, 200, "{}", r.body);
                r.json()
            })
            .collect()
    });
    let mut engine = MmFreeEngine::new(&weights).unwrap();
    for ((prompt, n, t, seed), reply) in cases.iter().zip(&replies) {
        let s = SamplerConfig {
            temperature: *t,
            top_k: 0,
            top_p: 1.0,
            seed: *seed,
        };
        let want = generated(&mut engine, &tok, prompt, *n, s);
        let choice = &reply["choices"][0];
        assert_eq!(choice["text"], want, "prompt {prompt:?}");
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(reply["object"], "text_completion");
        assert_eq!(reply["usage"]["completion_tokens"], *n);
        assert_eq!(reply["usage"]["prompt_tokens"], prompt.chars().count());
    }
    let stats = server.stats();
    assert_eq!(stats.requests(Outcome::Completed), 8);
    assert_eq!(
        stats.generated_tokens(),
        cases.iter().map(|c| c.1 as u64).sum::<u64>()
    );
    server.shutdown().unwrap();
}

#[test]
fn streaming_sends_one_event_per_piece_then_done_and_stop_strings_end_it() {
    let (dir, _) = mmfree_dir(32, 2);
    let server = start(dir.path(), ServeConfig::default());
    let addr = server.addr();
    let whole = request(
        addr,
        "POST",
        "/v1/completions",
        &completion("to", 40, 0.0, 0, false),
    )
    .json();
    let text = whole["choices"][0]["text"].as_str().unwrap().to_string();
    let r = request(
        addr,
        "POST",
        "/v1/completions",
        &completion("to", 40, 0.0, 0, true),
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let events = r.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        r.body
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.len() >= 2, "{}", r.body);
    let streamed: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, text);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["usage"]["completion_tokens"], 40);
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    // A stop string taken from the middle of that text ends the completion before it.
    let stop: String = text.chars().skip(5).take(2).collect();
    let body =
        json!({"prompt": "to", "max_tokens": 40, "temperature": 0, "stop": [stop]}).to_string();
    let stopped = request(addr, "POST", "/v1/completions", &body).json();
    let cut = &text[..text.find(&stop).unwrap()];
    assert_eq!(stopped["choices"][0]["text"], cut);
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    server.shutdown().unwrap();
}

#[test]
fn bad_requests_get_400_naming_the_field() {
    let (dir, _) = mmfree_dir(16, 1);
    let server = start(
        dir.path(),
        ServeConfig {
            max_tokens: 100,
            max_prompt_tokens: 20,
            ..ServeConfig::default()
        },
    );
    let cases: [(&str, Option<&str>, &str); 11] = [
        ("{\"prompt\": \"to\",", None, "not valid JSON"),
        ("[1, 2]", None, "expected a JSON object"),
        ("{}", Some("prompt"), "is required"),
        (r#"{"prompt": 5}"#, Some("prompt"), "got a number"),
        (r#"{"prompt": "tox"}"#, Some("prompt"), "'x'"),
        (r#"{"prompt": [1, 99]}"#, Some("prompt"), "token id 99"),
        (
            r#"{"prompt": "to be or not to be: that"}"#,
            Some("prompt"),
            "limit of 20",
        ),
        (
            r#"{"prompt": "to", "max_tokens": "ten"}"#,
            Some("max_tokens"),
            "got a string",
        ),
        (
            r#"{"prompt": "to", "max_tokens": 101}"#,
            Some("max_tokens"),
            "limit of 100",
        ),
        (
            r#"{"prompt": "to", "temperature": -1}"#,
            Some("temperature"),
            "between 0 and 2",
        ),
        (r#"{"prompt": "to", "n": 3}"#, Some("n"), "not supported"),
    ];
    for (body, param, words) in cases {
        let r = request(server.addr(), "POST", "/v1/completions", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let e = &r.json()["error"];
        assert_eq!(e["param"].as_str(), param, "{body}: {}", r.body);
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains(words) && !msg.contains('\n'), "{body}: {msg}");
    }
    for body in [
        r#"{"prompt": "to", "stop": 7}"#,
        r#"{"prompt": "to", "stream": "yes"}"#,
        r#"{"prompt": "to", "top_p": 0}"#,
    ] {
        let r = request(server.addr(), "POST", "/v1/completions", body);
        assert_eq!(r.status, 400, "{body}");
    }
    assert_eq!(server.stats().requests(Outcome::Invalid), 14);
    assert_eq!(server.stats().active_streams(), 0);
    server.shutdown().unwrap();
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn full_queue_gets_503_with_retry_after_and_clients_that_leave_free_their_stream() {
    // Wide enough that 100,000 tokens take far longer than the test.
    let (dir, _) = mmfree_dir(256, 4);
    let config = ServeConfig {
        max_batch: 1,
        max_queue: 1,
        max_tokens: 100_000,
        ..ServeConfig::default()
    };
    let server = start(dir.path(), config);
    let stats = server.stats();
    let long = completion("to", 100_000, 0.8, 1, true);
    let running = send(server.addr(), "POST", "/v1/completions", &long);
    wait_for("a running stream", || stats.active_streams() == 1);
    let waiting = send(server.addr(), "POST", "/v1/completions", &long);
    wait_for("a queued request", || stats.queue_depth() == 1);
    let r = request(server.addr(), "POST", "/v1/completions", &long);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("busy"));
    let health = request(server.addr(), "GET", "/health", "").json();
    assert_eq!(
        (
            health["active_streams"].as_u64(),
            health["queue_depth"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let metrics = request(server.addr(), "GET", "/metrics", "").body;
    for line in [
        "nerve_active_streams 1",
        "nerve_queue_depth 1",
        "nerve_requests_total{outcome=\"rejected\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    assert!(metrics.contains("# TYPE nerve_tokens_per_second gauge"));
    // The running client hangs up: its place goes to the waiting one at once.
    drop(running);
    wait_for("the queued request to start", || {
        stats.queue_depth() == 0 && stats.active_streams() == 1
    });
    drop(waiting);
    wait_for("the batch to empty", || stats.active_streams() == 0);
    assert_eq!(stats.requests(Outcome::Cancelled), 2);
    let generated = stats.generated_tokens();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        stats.generated_tokens(),
        generated,
        "decoding went on for nobody"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    let (dir, _) = mmfree_dir(256, 4);
    let config = ServeConfig {
        max_batch: 2,
        max_tokens: 100_000,
        ..ServeConfig::default()
    };
    let server = start(dir.path(), config);
    let stats = server.stats();
    // Its socket buffers fill and stay full; the decoding loop must not wait for it.
    let silent = send(
        server.addr(),
        "POST",
        "/v1/completions",
        &completion("to", 100_000, 0.8, 1, true),
    );
    wait_for("the silent stream", || stats.active_streams() == 1);
    let r = request(
        server.addr(),
        "POST",
        "/v1/completions",
        &completion("be", 300, 0.8, 2, false),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["usage"]["completion_tokens"], 300);
    // The silent stream is still being decoded.
    wait_for("the finished request to leave", || {
        stats.active_streams() == 1
    });
    assert_eq!(stats.requests(Outcome::Cancelled), 0);
    drop(silent);
    wait_for("the silent stream to be freed", || {
        stats.active_streams() == 0
    });
    server.shutdown().unwrap();
}

#[test]
fn shutdown_finishes_running_streams_within_the_grace_time_and_cancels_after_it() {
    let (dir, _) = mmfree_dir(256, 4);
    for (grace, finishes) in [(Duration::from_secs(60), true), (Duration::ZERO, false)] {
        let config = ServeConfig {
            max_tokens: 100_000,
            shutdown_grace: grace,
            ..ServeConfig::default()
        };
        let server = start(dir.path(), config);
        let stats = server.stats();
        let n = if finishes { 300 } else { 100_000 };
        let client = send(
            server.addr(),
            "POST",
            "/v1/completions",
            &completion("to", n, 0.8, 2, true),
        );
        wait_for("a running stream", || stats.active_streams() == 1);
        let addr = server.addr();
        server.shutdown().unwrap();
        let r = read_reply(client);
        let events = r.events();
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        if finishes {
            assert_eq!(last["choices"][0]["finish_reason"], "length", "{last}");
            assert_eq!(last["usage"]["completion_tokens"], n);
        } else {
            assert!(
                last["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("shutting down"),
                "{last}"
            );
        }
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening after shutdown"
        );
    }
}

#[test]
fn spikegpt_batches_equal_single_sequences_and_serve() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lm/files/tiny_spikegpt");
    let device = Device::flex();
    let LanguageModel::SpikeGpt(model) = LanguageModel::load_dir(&dir, &device).unwrap() else {
        panic!("not SpikeGPT")
    };
    let mut batch = SpikeGptBatch::new(model.clone(), device.clone());
    let prompts: [&[u32]; 3] = [&[1, 2, 3, 4, 5], &[6, 7], &[8, 9, 10, 11]];
    let mut single = BurnStepper::new(LanguageModel::SpikeGpt(model), device.clone());
    let want: Vec<Vec<f32>> = prompts
        .iter()
        .map(|p| {
            single.reset();
            single.feed(p).unwrap()
        })
        .collect();
    // Sequences start at different steps and the middle one leaves early.
    let slots: Vec<usize> = prompts.iter().map(|_| batch.open()).collect();
    for t in 0..6 {
        let live: Vec<usize> = (0..3)
            .filter(|&i| t >= i && t - i < prompts[i].len())
            .collect();
        let tokens: Vec<u32> = live.iter().map(|&i| prompts[i][t - i]).collect();
        let chosen: Vec<usize> = live.iter().map(|&i| slots[i]).collect();
        batch.step(&chosen, &tokens).unwrap();
        for &i in &live {
            if t - i + 1 == prompts[i].len() {
                let got = batch.logits(slots[i]);
                let worst = got
                    .iter()
                    .zip(&want[i])
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(worst < 1e-4, "sequence {i}: {worst}");
                batch.close(slots[i]);
            }
        }
    }
    // A prompt read in one call equals it read token by token.
    let slot = batch.open();
    batch.prefill(slot, &prompts[0][..4]).unwrap();
    batch.step(&[slot], &prompts[0][4..]).unwrap();
    let worst = batch
        .logits(slot)
        .iter()
        .zip(&want[0])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-4, "prefill: {worst}");
    let server = start(&dir, ServeConfig::default());
    let r = request(
        server.addr(),
        "POST",
        "/v1/completions",
        &completion("to be", 12, 0.0, 0, false),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["usage"]["completion_tokens"], 12);
    server.shutdown().unwrap();
}

#[test]
fn short_load_test_64_streaming_clients_without_errors() {
    let (dir, _) = mmfree_dir(64, 2);
    let server = start(
        dir.path(),
        ServeConfig {
            max_batch: 16,
            max_queue: 64,
            ..ServeConfig::default()
        },
    );
    let report = run_load(&LoadConfig {
        addr: server.addr(),
        clients: 64,
        duration: Duration::from_secs(2),
        prompt: "to be".into(),
        max_tokens: 16,
        temperature: 0.8,
        pid: None,
    })
    .unwrap();
    println!("{}", report.table_row());
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert!(report.requests >= 64, "{} requests", report.requests);
    assert_eq!(report.tokens, 16 * report.requests);
    assert_eq!(report.ttft.len(), report.requests);
    assert!(!report.rss.is_empty());
    assert_eq!(
        server.stats().requests(Outcome::Completed) as usize,
        report.requests
    );
    server.shutdown().unwrap();
}

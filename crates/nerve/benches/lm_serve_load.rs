//! Load test of `nerve lm serve` at the published 370M MatMul-free shape (random ternary
//! weights, packed engine): 64 clients stream completions over loopback for a fixed time
//! against an in-process server, once per batch limit.
//!
//! Environment:
//! - `NERVE_BENCH_LOAD_SECS` seconds per run (default 60);
//! - `NERVE_BENCH_LOAD_CLIENTS` concurrent clients (default 64);
//! - `NERVE_BENCH_LOAD_BATCH` comma-separated `--max-batch` values (default `1,8,16`);
//! - `NERVE_BENCH_LOAD_TOKENS` `max_tokens` per request (default 64).
//!
//! Resident memory is this process's (server and clients; the clients' share is small). Each
//! run's throughput, time to first token and memory over time are drawn to
//! `target/tmp/lm_serve_load-batchN.png`.

use std::net::TcpListener;
use std::time::Duration;

use nerve::models::batch_decode::{BatchModel, EngineBatch};
use nerve::models::language_model::LmArch;
use nerve::models::mmfree::{MmFreeConfig, MmFreeEngine};
use nerve::serve::load::{run_load, LoadConfig, LoadReport};
use nerve::serve::{ServeConfig, Server};
use nerve::text::Tokenizer;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let secs: f64 = env_or("NERVE_BENCH_LOAD_SECS", "60")
        .parse()
        .expect("seconds");
    let clients: usize = env_or("NERVE_BENCH_LOAD_CLIENTS", "64")
        .parse()
        .expect("clients");
    let tokens: usize = env_or("NERVE_BENCH_LOAD_TOKENS", "64")
        .parse()
        .expect("tokens");
    let batches: Vec<usize> = env_or("NERVE_BENCH_LOAD_BATCH", "1,8,16")
        .split(',')
        .map(|b| b.trim().parse().expect("batch sizes"))
        .collect();
    let config = MmFreeConfig::published_370m();
    // One character per token id, so every sampled id has text: CJK and the planes after it
    // (all below the surrogates).
    let alphabet: String = (0..config.vocab_size as u32)
        .map(|i| char::from_u32(0x4E00 + i).expect("a scalar value"))
        .collect();
    let prompt: String = alphabet.chars().take(8).collect();
    println!(
        "370M shape (d={}, L={}, V={}), {clients} clients, {secs} s per run, max_tokens {tokens}",
        config.hidden_size, config.num_hidden_layers, config.vocab_size
    );
    for line in LoadReport::table_header().lines() {
        let first = if line.starts_with("|-") {
            "|---"
        } else {
            "| max batch "
        };
        println!("{first}{}", line.trim_start());
    }
    for max_batch in batches {
        let engine = MmFreeEngine::random(config.clone(), 0).expect("engine");
        let model = BatchModel {
            decoder: Box::new(EngineBatch::new(engine)),
            arch: LmArch::MmFree,
            bos: None,
            eos: None,
            description: "random 370M".into(),
        };
        let tokenizer = Tokenizer::chars_from_text(&alphabet).expect("tokenizer");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let serve = ServeConfig {
            max_batch,
            max_queue: clients,
            ..ServeConfig::default()
        };
        let server = Server::start(listener, model, tokenizer, serve).expect("server");
        let report = run_load(&LoadConfig {
            addr: server.addr(),
            clients,
            duration: Duration::from_secs_f64(secs),
            prompt: prompt.clone(),
            max_tokens: tokens,
            temperature: 0.8,
            pid: None,
        })
        .expect("load run");
        println!("| {max_batch} {}", report.table_row());
        let plot = format!(
            "{}/lm_serve_load-batch{max_batch}.png",
            env!("CARGO_TARGET_TMPDIR")
        );
        report
            .write_plot(std::path::Path::new(&plot))
            .expect("plot");
        if let Some(e) = &report.first_error {
            println!("  first error: {e}");
        }
        server.shutdown().expect("shutdown");
    }
}

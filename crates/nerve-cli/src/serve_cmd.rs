//! `nerve lm serve` and `nerve lm load-test`.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use clap::Args;
use nerve::models::batch_decode::open_dir;
use nerve::serve::load::{quantile, run_load, LoadConfig, LoadReport};
use nerve::serve::{ServeConfig, Server};
use nerve::text::Tokenizer;
use nerve::{Error, Result};

/// Options of `nerve lm serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Model directory (as for `nerve lm generate`): MatMul-free models decode on the packed
    /// ternary engine, SpikeGPT on Burn.
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Most sequences decoded together (continuous batching).
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Most requests waiting for a place in the batch; more get 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Longest prompt accepted, in tokens.
    #[arg(long, default_value_t = 2048)]
    max_prompt_tokens: usize,
    /// Largest max_tokens a request may ask for.
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
    /// Seconds running completions may go on after SIGTERM before they are cancelled.
    #[arg(long, default_value_t = 10.0)]
    shutdown_grace: f64,
    /// Model name reported in responses (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Threads of the decoding work (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Options of `nerve lm load-test`.
#[derive(Args, Debug)]
pub struct LoadTestArgs {
    /// Server address, host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Concurrent streaming clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds during which clients start requests.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Prompt of every request.
    #[arg(long, default_value = "ROMEO:")]
    prompt: String,
    /// max_tokens of every request.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Process id of the server, to sample its resident memory (same machine only).
    #[arg(long)]
    pid: Option<u32>,
    /// Also draw throughput, time to first token and the server's memory over the run (PNG).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Runs `nerve lm serve` until SIGTERM or Ctrl-C.
pub fn serve(args: ServeArgs) -> Result<()> {
    if !(args.shutdown_grace.is_finite() && args.shutdown_grace >= 0.0) {
        return Err(Error::invalid(
            "shutdown-grace",
            "must be a number of seconds >= 0",
        ));
    }
    let config = ServeConfig {
        max_batch: args.max_batch,
        max_queue: args.max_queue,
        max_prompt_tokens: args.max_prompt_tokens,
        max_tokens: args.max_tokens,
        shutdown_grace: Duration::from_secs_f64(args.shutdown_grace),
        model_name: args.name.clone().unwrap_or_else(|| {
            args.model
                .file_name()
                .map_or("nerve".into(), |n| n.to_string_lossy().into_owned())
        }),
        threads: args.threads,
        ..ServeConfig::default()
    };
    config.validate()?;
    let tokenizer = Tokenizer::load_dir(&args.model)?;
    let loading = Instant::now();
    let model = open_dir(&args.model, &tokenizer, &Device::flex())?;
    eprintln!(
        "loaded {} ({}) in {:.1} s",
        args.model.display(),
        model.description,
        loading.elapsed().as_secs_f64()
    );
    let addr = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&addr)
        .map_err(|e| Error::invalid("port", format!("cannot listen on {addr}: {e}")))?;
    let server = Server::start(listener, model, tokenizer, config)?;
    // Scripts wait for this line (and read the port from it when --port 0).
    println!("listening on http://{}", server.addr());
    server.wait_for_signal()?;
    eprintln!("stopped");
    Ok(())
}

fn print_report(r: &LoadReport) {
    println!("{}\n{}", LoadReport::table_header(), r.table_row());
    let memory = match r.peak_rss_kib() {
        0 => "server memory not sampled (give --pid)".to_string(),
        kib => format!("server peak RSS {:.0} MiB", kib as f64 / 1024.0),
    };
    println!(
        "{} requests, {} errors, {} tokens in {:.1} s: {:.1} tokens/s; TTFT p50 {:.0} ms, p99 {:.0} ms; \
         token gap p50 {:.1} ms, p99 {:.1} ms; {memory}",
        r.requests,
        r.errors,
        r.tokens,
        r.seconds,
        r.tokens_per_second(),
        quantile(&r.ttft, 0.5) * 1e3,
        quantile(&r.ttft, 0.99) * 1e3,
        quantile(&r.gaps, 0.5) * 1e3,
        quantile(&r.gaps, 0.99) * 1e3,
    );
}

/// Runs `nerve lm load-test`; fails if any request failed.
pub fn load_test(args: LoadTestArgs) -> Result<()> {
    let addr: SocketAddr = args
        .addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::invalid("addr", format!("'{}' is not host:port", args.addr)))?;
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        return Err(Error::invalid("seconds", "must be a positive number"));
    }
    let mut report = run_load(&LoadConfig {
        addr,
        clients: args.clients,
        duration: Duration::from_secs_f64(args.seconds),
        prompt: args.prompt,
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        pid: args.pid,
    })?;
    if args.pid.is_none() {
        // Without --pid the samples are this client's memory, not the server's.
        report.rss.clear();
    }
    print_report(&report);
    if let Some(path) = &args.plot {
        report.write_plot(path)?;
        println!("wrote {}", path.display());
    }
    if report.errors > 0 {
        return Err(Error::invalid(
            "load test",
            format!(
                "{} of {} requests failed; the first: {}",
                report.errors,
                report.errors + report.requests,
                report.first_error.as_deref().unwrap_or("?")
            ),
        ));
    }
    Ok(())
}

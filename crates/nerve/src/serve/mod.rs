//! `nerve lm serve`: an OpenAI-style completions server with continuous batching.
//!
//! One thread decodes ([`scheduler`]): every active request advances by one token per step,
//! through [`BatchDecoder::step`](crate::models::batch_decode::BatchDecoder::step) (for
//! MatMul-free models one pass over the packed weights for all of them); requests join and
//! leave between steps. The HTTP side ([`http`], on axum and
//! tokio) checks requests, queues them (bounded: 503 with `Retry-After` when full) and streams
//! text back as server-sent events. [`load`] is the load tester.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use nerve::models::batch_decode::open_dir;
//! use nerve::serve::{Server, ServeConfig};
//! use nerve::text::Tokenizer;
//!
//! let dir = std::path::Path::new("runs/lm-mmfree");
//! let tokenizer = Tokenizer::load_dir(dir)?;
//! let model = open_dir(dir, &tokenizer, &burn::tensor::Device::flex())?;
//! let server = Server::start(TcpListener::bind("127.0.0.1:8080")?, model, tokenizer, ServeConfig::default())?;
//! server.wait_for_signal()?; // SIGTERM or Ctrl-C: finish (or cancel after the grace time) and stop
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod http;
pub mod load;
pub mod request;
pub mod scheduler;
pub mod stats;
pub mod stop;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::Notify;

pub use request::{CompletionRequest, RequestError, RequestLimits};
pub use stats::{Outcome, ServerStats};

use crate::error::{Error, Result};
use crate::models::batch_decode::BatchModel;
use crate::text::Tokenizer;
use scheduler::{Scheduler, Shutdown};

/// A network or thread error of the server, as one line.
fn net(e: std::io::Error) -> Error {
    Error::invalid("server", e.to_string())
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Most sequences decoded together.
    pub max_batch: usize,
    /// Most requests waiting for a place in the batch; more get 503.
    pub max_queue: usize,
    /// Longest prompt, in tokens.
    pub max_prompt_tokens: usize,
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// `max_tokens` of a request that gives none (OpenAI's default is 16).
    pub default_max_tokens: usize,
    /// After SIGTERM, how long running completions may go on before they are cancelled.
    pub shutdown_grace: Duration,
    /// The name reported as `model`.
    pub model_name: String,
    /// Threads of the decoding loop's batch work (default: all cores).
    pub threads: Option<usize>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_batch: 16,
            max_queue: 64,
            max_prompt_tokens: 2048,
            max_tokens: 1024,
            default_max_tokens: 16,
            shutdown_grace: Duration::from_secs(10),
            model_name: "nerve".into(),
            threads: None,
        }
    }
}

impl ServeConfig {
    /// Refuses settings that would make the server useless, naming the option.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("max-batch", self.max_batch),
            ("max-prompt-tokens", self.max_prompt_tokens),
            ("max-tokens", self.max_tokens),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    runtime: Runtime,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    decoding: JoinHandle<()>,
    stop_http: Arc<Notify>,
    shutdown: Arc<Shutdown>,
    stats: Arc<ServerStats>,
    grace: Duration,
}

impl Server {
    /// Serves `model` on `listener` (bound by the caller, so port 0 works) until
    /// [`shutdown`](Self::shutdown).
    pub fn start(
        listener: TcpListener,
        model: BatchModel,
        tokenizer: Tokenizer,
        config: ServeConfig,
    ) -> Result<Self> {
        config.validate()?;
        let addr = listener.local_addr().map_err(net)?;
        listener.set_nonblocking(true).map_err(net)?;
        let tokenizer = Arc::new(tokenizer);
        let stats = Arc::new(ServerStats::default());
        let shutdown = Arc::new(Shutdown::default());
        let (jobs, job_rx) = mpsc::channel();
        let state = Arc::new(http::AppState {
            jobs,
            tokenizer: tokenizer.clone(),
            bos: model.bos,
            vocab_size: model.decoder.vocab_size(),
            limits: RequestLimits {
                max_tokens: config.max_tokens,
                default_max_tokens: config.default_max_tokens,
            },
            max_prompt_tokens: config.max_prompt_tokens,
            max_queue: config.max_queue,
            stats: stats.clone(),
            shutdown: shutdown.clone(),
            model_name: config.model_name.clone(),
            counter: AtomicU64::new(0),
        });
        let scheduler = Scheduler {
            decoder: model.decoder,
            tokenizer,
            eos: model.eos,
            max_batch: config.max_batch,
            stats: stats.clone(),
            shutdown: shutdown.clone(),
        };
        // The loop runs on a worker of its own pool: the hundreds of parallel sections of a
        // step then start as cheap joins, not as wake-ups of a pool from outside it.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.unwrap_or(0))
            .thread_name(|i| format!("nerve-decode-{i}"))
            .build()
            .map_err(|e| Error::invalid("threads", e.to_string()))?;
        let decoding = std::thread::Builder::new()
            .name("nerve-decode".into())
            .spawn(move || pool.install(|| scheduler.run(job_rx)))
            .map_err(net)?;
        // HTTP work is light next to decoding: two tokio workers are plenty.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nerve-http")
            .enable_all()
            .build()
            .map_err(net)?;
        let stop_http = Arc::new(Notify::new());
        let stop = stop_http.clone();
        let app = http::router(state);
        let http = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.notified().await })
                .await
        });
        Ok(Self {
            addr,
            runtime,
            http,
            decoding,
            stop_http,
            shutdown,
            stats,
            grace: config.shutdown_grace,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters (what `GET /metrics` reports).
    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// Stops: refuses new requests, lets running completions finish for up to the grace time
    /// (then cancels them), closes every connection and returns.
    pub fn shutdown(self) -> Result<()> {
        self.shutdown.begin(self.grace);
        // Stop accepting connections; axum then waits for the open responses to end.
        self.stop_http.notify_one();
        self.decoding
            .join()
            .map_err(|_| Error::invalid("server", "the decoding thread panicked"))?;
        let served = self
            .runtime
            .block_on(self.http)
            .map_err(|e| Error::invalid("server", e.to_string()))?;
        served.map_err(net)?;
        Ok(())
    }

    /// Blocks until SIGTERM or SIGINT (Ctrl-C), then [`shutdown`](Self::shutdown)s.
    pub fn wait_for_signal(self) -> Result<()> {
        self.runtime
            .block_on(async {
                #[cfg(unix)]
                {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                #[cfg(not(unix))]
                tokio::signal::ctrl_c().await?;
                Ok::<(), std::io::Error>(())
            })
            .map_err(net)?;
        self.shutdown()
    }
}

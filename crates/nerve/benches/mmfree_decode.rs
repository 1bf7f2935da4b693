//! Decode speed of the packed ternary MatMul-free LM engine at the published 370M shape,
//! against the memory-bandwidth limit measured in the same run.
//!
//! Run with `cargo bench -p nerve --bench mmfree_decode`. Environment variables shrink or
//! steer it:
//!
//! - `NERVE_BENCH_TOKENS` timed tokens per thread count (default 64), `NERVE_BENCH_WARMUP`
//!   untimed tokens before them (default 8);
//! - `NERVE_BENCH_PROMPT` prompt length of the prompt-reading table (default 256);
//! - `NERVE_BENCH_LAYERS` number of blocks (default 24, the published 370M model);
//! - `NERVE_BENCH_THREADS` comma-separated thread counts (default `1,2`);
//! - `NERVE_BENCH_BW_MIB` size of the bandwidth buffers in MiB (default 1024),
//!   `NERVE_BENCH_BW_PASSES` passes over each, the best one counts (default 5);
//! - `NERVE_ISA=avx512|avx2|portable` forces the decode kernel (the GEMV table below always
//!   times every kernel the CPU has);
//! - `NERVE_BENCH_GEMV=1` also times each GEMV shape of the model on its own (hot in cache),
//!   and all GEMVs of a token back to back without the float work between them, once per
//!   vector and batched (`NERVE_BENCH_BATCH`, comma-separated N, default `1,2,4,8,16`).
//!
//! Then batched decoding: N streams advanced together (`NERVE_BENCH_BATCH`, default
//! `1,2,4,8,16`). Prints a table, then one JSON line per thread count.
//!
//! The fraction of the limit compares the median token with the best of several bandwidth
//! passes measured afterwards; on a machine whose neighbours' load comes and goes, the
//! "paired" fraction is steadier: `NERVE_BENCH_PAIRED_ROUNDS` (default 8) times, 16 tokens
//! then one read pass, each pair its own fraction, and their median.

use std::hint::black_box;
use std::time::{Duration, Instant};

use nerve::kernels::ternary::{Kernel, QuantizedActivations, TernaryArena, TernaryMatrix};
use nerve::models::mmfree::engine::MmFreeEngine;
use nerve::models::mmfree::MmFreeConfig;
use rayon::prelude::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn threads_list() -> Vec<usize> {
    std::env::var("NERVE_BENCH_THREADS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|t| t.trim().parse().ok())
                .filter(|&t| t > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2])
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

/// `VmHWM` (peak resident set) from `/proc/self/status`, in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Best read bandwidth in bytes/s over `passes` sums of `buf` on the current rayon pool.
fn read_bandwidth(buf: &[u64], passes: usize) -> f64 {
    let threads = rayon::current_num_threads();
    let mut best = Duration::MAX;
    for _ in 0..passes {
        let t0 = Instant::now();
        let sum: u64 = if threads == 1 {
            sum_u64(buf)
        } else {
            buf.par_chunks(buf.len().div_ceil(threads * 8))
                .map(sum_u64)
                .reduce(|| 0, u64::wrapping_add)
        };
        black_box(sum);
        best = best.min(t0.elapsed());
    }
    std::mem::size_of_val(buf) as f64 / best.as_secs_f64()
}

/// Sums with eight independent accumulators so the loop is limited by memory, not by one
/// dependency chain.
fn sum_u64(xs: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            acc[k] = acc[k].wrapping_add(c[k]);
        }
    }
    let tail: u64 = chunks.remainder().iter().fold(0, |a, &b| a.wrapping_add(b));
    acc.iter().fold(tail, |a, &b| a.wrapping_add(b))
}

fn median(xs: &mut [Duration]) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

struct DecodeResult {
    threads: usize,
    min: Duration,
    median: Duration,
    mean: Duration,
    tokens: usize,
}

fn decode(engine: &mut MmFreeEngine, threads: usize, warmup: usize, timed: usize) -> DecodeResult {
    let vocab = engine.config().vocab_size;
    let token = |k: usize| ((k * 7919 + 13) % vocab) as u32;
    pool(threads).install(|| {
        engine.reset();
        for k in 0..warmup {
            black_box(engine.step(token(k)).expect("step"));
        }
        let mut times = Vec::with_capacity(timed);
        for k in 0..timed {
            let t0 = Instant::now();
            black_box(engine.step(token(warmup + k)).expect("step"));
            times.push(t0.elapsed());
        }
        let mean = times.iter().sum::<Duration>() / timed as u32;
        DecodeResult {
            threads,
            min: times.iter().copied().min().unwrap_or_default(),
            median: median(&mut times),
            mean,
            tokens: timed,
        }
    })
}

/// Times each distinct GEMV shape of the model alone with every available kernel
/// (bytes read / time = achieved GB/s).
fn gemv_shapes(cfg: &MmFreeConfig, threads: &[usize]) {
    let (d, i, v) = (cfg.hidden_size, cfg.intermediate(), cfg.vocab_size);
    println!("\nGEMV alone:");
    println!(
        "{:>14} {:>14} {:>8} {:>10} {:>10}",
        "shape", "kernel", "threads", "us/call", "GB/s"
    );
    for (rows, cols) in [(d, d), (2 * i, d), (d, i), (v, d)] {
        let signs: Vec<i8> = (0..rows * cols)
            .map(|k| ((k.wrapping_mul(2654435761) >> 7) % 3) as i8 - 1)
            .collect();
        let mut x = QuantizedActivations::new(cols);
        x.set_i8(&(0..cols).map(|k| (k % 251) as i8).collect::<Vec<_>>());
        let mut y = vec![0; rows];
        let reps = (500_000_000 / (rows * cols)).clamp(3, 1000);
        for kernel in Kernel::available() {
            // Each kernel on the layout it reads.
            let m = TernaryMatrix::from_signs_in(kernel.layout(), rows, cols, &signs, 1.0)
                .expect("matrix");
            for &t in threads {
                let best = pool(t).install(|| {
                    let mut best = Duration::MAX;
                    for _ in 0..5 {
                        let t0 = Instant::now();
                        for _ in 0..reps {
                            m.gemv_with(kernel, black_box(&x), &mut y);
                        }
                        best = best.min(t0.elapsed() / reps as u32);
                    }
                    best
                });
                println!(
                    "{:>14} {:>14} {:>8} {:>10.1} {:>10.2}",
                    format!("{rows}x{cols}"),
                    kernel.name(),
                    t,
                    best.as_secs_f64() * 1e6,
                    m.packed_bytes() as f64 / best.as_secs_f64() / 1e9
                );
            }
        }
    }
}

/// Runs every GEMV of one token back to back, on matrices packed in order of use in one
/// arena as the engine packs them (so the weights stream from memory, not cache), without the
/// float work between them: the kernel's own speed in the real layout.
fn gemv_stream(cfg: &MmFreeConfig, threads: &[usize], timed: usize) {
    let (v, d, i) = (cfg.vocab_size, cfg.hidden_size, cfg.intermediate());
    let mut shapes = Vec::new();
    for _ in 0..cfg.num_hidden_layers {
        shapes.extend([(d, d), (d, d), (d, d), (d, d), (2 * i, d), (d, i)]);
    }
    shapes.push((v, d));
    let mut arena = TernaryArena::new(&shapes);
    for (k, &(rows, cols)) in shapes.iter().enumerate() {
        let signs: Vec<i8> = (0..rows * cols)
            .map(|n| ((n.wrapping_add(k).wrapping_mul(2654435761) >> 7) % 3) as i8 - 1)
            .collect();
        arena.pack_signs(k, &signs, 1.0).expect("pack");
    }
    let mats = arena.finish().expect("arena");
    let bytes: usize = mats.iter().map(TernaryMatrix::packed_bytes).sum();
    let mut xd = QuantizedActivations::new(d);
    xd.set_i8(&(0..d).map(|k| (k % 251) as i8).collect::<Vec<_>>());
    let mut xi = QuantizedActivations::new(i);
    xi.set_i8(&(0..i).map(|k| (k % 241) as i8).collect::<Vec<_>>());
    let mut y = vec![0; v.max(2 * i)];
    println!(
        "\nAll GEMVs of a token back to back ({:.1} MiB):",
        bytes as f64 / (1 << 20) as f64
    );
    for &t in threads {
        let mut times: Vec<Duration> = pool(t).install(|| {
            (0..timed + 4)
                .map(|_| {
                    let t0 = Instant::now();
                    for m in &mats {
                        let x = if m.cols() == d { &xd } else { &xi };
                        m.gemv(black_box(x), &mut y[..m.rows()]);
                    }
                    t0.elapsed()
                })
                .skip(4)
                .collect()
        });
        let med = median(&mut times);
        println!(
            "  {t} thread(s): {:.3} ms, {:.2} GB/s",
            med.as_secs_f64() * 1e3,
            bytes as f64 / med.as_secs_f64() / 1e9
        );
    }
    gemv_batched(&mats, d, i, threads, timed);
}

/// The batch sizes N to time: `NERVE_BENCH_BATCH` (comma-separated), else 1, 2, 4, 8, 16.
fn batch_sizes() -> Vec<usize> {
    std::env::var("NERVE_BENCH_BATCH")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|t| t.trim().parse().ok())
                .filter(|&n| n > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2, 4, 8, 16])
}

/// Prints one row of a batched table: median time per step, N per second, and the ratio to
/// the first N of the thread count (`base`, set by the first row).
fn batch_row(threads: usize, n: usize, times: &mut [Duration], base: &mut Option<f64>) {
    let med = median(times);
    let rate = n as f64 / med.as_secs_f64();
    let base = *base.get_or_insert(rate);
    println!(
        "{threads:>8} {n:>4} {:>10.3} {rate:>12.1} {:>9.2}x",
        med.as_secs_f64() * 1e3,
        rate / base
    );
}

/// Decoding N sequences together (`MmFreeEngine::step_batch`: one weight pass per step for
/// all of them): median time per step and aggregate tokens per second against N = 1.
fn decode_batched(engine: &MmFreeEngine, threads: &[usize], timed: usize) {
    let sizes = batch_sizes();
    let vocab = engine.config().vocab_size;
    println!("\nBatched decode (step_batch), aggregate over N streams:");
    println!(
        "{:>8} {:>4} {:>10} {:>12} {:>10}",
        "threads", "N", "ms/step", "tokens/s", "vs N=1"
    );
    for &t in threads {
        let mut base = None;
        for &n in &sizes {
            let mut streams: Vec<_> = (0..n).map(|_| engine.new_stream()).collect();
            let steps = timed.div_ceil(n).max(4);
            let mut times: Vec<Duration> = pool(t).install(|| {
                (0..steps + 2)
                    .map(|k| {
                        let toks: Vec<u32> = (0..n)
                            .map(|s| ((k * 31 + s * 7 + 1) % vocab) as u32)
                            .collect();
                        let mut refs: Vec<_> = streams.iter_mut().collect();
                        let t0 = Instant::now();
                        engine.step_batch(&mut refs, &toks).expect("step");
                        t0.elapsed()
                    })
                    .skip(2)
                    .collect()
            });
            batch_row(t, n, &mut times, &mut base);
        }
    }
}

/// Reading a prompt: `prefill` (16 tokens per weight pass, the LM head once) against
/// `step_batch` one token at a time, prompt tokens per second.
fn prompt_reading(engine: &MmFreeEngine, threads: &[usize]) {
    let len = env_usize("NERVE_BENCH_PROMPT", 256).max(1);
    let vocab = engine.config().vocab_size;
    let prompt: Vec<u32> = (0..len).map(|k| ((k * 31 + 1) % vocab) as u32).collect();
    println!(
        "
Reading a prompt of {len} tokens:"
    );
    println!(
        "{:>8} {:>16} {:>16} {:>8}",
        "threads", "prefill tok/s", "stepwise tok/s", "ratio"
    );
    for &t in threads {
        let (prefill, stepwise) = pool(t).install(|| {
            let best = |f: &dyn Fn()| {
                (0..3)
                    .map(|_| {
                        let t0 = Instant::now();
                        f();
                        t0.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min)
            };
            let prefill = best(&|| {
                let mut s = engine.new_stream();
                engine.prefill(&mut s, &prompt).expect("prefill");
            });
            let stepwise = best(&|| {
                let mut s = engine.new_stream();
                for &tok in &prompt {
                    engine.step_batch(&mut [&mut s], &[tok]).expect("step");
                }
            });
            (len as f64 / prefill, len as f64 / stepwise)
        });
        println!(
            "{t:>8} {prefill:>16.1} {stepwise:>16.1} {:>7.2}x",
            prefill / stepwise
        );
    }
}

/// The same GEMVs with N activation vectors per matrix (`gemv_batch`: one weight pass from
/// memory for all N), as N decoding streams would run them: time per step and aggregate
/// steps per second against N = 1.
fn gemv_batched(mats: &[TernaryMatrix], d: usize, i: usize, threads: &[usize], timed: usize) {
    let sizes = batch_sizes();
    let vectors = |len: usize, n: usize| -> Vec<QuantizedActivations> {
        (0..n)
            .map(|s| {
                let mut x = QuantizedActivations::new(len);
                x.set_i8(
                    &(0..len)
                        .map(|k| ((k * 7 + s * 13) % 251) as i8)
                        .collect::<Vec<_>>(),
                );
                x
            })
            .collect()
    };
    println!("\nAll GEMVs of a token, N vectors per weight pass (gemv_batch):");
    println!(
        "{:>8} {:>4} {:>10} {:>12} {:>10}",
        "threads", "N", "ms/step", "vectors/s", "vs N=1"
    );
    for &t in threads {
        let mut base = None;
        for &n in &sizes {
            let (xd, xi) = (vectors(d, n), vectors(i, n));
            let (xd, xi): (Vec<_>, Vec<_>) = (xd.iter().collect(), xi.iter().collect());
            let mut y = vec![0; n * mats.iter().map(TernaryMatrix::rows).max().unwrap_or(0)];
            let mut times: Vec<Duration> = pool(t).install(|| {
                (0..timed.div_ceil(n).max(4) + 2)
                    .map(|_| {
                        let t0 = Instant::now();
                        for m in mats {
                            let xs = if m.cols() == d { &xd } else { &xi };
                            m.gemv_batch(black_box(xs), &mut y[..n * m.rows()]);
                        }
                        t0.elapsed()
                    })
                    .skip(2)
                    .collect()
            });
            batch_row(t, n, &mut times, &mut base);
        }
    }
}

/// The fraction of the bandwidth limit under the same conditions: `rounds` times, `tokens`
/// decoded (median time) then one read pass over `buf`, each pair giving its own fraction, so
/// that a neighbour's load that comes and goes hits both sides of a pair. Returns the fractions
/// in round order.
fn paired_fractions(
    engine: &mut MmFreeEngine,
    threads: usize,
    buf: &[u64],
    per_token: usize,
    rounds: usize,
    tokens: usize,
) -> Vec<f64> {
    (0..rounds)
        .map(|_| {
            let r = decode(engine, threads, 2, tokens);
            let bw = pool(threads).install(|| read_bandwidth(buf, 1));
            (1.0 / r.median.as_secs_f64()) / (bw / per_token as f64)
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let timed = env_usize("NERVE_BENCH_TOKENS", 64).max(1);
    let warmup = env_usize("NERVE_BENCH_WARMUP", 8);
    let threads = threads_list();
    let bw_mib = env_usize("NERVE_BENCH_BW_MIB", 1024).max(1);
    let passes = env_usize("NERVE_BENCH_BW_PASSES", 5).max(1);
    let mut cfg = MmFreeConfig::published_370m();
    cfg.num_hidden_layers = env_usize("NERVE_BENCH_LAYERS", cfg.num_hidden_layers).max(1);

    println!(
        "MatMul-free LM decode: L={} d={} I={} V={}, kernel {}, {} CPUs visible",
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.intermediate(),
        cfg.vocab_size,
        Kernel::detect().name(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let t0 = Instant::now();
    let mut engine = MmFreeEngine::random(cfg.clone(), 0).expect("engine");
    let build = t0.elapsed();
    let packed = engine.packed_bytes();
    let per_token = engine.bytes_per_token();
    println!(
        "built in {:.1} s; packed ternary weights {:.1} MiB, bytes read per token {:.1} MiB",
        build.as_secs_f64(),
        packed as f64 / (1 << 20) as f64,
        per_token as f64 / (1 << 20) as f64
    );

    let results: Vec<DecodeResult> = threads
        .iter()
        .map(|&t| decode(&mut engine, t, warmup, timed))
        .collect();
    // Peak before the bandwidth buffer exists: the engine and its decoding alone.
    let rss = peak_rss_mib();

    if std::env::var("NERVE_BENCH_GEMV").is_ok_and(|v| v == "1") {
        gemv_shapes(&cfg, &threads);
        gemv_stream(&cfg, &threads, timed);
    }
    decode_batched(&engine, &threads, timed);
    prompt_reading(&engine, &threads);

    // The packed weights live in a mapping advised to use transparent huge pages, so the
    // limit is measured on one too; a plain vector (4 KiB pages) is shown for comparison.
    let words = bw_mib * (1 << 20) / 8;
    let mut map = memmap2::MmapMut::map_anon(words * 8).expect("anonymous mapping");
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    // SAFETY: the mapping is page-aligned and `words * 8` bytes long.
    let huge: &mut [u64] =
        unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr() as *mut u64, words) };
    // Distinct values so no page is shared or skipped.
    for (k, v) in huge.iter_mut().enumerate() {
        *v = k as u64;
    }
    let bandwidth: Vec<f64> = threads
        .iter()
        .map(|&t| pool(t).install(|| read_bandwidth(huge, passes)))
        .collect();
    let rounds = env_usize("NERVE_BENCH_PAIRED_ROUNDS", 8);
    let paired: Vec<Vec<f64>> = threads
        .iter()
        .map(|&t| paired_fractions(&mut engine, t, huge, per_token, rounds, 16))
        .collect();
    drop(map);
    let plain: Vec<u64> = (0..words as u64).collect();
    let bandwidth_4k: Vec<f64> = threads
        .iter()
        .map(|&t| pool(t).install(|| read_bandwidth(&plain, passes)))
        .collect();
    drop(plain);

    println!(
        "\n{:>7} {:>8} {:>10} {:>10} {:>9} {:>10} {:>10} {:>11} {:>9}",
        "threads",
        "min ms",
        "median ms",
        "mean ms",
        "tok/s",
        "read GB/s",
        "(4K pages)",
        "limit tok/s",
        "fraction"
    );
    let mut json = Vec::new();
    let rows = results
        .iter()
        .zip(&bandwidth)
        .zip(&bandwidth_4k)
        .zip(&paired);
    for (((r, bw), bw_4k), pairs) in rows {
        let mut sorted = pairs.clone();
        sorted.sort_by(f64::total_cmp);
        let paired_median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let tps = 1.0 / r.median.as_secs_f64();
        let limit = bw / per_token as f64;
        println!(
            "{:>7} {:>8.3} {:>10.3} {:>10.3} {:>9.1} {:>10.2} {:>10.2} {:>11.1} {:>8.1}%",
            r.threads,
            r.min.as_secs_f64() * 1e3,
            r.median.as_secs_f64() * 1e3,
            r.mean.as_secs_f64() * 1e3,
            tps,
            bw / 1e9,
            bw_4k / 1e9,
            limit,
            100.0 * tps / limit
        );
        json.push(format!(
            concat!(
                "{{\"bench\":\"mmfree_decode\",\"layers\":{},\"hidden\":{},\"vocab\":{},",
                "\"kernel\":\"{}\",\"threads\":{},\"tokens\":{},\"min_ms\":{:.4},\"median_ms\":{:.4},",
                "\"mean_ms\":{:.4},\"tokens_per_s\":{:.2},\"read_bandwidth_gbs\":{:.3},",
                "\"read_bandwidth_4k_pages_gbs\":{:.3},",
                "\"bytes_per_token\":{},\"packed_bytes\":{},\"limit_tokens_per_s\":{:.2},",
                "\"fraction_of_limit\":{:.4},\"paired_fraction\":{:.4},\"peak_rss_mib\":{}}}"
            ),
            cfg.num_hidden_layers,
            cfg.hidden_size,
            cfg.vocab_size,
            Kernel::detect().name(),
            r.threads,
            r.tokens,
            r.min.as_secs_f64() * 1e3,
            r.median.as_secs_f64() * 1e3,
            r.mean.as_secs_f64() * 1e3,
            tps,
            bw / 1e9,
            bw_4k / 1e9,
            per_token,
            packed,
            limit,
            tps / limit,
            paired_median,
            rss.map_or("null".into(), |r| format!("{r:.1}")),
        ));
        let each: Vec<String> = pairs.iter().map(|f| format!("{:.1}", 100.0 * f)).collect();
        println!(
            "{:>7} paired (16 tokens, then one read pass, {} rounds): median {:.1}% of the limit [{}]",
            r.threads,
            pairs.len(),
            100.0 * paired_median,
            each.join(" ")
        );
    }
    println!(
        "peak RSS (VmHWM) after building and decoding, before the {bw_mib} MiB bandwidth buffer: {}",
        rss.map_or("unavailable".into(), |r| format!("{r:.1} MiB"))
    );
    for line in json {
        println!("{line}");
    }
}

#!/usr/bin/env bash
# Event transforms, Nerve against Tonic in the same run (issue 4: "Throughput of ToFrame on
# 10 M events, against Tonic measured in the same run").
#
#   bench/events/run.sh            # from any directory; takes about 5 minutes on 2 cores
#
# 1. Creates bench/.venv-events (git-ignored) and installs bench/events/requirements.txt
#    (Tonic 1.7.0 and NumPy; Tonic's numpy functions need no torch).
# 2. Builds crates/nerve/benches/to_frame.rs in release and has it write its 10 M synthetic
#    events (346x260 sensor, ~10 s, fixed seed) to a temporary .npy, plus Nerve's outputs on
#    the first 200k events; tonic_bench.py checks that Tonic computes the same there and
#    prints where the two differ by design.
# 3. Times Nerve, Tonic, Nerve, Tonic (10 timed repetitions after a warm-up each; Denoise on
#    1 M events, 3 repetitions, since Tonic's Denoise is a Python loop), with 2 threads each.
# 4. Prints the table (medians over both rounds) and keeps every JSON line in
#    bench/results/events-<date>.jsonl.
#
# NERVE_BENCH_EVENTS, NERVE_BENCH_REPS and NERVE_BENCH_DENOISE_EVENTS shrink the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

venv=bench/.venv-events
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r bench/events/requirements.txt
py="$venv/bin/python"

# Same thread budget for both sides (ToFrame is single-threaded in both, NumPy's add.at too).
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \
    RAYON_NUM_THREADS=2

cargo bench -q -p nerve --bench to_frame --no-run

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
out="bench/results/events-$(date +%Y-%m-%d).jsonl"
: > "$out"

"$py" bench/events/tonic_bench.py env | tee -a "$out"
printf '{"impl": "env", "rustc": "%s", "cpu": "%s"}\n' "$(rustc --version)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" | tee -a "$out"

cargo bench -q -p nerve --bench to_frame -- --write-npy "$tmp/events.npy" --check-dir "$tmp/check"
"$py" bench/events/tonic_bench.py check --events "$tmp/events.npy" --check-dir "$tmp/check" \
    | tee -a "$out"

for round in 1 2; do
    cargo bench -q -p nerve --bench to_frame -- --round "$round" | tee -a "$out"
    "$py" bench/events/tonic_bench.py time --events "$tmp/events.npy" --round "$round" \
        | tee -a "$out"
done

"$py" bench/events/tonic_bench.py env | tee -a "$out"
"$py" bench/events/tonic_bench.py summary "$out"
echo "JSON lines: $out"

#!/usr/bin/env bash
# Spiking-network training and inference, Nerve against snnTorch, SpikingJelly and Norse in the
# same run (issue 5). From any directory:
#
#   bench/run.sh            # every workload, 2 alternating rounds, 10 timed iterations each
#   bench/run.sh --quick    # 1 round; W2 n=4096 and W3 with fewer iterations (see below)
#   bench/run.sh --long     # also time to accuracy: W3 on full MNIST, snnTorch's tutorial
#                           # recipe for 3 epochs, then Nerve until it reaches that accuracy
#                           # (more than an hour on 2 cores)
#   bench/run.sh --only w2-512,w3     # a subset of the workloads
#   bench/run.sh --unfused  # also Nerve with NERVE_FUSED=0 (its step-by-step reference path)
#
# 1. Creates bench/.venv (git-ignored; NERVE_BENCH_VENV overrides) and installs the pinned
#    bench/peers/requirements.txt with --no-deps: torch (PyPI's wheel, which needs the NVIDIA
#    libraries to import, about 4 GB in all), snnTorch, SpikingJelly, Norse.
# 2. Builds crates/nerve/benches/snn_workloads/ in release once and runs that executable, so
#    that edits made to the tree during the run cannot change the code between rounds.
# 3. Checks that snnTorch and Nerve give the same spike counts on W1 with fixed weights (the
#    other peers' neurons differ by design; their counts are printed too).
# 4. For each workload, runs Nerve, snnTorch, SpikingJelly and Norse one after another, each in
#    its own process (peak RSS is per process), then again in the next round; 2 threads each
#    (RAYON_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS), warm-up iterations untimed.
# 5. Keeps every JSON line in bench/results/snn-<date>.jsonl and prints the tables
#    (bench/peers/summarize.py).
#
# Environment: NERVE_BENCH_ITERS / NERVE_BENCH_WARMUP override the iteration counts,
# NERVE_BENCH_DATA the MNIST folder (default: ../shared/data/mnist as `nerve train` finds it),
# NERVE_BENCH_VENV the venv folder, NERVE_BENCH_OMP_WAIT the peers' OMP_WAIT_POLICY (see below).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0
long=0
only=""
unfused=0
rounds=2
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; rounds=1 ;;
        --long) long=1 ;;
        --rounds) rounds="$2"; shift ;;
        --only) only="$2"; shift ;;
        --unfused) unfused=1 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

venv=${NERVE_BENCH_VENV:-bench/.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r bench/peers/requirements.txt
py="$venv/bin/python"
mkdir -p bench/results
out="${NERVE_BENCH_OUT:-bench/results/snn-$(date +%Y-%m-%d).jsonl}"
log="${out%.jsonl}.log"
: > "$out"
: > "$log"
peer() { "$py" bench/peers/peer_bench.py "$@" 2>>"$log"; }

export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 RAYON_NUM_THREADS=2
export PYTHONWARNINGS=ignore
# PyTorch's OpenMP threads spin while waiting for work. On a machine shared with other jobs the
# spinning threads take time slices from the working ones: on the 2-core development machine
# under a load of 6, snnTorch's W3 inference took 5.3 s per batch with the default policy and
# 0.7 s with PASSIVE. So the peers run PASSIVE unless NERVE_BENCH_OMP_WAIT says otherwise
# (`default` leaves OMP_WAIT_POLICY unset, the better choice on an idle machine).
omp_wait=${NERVE_BENCH_OMP_WAIT:-PASSIVE}
if [ "$omp_wait" = default ]; then unset OMP_WAIT_POLICY; else export OMP_WAIT_POLICY="$omp_wait"; fi

# Build once; run the executable itself (see 2. above).
bin=$(cargo bench -q -p nerve --bench snn_workloads --no-run --message-format=json 2>/dev/null |
    "$py" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "snn_workloads":
        print(m["executable"])')
if [ -z "$bin" ]; then
    echo "run.sh: could not build the snn_workloads bench" >&2
    exit 1
fi
nerve() { "$bin" "$@" --json 2>>"$log"; }

data=()
if [ -n "${NERVE_BENCH_DATA:-}" ]; then data=(--data "$NERVE_BENCH_DATA"); fi

peer env | tee -a "$out"
printf '{"impl": "env", "rustc": "%s", "nerve_commit": "%s", "dirty": %s, "cpu": "%s", "cores": %s, "fused": "%s"}\n' \
    "$(rustc --version)" "$(git rev-parse --short HEAD 2>/dev/null || echo none)" \
    "$( [ -z "$(git status --porcelain -- crates/nerve/src 2>/dev/null)" ] && echo false || echo true)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" "$(nproc)" \
    "${NERVE_FUSED:-1}" | tee -a "$out"

# Iterations: (workload, timed iterations, warm-up). W2 n=4096 costs seconds per iteration in
# every library and W3 about a second, so --quick gives them fewer.
iters=${NERVE_BENCH_ITERS:-10}
warm=${NERVE_BENCH_WARMUP:-2}
plan=("w1-dense $iters $warm" "w1-mnist $iters $warm" "w2-512 $iters $warm"
      "w2-4096 $iters $warm" "w3 $iters $warm")
if [ "$quick" = 1 ] && [ -z "${NERVE_BENCH_ITERS:-}" ]; then
    plan=("w1-dense 10 2" "w1-mnist 10 2" "w2-512 10 2" "w2-4096 3 1" "w3 5 1")
fi

echo "== agreement check (W1, fixed weights)" >&2
nerve check | tee -a "$out"
for lib in reference snntorch spikingjelly norse; do peer run check --lib "$lib" | tee -a "$out"; done

for round in $(seq 1 "$rounds"); do
    printf '{"impl": "load", "round": %s, "load1": %s}\n' "$round" \
        "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$out"
    echo "== round $round: SGEMM peak" >&2
    nerve sgemm --iters 5 --warmup 1 --round "$round" | tee -a "$out"
    peer run sgemm --lib torch --iters 5 --warmup 1 --round "$round" | tee -a "$out"
    for entry in "${plan[@]}"; do
        read -r w n wu <<<"$entry"
        if [ -n "$only" ] && [[ ",$only," != *",$w,"* ]]; then continue; fi
        echo "== round $round: $w ($n timed iterations after $wu warm-up)" >&2
        libs=(snntorch spikingjelly norse)
        modes=(infer train)
        case "$w" in w2-*) libs+=(norse-published) modes=(forward fwd_bwd) ;; esac
        # One process per mode and library, so each peak RSS belongs to that mode alone (Burn
        # keeps a forward's autodiff graph until a backward runs through it, so forward-only
        # iterations on the autodiff device would otherwise inflate the next mode's peak).
        for mode in "${modes[@]}"; do
            nerve "$w" --modes "$mode" --iters "$n" --warmup "$wu" --round "$round" \
                "${data[@]}" | tee -a "$out"
            if [ "$unfused" = 1 ]; then
                NERVE_FUSED=0 nerve "$w" --modes "$mode" --iters "$n" --warmup "$wu" \
                    --round "$round" "${data[@]}" | tee -a "$out"
            fi
            for lib in "${libs[@]}"; do
                peer run "$w" --lib "$lib" --modes "$mode" --iters "$n" --warmup "$wu" \
                    --round "$round" "${data[@]}" | tee -a "$out"
            done
        done
    done
done
printf '{"impl": "load", "round": "end", "load1": %s}\n' "$(cut -d' ' -f1 /proc/loadavg)" |
    tee -a "$out"

if [ "$long" = 1 ]; then
    echo "== time to accuracy: snnTorch tutorial recipe, 3 epochs" >&2
    peer run tta --lib snntorch --epochs 3 "${data[@]}" | tee -a "$out"
    target=$(grep '"mode": "tta"' "$out" | grep '"snntorch"' | tail -1 |
        "$py" -c 'import json,sys; print(json.loads(sys.stdin.read())["test_accuracy"])')
    echo "== time to accuracy: Nerve until $target %" >&2
    nerve tta --epochs 3 --eval-every 50 --target "$target" "${data[@]}" | tee -a "$out"
fi

echo >&2
"$py" bench/peers/summarize.py "$out"
echo "JSON lines: $out (stderr of every run: $log)"

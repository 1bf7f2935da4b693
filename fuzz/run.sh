#!/usr/bin/env bash
# Fuzzes every file reader (events, IDX, checkpoints, model directories, tokenizers, .pth) and the server's request parser for a bounded time: ./fuzz/run.sh [SECONDS_PER_TARGET]
# (default 60), one target after another, one libFuzzer job each.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Seeds are written
# into fuzz/corpus/<target>/ by each target on start-up; crashes land in
# fuzz/artifacts/<target>/ and each target's log in fuzz/artifacts/<target>.log. Set
# CARGO_BUILD_JOBS to limit the build's parallelism. Exits with status 1 if any target
# found a crash.
set -uo pipefail

per_target=${1:-60}
targets=(nmnist prophesee stmnist aedat events_auto idx checkpoint hf_checkpoint tokenizer nq nir openspike_case recipe pth completion_request)

cd "$(dirname "$0")/.." || exit 1
# Resolve the same dependency versions as the main workspace.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
mkdir -p fuzz/artifacts

cargo +nightly fuzz build || exit 1

failed=()
for t in "${targets[@]}"; do
    echo "=== $t: ${per_target}s"
    log="fuzz/artifacts/$t.log"
    if ! cargo +nightly fuzz run "$t" -- -max_total_time="$per_target" -print_final_stats=1 \
        >"$log" 2>&1; then
        failed+=("$t")
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "$t: ${runs:-?} executions, ${cov:-cov: ?}, log $log"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashes or errors in: ${failed[*]} (see fuzz/artifacts/)"
    exit 1
fi
echo "all targets ran ${per_target}s without a crash"

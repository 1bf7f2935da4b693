#!/usr/bin/env bash
# Runs every recipe (recipes/*.toml) with `nerve train --config` and prints a table: the result,
# the tutorial's or paper's figure, ours, the wall time and the peak RSS. Each recipe's further
# rows ([[recipe.rows]]: the same options with some changed) run after it.
#
#   bench/repro.sh                                # every recipe
#   bench/repro.sh population-coding-fmnist       # some, by name
#   REPRO_ARGS="--epochs 1 --train-limit 2000" bench/repro.sh   # shorter runs, same table
#
# Run folders go to runs/repro/<recipe>[-<row>]/ (checkpoint, history, plots); the table is
# also written to bench/results/repro-<date>.md. Needs python3 (3.11+, for tomllib) to read
# the recipes' [recipe] tables; peak RSS comes from GNU time (/usr/bin/time) when installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release -q -p nerve-cli
# A private copy, so that rebuilding the tree during the runs cannot change the program.
nerve=$(mktemp -d)/nerve
cp target/release/nerve "$nerve"
names=${*:-$(ls recipes/*.toml | xargs -n1 basename | sed 's/\.toml$//')}
extra=(${REPRO_ARGS:-})
mkdir -p bench/results runs/repro
table=bench/results/repro-$(date +%Y%m%d-%H%M).md
{
  echo "| recipe | result | metric | figure | ours | wall time | peak RSS |"
  echo "|---|---|---|---|---|---|---|"
} >"$table"

# Rows of a recipe, one per line: label <TAB> metric <TAB> figure <TAB> extra args (TAB-separated).
rows() {
  python3 - "$1" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    meta = tomllib.load(f).get("recipe", {})
metric = meta.get("metric", "test accuracy")
fig = lambda v: "" if v is None else str(v)
print("\t".join([meta.get("label", "") or "as published", metric, fig(meta.get("figure"))]))
for row in meta.get("rows", []):
    print("\t".join([row["label"], metric, fig(row.get("figure"))] + row.get("args", [])))
EOF
}

for name in $names; do
  file=recipes/$name.toml
  [[ -f $file ]] || { echo "no recipe $file" >&2; exit 2; }
  i=0
  while IFS=$'\t' read -r -a row; do
    label=${row[0]} metric=${row[1]:-} figure=${row[2]:-}
    args=("${row[@]:3}")
    out=runs/repro/$name
    if [[ $i -gt 0 ]]; then out=$out-row$i; fi
    rm -rf "$out"
    log=$out.log
    echo "== $name: $label -> $out" >&2
    start=$SECONDS
    if [[ -x /usr/bin/time ]]; then
      /usr/bin/time -f "peak-rss-kb %M" -o "$out.rss" \
        "$nerve" train --config "$file" --out "$out" "${args[@]}" "${extra[@]}" 2>&1 | tee "$log" >&2 || true
    else
      "$nerve" train --config "$file" --out "$out" "${args[@]}" "${extra[@]}" 2>&1 | tee "$log" >&2 || true
    fi
    wall=$((SECONDS - start))
    case $metric in
      "relative error") ours=$(grep -o 'relative error: [^ ]*' "$log" | tail -1 | cut -d' ' -f3 || true) ;;
      *) ours=$(grep -o 'test accuracy: [0-9.]*%' "$log" | tail -1 | cut -d' ' -f3 || true) ;;
    esac
    if [[ -z $ours ]]; then
      # A run that did not finish names its error (e.g. data that is not on this machine).
      ours="failed: $(grep -m1 -o 'error: .*' "$log" | cut -c8-90 | tr '|' '/' || true)"
    fi
    rss=$([[ -f $out.rss ]] && awk '/peak-rss-kb/ {printf "%.0f MiB", $2/1024}' "$out.rss" || echo "n/a")
    printf '| %s | %s | %s | %s | %s | %d s | %s |\n' \
      "$name" "$label" "$metric" "${figure:-–}" "$ours" "$wall" "$rss" >>"$table"
    i=$((i + 1))
  done < <(rows "$file")
done
echo
cat "$table"
echo "(table written to $table)"

#!/usr/bin/env python3
"""Prints the tables of bench/run.sh from its JSON lines (Markdown, as in BENCHMARKS.md).

  summarize.py FILE.jsonl

Times: the median over every timed iteration of all rounds of a (workload, mode, library);
ratio = peer / Nerve (above 1: Nerve is faster). Peak RSS: the highest VmHWM of the runs.
Standard library only, so it runs without the venv.
"""

import json
import statistics
import sys
from collections import defaultdict

PEERS = ["nerve-unfused", "snntorch", "spikingjelly", "norse", "norse-published"]
NAMES = {
    "nerve": "Nerve",
    "snntorch": "snnTorch",
    "spikingjelly": "SpikingJelly",
    "norse": "Norse",
    "norse-published": "Norse, no loop",
    "nerve-unfused": "Nerve unfused",
    "torch": "PyTorch",
    "reference": "NumPy reference",
}
WORKLOADS = ["w1-dense", "w1-mnist", "w2-512", "w2-4096", "w3"]
MODES = ["train", "infer", "fwd_bwd", "forward"]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def fmt_ms(v):
    if v is None:
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def main(path):
    rows = load(path)
    times = defaultdict(list)
    peaks = defaultdict(float)
    rates = defaultdict(list)
    for r in rows:
        key = (r.get("workload"), r.get("mode"), r.get("impl"))
        if "times_ms" in r:
            times[key].extend(r["times_ms"])
            if r.get("peak_rss_mib") is not None:
                peaks[key] = max(peaks[key], r["peak_rss_mib"])
        if r.get("mode") in ("train_rate", "infer_rate", "peak"):
            rates[key].append(r)

    impls = ["nerve"] + [p for p in PEERS if any(k[2] == p for k in times)]
    med = {k: statistics.median(v) for k, v in times.items() if v}

    print("Median ms per iteration; in brackets: that library's time / Nerve's (above 1: Nerve")
    print("is faster).")
    print()
    head = ["workload", "mode"] + [NAMES[i] for i in impls]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    cells_rss = []
    for w in WORKLOADS:
        for m in MODES:
            if not any((w, m, i) in med for i in impls):
                continue
            nerve = med.get((w, m, "nerve"))
            cells = [w, m]
            for i in impls:
                v = med.get((w, m, i))
                if v is None:
                    cells.append("–")
                elif i == "nerve" or not nerve:
                    cells.append(fmt_ms(v))
                else:
                    cells.append(f"{fmt_ms(v)} ({v / nerve:.2f}×)")
            print("| " + " | ".join(cells) + " |")
            cells_rss.append(
                [w, m] + [f"{peaks[(w, m, i)]:.0f}" if (w, m, i) in peaks else "–" for i in impls]
            )
    print()
    print("Peak RSS (VmHWM, MiB) of the process after the mode ran (bench/run.sh runs each mode")
    print("in its own process; a run of several modes in one process reports the running peak):")
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for cells in cells_rss:
        print("| " + " | ".join(cells) + " |")

    print()
    sg = {i: med.get(("sgemm", "matmul", i)) for i in ("nerve", "torch")}
    for i, v in sg.items():
        if v:
            print(f"SGEMM 2048³ median: {NAMES[i]} {2 * 2048**3 / (v * 1e-3) / 1e9:.1f} GFLOP/s")
    peak_nerve = sg.get("nerve")
    for w in ("w1-dense", "w1-mnist"):
        for m in ("train", "infer"):
            for i in impls:
                v = med.get((w, m, i))
                rate = rates.get((w, m + "_rate", i))
                if v and rate:
                    flop = rate[0]["flop"]
                    g = flop / (v * 1e-3) / 1e9
                    share = ""
                    if peak_nerve and i.startswith("nerve"):
                        share = f" ({100 * g / (2 * 2048**3 / (peak_nerve * 1e-3) / 1e9):.0f}% of Burn's SGEMM)"
                    if sg.get("torch") and not i.startswith("nerve"):
                        share = f" ({100 * g / (2 * 2048**3 / (sg['torch'] * 1e-3) / 1e9):.0f}% of torch's SGEMM)"
                    if w == "w1-dense" or i == "nerve":
                        print(f"{w} {m}: {NAMES[i]} {g:.1f} GFLOP/s{share}")

    checks = [r for r in rows if r.get("workload") == "check" and "hidden_spikes" in r]
    if checks:
        print()
        print("W1 agreement check (fixed weights and input, B = 8, T = 25):")
        for r in checks:
            print(
                f"  {NAMES.get(r['impl'], r['impl'])}: hidden spikes {r['hidden_spikes']:.0f}, "
                f"output spikes {r['output_spikes']:.0f}, per output neuron "
                f"{[int(v) for v in r['output_per_neuron']]}"
            )

    tta = [r for r in rows if r.get("mode") == "tta"]
    if tta:
        print()
        for r in tta:
            print(
                f"time to accuracy: {NAMES.get(r['impl'], r['impl'])} reached={r.get('reached')} "
                f"test accuracy {r.get('test_accuracy')} after {r.get('train_s')} s of training "
                f"({r.get('batches')} batches)"
            )
        by = {r["impl"]: r for r in tta}
        if "nerve" in by and "snntorch" in by and by["nerve"].get("reached"):
            ratio = by["nerve"]["train_s"] / by["snntorch"]["train_s"]
            print(f"  Nerve / snnTorch training time: {ratio:.2f} (target ≤ 0.33)")

    loads = [r for r in rows if r.get("impl") == "load"]
    if loads:
        print()
        print("load average (1 min) at each round: " + ", ".join(f"{r['load1']}" for r in loads))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])

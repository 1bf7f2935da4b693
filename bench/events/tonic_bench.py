#!/usr/bin/env python3
"""Tonic side of bench/events/run.sh (see there), with three subcommands:

  check   --events E.npy --check-dir DIR   compare Tonic with Nerve's outputs on the first
                                           200,000 events (written by the Rust bench)
  time    --events E.npy [--round N]       time Tonic's transforms on all events
  summary FILE.jsonl                       print the Nerve/Tonic table from the JSON lines

Each transform is called as Tonic's own transform class calls it (tonic.functional.*_numpy),
with the parameters that make it compute what Nerve computes; the differences that remain
are printed by `check`. Output: one JSON line per transform or check.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import tonic
import tonic.functional as F

SENSOR = (346, 260, 2)  # Tonic's (W, H, P)
CHECK_EVENTS = 200_000
WINDOW_US = 50_000
EVENT_COUNT = 500_000
TIME_BINS = 20
VOXEL_BINS = 10
TAU_US = 50_000.0
DENOISE_US = 10_000


def emit(obj):
    print(json.dumps(obj), flush=True)


def load(path):
    ev = np.load(path)
    assert ev.dtype.names == ("x", "y", "t", "p"), ev.dtype
    return ev


def time_surface(ev):
    # One surface over the whole stream, as Nerve's ToTimeSurface: a single window of
    # span + 1 us (Tonic's windows exclude their end), so the surface is taken at t_end + 1.
    span = int(ev["t"][-1] - ev["t"][0])
    return F.to_timesurface_numpy(ev, SENSOR, dt=span + 1, tau=TAU_US)


def check(args):
    ev = load(args.events)[:CHECK_EVENTS].copy()
    d = args.check_dir
    nerve = lambda name: np.load(os.path.join(d, name + ".npy"))  # noqa: E731

    def report(transform, agree, detail):
        emit({"impl": "check", "transform": transform, "agree": bool(agree), "detail": detail})

    t = F.to_frame_numpy(ev, SENSOR, time_window=WINDOW_US, include_incomplete=True)
    n = nerve("to_frame_time_window")
    report(
        "to_frame time_window",
        t.shape == n.shape and np.array_equal(t, n),
        f"include_incomplete=True: Tonic {t.shape} vs Nerve {n.shape}, equal="
        f"{t.shape == n.shape and np.array_equal(t, n)}",
    )
    t0 = F.to_frame_numpy(ev, SENSOR, time_window=WINDOW_US)
    report(
        "to_frame time_window (Tonic default)",
        np.array_equal(t0, n[: len(t0)]),
        f"include_incomplete=False drops the last partial window: {len(t0)} frames vs "
        f"{len(n)}, first {len(t0)} equal={np.array_equal(t0, n[: len(t0)])}, "
        f"events dropped={int(n.sum() - t0.sum())}",
    )

    t = F.to_frame_numpy(ev, SENSOR, event_count=CHECK_EVENTS // 10)
    n = nerve("to_frame_event_count")
    report(
        "to_frame event_count",
        t.shape == n.shape and np.array_equal(t, n),
        f"Tonic {t.shape} vs Nerve {n.shape}",
    )

    t = F.to_frame_numpy(ev, SENSOR, n_time_bins=TIME_BINS)
    n = nerve("to_frame_n_time_bins")
    w = nerve("to_frame_tonic_time_bins")
    same_as_windows = t.shape[0] <= w.shape[0] and np.array_equal(t, w[: len(t)])
    report(
        "to_frame n_time_bins",
        same_as_windows,
        f"Tonic bins are windows of floor(span/B) us from t_min and drop events past "
        f"t_min + B*floor(span/B); they equal Nerve's time_window(floor(span/B)) frames: "
        f"{same_as_windows}. Nerve's own bins ((t-t_min)*B/(span+1)) keep every event: "
        f"Tonic sum {int(t.sum())}, Nerve sum {int(n.sum())}, "
        f"frames differing {int((t != n).any(axis=(1, 2, 3)).sum())} of {len(t)}",
    )

    t = F.to_voxel_grid_numpy(ev.copy(), SENSOR, n_time_bins=VOXEL_BINS)[:, 0]
    n1 = nerve("to_voxel_grid_plus_one")[:VOXEL_BINS]
    n = nerve("to_voxel_grid")
    ok = np.allclose(t, n1, rtol=1e-5, atol=1e-4)
    report(
        "to_voxel_grid",
        ok,
        f"Tonic places events at B*(t-t0)/span, Nerve at (B-1)*(t-t0)/span; Tonic(B) equals "
        f"Nerve(B+1)[:B]: {ok} (max |diff| {float(np.abs(t - n1).max()):.2e}); "
        f"Tonic(B) vs Nerve(B) max |diff| {float(np.abs(t - n).max()):.3f}",
    )

    t = time_surface(ev)[0]
    n = nerve("to_time_surface") * np.exp(-1.0 / TAU_US)
    ok = t.shape == n.shape and np.allclose(t, n, rtol=1e-5, atol=1e-6)
    report(
        "to_time_surface",
        ok,
        f"one Tonic window of span+1 us vs Nerve's surface at t_end times exp(-1/tau): {ok} "
        f"(max |diff| {float(np.abs(t - n).max()):.2e})",
    )

    kept_t = len(F.denoise_numpy(ev.copy(), filter_time=DENOISE_US))
    with open(os.path.join(d, "denoise_kept.txt")) as f:
        kept_n = int(f.read())
    kept_8 = denoise_8(ev)
    report(
        "denoise",
        kept_t == kept_n,
        f"kept events: Tonic {kept_t}, Nerve {kept_n} of {len(ev)}; Tonic looks at the 4 "
        f"edge neighbours and treats every pixel as having fired at t=0 (so events before "
        f"filter_time pass), Nerve at the 8 neighbours with no initial support; Tonic's loop "
        f"changed to Nerve's rule keeps {kept_8} (= Nerve: {kept_8 == kept_n})",
    )


def denoise_8(ev):
    """Tonic's denoise loop with Nerve's rule: 8 neighbours, no pixel has fired at first."""
    w, h = SENSOR[0], SENSOR[1]
    last = [[None] * h for _ in range(w)]  # Python ints: no overflow against a sentinel
    kept = 0
    for x, y, t in zip(ev["x"].tolist(), ev["y"].tolist(), ev["t"].tolist()):
        ok = False
        for nx in range(max(x - 1, 0), min(x + 2, w)):
            for ny in range(max(y - 1, 0), min(y + 2, h)):
                seen = last[nx][ny]
                if (nx, ny) != (x, y) and seen is not None and t - seen < DENOISE_US:
                    ok = True
        kept += ok
        last[x][y] = t
    return kept


def timed(fn, reps, setup=None, warmup=True):
    if warmup:
        fn(setup() if setup else None)
    times, out = [], None
    for _ in range(reps):
        arg = setup() if setup else None
        start = time.perf_counter()
        out = fn(arg)
        times.append((time.perf_counter() - start) * 1e3)
    return times, out


def time_all(args):
    ev = load(args.events)
    n = len(ev)
    reps = max(1, int(os.environ.get("NERVE_BENCH_REPS", "10")))
    n_dn = min(n, int(os.environ.get("NERVE_BENCH_DENOISE_EVENTS", "1000000")))

    def emit_time(transform, params, events, times, out):
        med = statistics.median(times)
        emit(
            {
                "impl": "tonic",
                "version": tonic.__version__,
                "round": args.round,
                "transform": transform,
                "params": params,
                "events": events,
                "reps": len(times),
                "times_ms": times,
                "median_ms": med,
                "events_per_s": events / (med / 1e3),
                "output_shape": list(np.shape(out)),
                "output_sum": float(np.sum(out)) if np.ndim(out) else float(out),
            }
        )

    for params, kw in [
        ("time_window=50ms", dict(time_window=WINDOW_US, include_incomplete=True)),
        ("event_count=500000", dict(event_count=EVENT_COUNT, include_incomplete=True)),
        ("n_time_bins=20", dict(n_time_bins=TIME_BINS)),
    ]:
        times, out = timed(lambda _: F.to_frame_numpy(ev, SENSOR, **kw), reps)
        emit_time("to_frame", params, n, times, out)
        del out

    # to_voxel_grid_numpy rewrites p in place (0 -> -1), so each call gets a fresh copy,
    # made outside the timing.
    times, out = timed(
        lambda e: F.to_voxel_grid_numpy(e, SENSOR, n_time_bins=VOXEL_BINS),
        reps,
        setup=ev.copy,
    )
    emit_time("to_voxel_grid", "n_time_bins=10", n, times, out)
    del out

    times, out = timed(lambda _: time_surface(ev), reps)
    emit_time("to_time_surface", "tau=50ms, one surface at the end", n, times, out)
    del out

    # A pure-Python loop in Tonic: fewer events and repetitions, and no warm-up (nothing to
    # compile or cache).
    part = ev[:n_dn].copy()
    times, out = timed(
        lambda _: F.denoise_numpy(part, filter_time=DENOISE_US), min(reps, 3), warmup=False
    )
    emit_time("denoise", "filter_time=10ms", n_dn, times, len(out))


def summary(args):
    rows = {}
    env = []
    with open(args.file) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r["impl"] in ("nerve", "tonic"):
                key = (r["transform"], r["params"])
                d = rows.setdefault(key, {"events": r["events"]})
                d.setdefault(r["impl"], []).extend(r["times_ms"])
                d[r["impl"] + "_version"] = r["version"]
            elif r["impl"] == "check":
                env.append(("agree" if r["agree"] else "DIFFER") + f"  {r['transform']}: {r['detail']}")
            elif r["impl"] == "env":
                env.append(" ".join(f"{k}={v}" for k, v in r.items() if k != "impl"))
    print()
    head = (
        f"| {'transform':<16} | {'params':<34} | {'events':>10} | {'Nerve ms':>9} | "
        f"{'Tonic ms':>9} | {'Tonic/Nerve':>11} | {'Nerve Mev/s':>11} | {'Tonic Mev/s':>11} |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for (transform, params), d in rows.items():
        nm = statistics.median(d["nerve"]) if "nerve" in d else float("nan")
        tm = statistics.median(d["tonic"]) if "tonic" in d else float("nan")
        ev = d["events"]
        print(
            f"| {transform:<16} | {params:<34} | {ev:>10} | {nm:>9.1f} | {tm:>9.1f} | "
            f"{tm / nm:>10.1f}x | {ev / nm / 1e3:>11.1f} | {ev / tm / 1e3:>11.2f} |"
        )
    print()
    for line in env:
        print(line)


def env_line(args):
    load1 = os.getloadavg()[0]
    emit(
        {
            "impl": "env",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tonic": tonic.__version__,
            "cpus": os.cpu_count(),
            "loadavg_1min": load1,
            "threads": os.environ.get("OMP_NUM_THREADS"),
        }
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--events", required=True)
    c.add_argument("--check-dir", required=True)
    t = sub.add_parser("time")
    t.add_argument("--events", required=True)
    t.add_argument("--round", default="0")
    s = sub.add_parser("summary")
    s.add_argument("file")
    sub.add_parser("env")
    args = p.parse_args()
    {"check": check, "time": time_all, "summary": summary, "env": env_line}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Peer side of bench/run.sh: the workloads of crates/nerve/benches/snn_workloads.rs in
snnTorch, SpikingJelly and Norse, timed the same way and printed as the same JSON lines.

  peer_bench.py run --lib LIB WORKLOAD [--iters N] [--warmup N] [--modes a,b] [--round R]
                    [--data DIR] [--epochs E]
  peer_bench.py env                      versions of Python, torch and the peers

LIB: snntorch, spikingjelly, norse, norse-published (W2 only: the 2024 Open Neuromorphic
entry, one LIFBoxCell call over the whole [T, B, n] tensor, so no time loop), reference
(check only: NumPy, float64).

WORKLOAD: sgemm, w1-dense, w1-mnist, w2-512, w2-4096, w3, check, tta (snntorch only).
See BENCHMARKS.md ("SNN training and inference against snnTorch, SpikingJelly and Norse")
for the configuration of each library and where they differ from Nerve.
"""

import argparse
import gzip
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

STEPS = 25
BATCH = 128
LR = 1e-2


def status_mib(field):
    """A VmHWM/VmRSS line of /proc/self/status in MiB (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024.0)
    except OSError:
        pass
    return None


def emit(obj):
    print(json.dumps(obj), flush=True)


# ---------------------------------------------------------------- data


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find_file(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise SystemExit(f"peer_bench: {stem}[.gz] not found in {folder}")


def load_mnist(folder):
    """(train_images, train_labels, test_images, test_labels) as uint8 arrays."""
    stems = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    return [read_idx(find_file(folder, s)) for s in stems]


def default_data_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    for cand in (
        os.environ.get("NERVE_DATA", ""),
        os.path.join(root, "..", "shared", "data", "mnist"),
        os.path.join(root, "shared", "data", "mnist"),
    ):
        if cand and os.path.isdir(cand):
            return cand
    raise SystemExit("peer_bench: MNIST not found; pass --data DIR")


# ---------------------------------------------------------------- timing


class Bench:
    def __init__(self, args, lib_version):
        self.args = args
        self.base = {
            "impl": args.lib,
            "version": lib_version,
            "workload": args.workload,
            "round": args.round,
            "threads": int(torch_threads()),
        }

    def wants(self, mode):
        return self.args.modes is None or mode in self.args.modes.split(",")

    def record(self, extra):
        rec = dict(self.base)
        rec.update(extra)
        emit(rec)

    def time_mode(self, mode, step, extra=None):
        # Resident memory with the libraries loaded and the model and input built.
        rss_before = status_mib("VmRSS")
        for _ in range(self.args.warmup):
            step()
        times = []
        for _ in range(self.args.iters):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
        rec = {
            "mode": mode,
            "iters": self.args.iters,
            "warmup": self.args.warmup,
            "median_ms": round(statistics.median(times), 3),
            "min_ms": round(min(times), 3),
            "times_ms": [round(t, 3) for t in times],
            "peak_rss_mib": status_mib("VmHWM"),
            "rss_before_mib": rss_before,
        }
        rec.update(extra or {})
        self.record(rec)
        return statistics.median(times)


def torch_threads():
    import torch

    return torch.get_num_threads()


# ---------------------------------------------------------------- models


def det_uniform(a, b, salt):
    """Same values as det_uniform in snn_workloads.rs (exact in float64)."""
    return ((a * 7919 + b * 104729 + salt * 31337) % 65521) / 65521.0 * 2.0 - 1.0


def check_weights(inputs, outputs, layer):
    """[inputs, outputs] float32 weights of the W1 agreement check."""
    a = np.arange(inputs, dtype=np.int64)[:, None]
    b = np.arange(outputs, dtype=np.int64)[None, :]
    return ((det_uniform(a, b, layer) + 0.05) / math.sqrt(inputs)).astype(np.float32)


def check_input(batch):
    k = np.arange(STEPS * batch * 784, dtype=np.uint64)
    h = (k * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return ((h >> np.uint64(24)) < 64).astype(np.float32).reshape(STEPS, batch, 784)


def build(lib, workload):
    """(model, forward(model, x) -> spikes [T, B, ...], version)."""
    import torch
    from torch import nn

    w2 = workload.startswith("w2")
    n = int(workload.split("-")[1]) if w2 else 0

    if lib == "snntorch":
        import snntorch as snn
        from snntorch import surrogate, utils

        if workload == "w3":
            # snnTorch tutorial 6, as published.
            grad = surrogate.fast_sigmoid(slope=25)
            net = nn.Sequential(
                nn.Conv2d(1, 12, 5),
                nn.MaxPool2d(2),
                snn.Leaky(beta=0.5, spike_grad=grad, init_hidden=True),
                nn.Conv2d(12, 64, 5),
                nn.MaxPool2d(2),
                snn.Leaky(beta=0.5, spike_grad=grad, init_hidden=True),
                nn.Flatten(),
                nn.Linear(64 * 4 * 4, 10),
                snn.Leaky(beta=0.5, spike_grad=grad, init_hidden=True, output=True),
            )

            def forward(net, x):
                # x: the static image [B, 1, 28, 28], presented at every step.
                utils.reset(net)
                return torch.stack([net(x)[0] for _ in range(STEPS)])

            return net, forward, snn.__version__

        class Fc(nn.Module):
            """snnTorch tutorial 5 layout: a Python loop over time, each layer per step."""

            def __init__(self, sizes, beta, grad):
                super().__init__()
                self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
                kw = {} if grad is None else {"spike_grad": grad}
                self.lifs = nn.ModuleList(snn.Leaky(beta=beta, **kw) for _ in sizes[1:])

            def forward(self, x):
                mems = [lif.init_leaky() for lif in self.lifs]
                out = []
                for xt in x:
                    h = xt
                    for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                        h, mems[i] = lif(fc(h), mems[i])
                    out.append(h)
                return torch.stack(out)

        if w2:
            # The published entry: Leaky(beta=0.95) with snnTorch's defaults (atan).
            net = Fc([n, n], 0.95, None)
        else:
            net = Fc([784, 1000, 10], 0.95, surrogate.fast_sigmoid(slope=25))
        return net, lambda net, x: net(x), snn.__version__

    if lib == "spikingjelly":
        import spikingjelly
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        try:
            from importlib.metadata import version

            sj_version = version("spikingjelly")
        except Exception:
            sj_version = getattr(spikingjelly, "__version__", "?")

        def lif(beta):
            # Leaky as closely as LIFNode gets: H = beta*V + X (decay_input=False,
            # tau = 1/(1-beta)), soft reset by the threshold, detached. Differences: the
            # reset is applied in the same step (so it decays with beta), spikes fire at
            # H >= 1 (snnTorch: > 1), and SoftSign(25) is 12.5x fast_sigmoid(25).
            return neuron.LIFNode(
                tau=1.0 / (1.0 - beta),
                decay_input=False,
                v_threshold=1.0,
                v_reset=None,
                detach_reset=True,
                surrogate_function=surrogate.SoftSign(alpha=25.0),
                step_mode="m",
            )

        if w2:
            # The published entry: LIFNode(tau=5, ATan), multi-step, its defaults otherwise.
            net = nn.Sequential(
                layer.Linear(n, n),
                neuron.LIFNode(tau=5.0, surrogate_function=surrogate.ATan(), step_mode="m"),
            )
        elif workload == "w3":
            net = nn.Sequential(
                layer.Conv2d(1, 12, 5, step_mode="m"),
                layer.MaxPool2d(2, step_mode="m"),
                lif(0.5),
                layer.Conv2d(12, 64, 5, step_mode="m"),
                layer.MaxPool2d(2, step_mode="m"),
                lif(0.5),
                layer.Flatten(step_mode="m"),
                layer.Linear(64 * 4 * 4, 10, step_mode="m"),
                lif(0.5),
            )
        else:
            net = nn.Sequential(
                layer.Linear(784, 1000, step_mode="m"),
                lif(0.95),
                layer.Linear(1000, 10, step_mode="m"),
                lif(0.95),
            )

        def forward(net, x):
            functional.reset_net(net)
            if workload == "w3":
                x = x.unsqueeze(0).repeat(STEPS, 1, 1, 1, 1)
            return net(x)

        return net, forward, sj_version

    if lib in ("norse", "norse-published"):
        import norse
        from norse.torch import SequentialState
        from norse.torch.module.lif_box import LIFBoxCell
        from norse.torch.functional.lif_box import LIFBoxParameters

        def box(beta, alpha, method="super"):
            # v <- v + dt/tau (i - v), so dt/tau = 1 - beta gives the decay beta; the input is
            # scaled by 1 - beta too, and the reset is to 0. SuperSpike with alpha is
            # 1/(alpha|u| + 1)^2: fast_sigmoid(alpha).
            return LIFBoxCell(
                LIFBoxParameters(
                    tau_mem_inv=torch.as_tensor((1.0 - beta) / 1e-3),
                    v_leak=torch.as_tensor(0.0),
                    v_th=torch.as_tensor(1.0),
                    v_reset=torch.as_tensor(0.0),
                    method=method,
                    alpha=torch.as_tensor(alpha),
                )
            )

        if w2:
            # The published parameters: tau_mem_inv 100 (dt 1 ms: decay 0.9), alpha 100.
            net = SequentialState(nn.Linear(n, n), box(0.9, 100.0))
        elif workload == "w3":
            net = SequentialState(
                nn.Conv2d(1, 12, 5),
                nn.MaxPool2d(2),
                box(0.5, 25.0),
                nn.Conv2d(12, 64, 5),
                nn.MaxPool2d(2),
                box(0.5, 25.0),
                nn.Flatten(),
                nn.Linear(64 * 4 * 4, 10),
                box(0.5, 25.0),
            )
        else:
            net = SequentialState(
                nn.Linear(784, 1000), box(0.95, 25.0), nn.Linear(1000, 10), box(0.95, 25.0)
            )

        if lib == "norse-published":
            if not w2:
                raise SystemExit("peer_bench: norse-published is the W2 entry only")

            def forward(net, x):
                # One cell call on [T, B, n]: T is treated as a batch axis (no dynamics).
                return net(x)[0]

        else:

            def forward(net, x):
                # Norse's documented use: the stateful model called once per time step.
                state = None
                out = []
                for t in range(STEPS if workload == "w3" else x.shape[0]):
                    z, state = net(x if workload == "w3" else x[t], state)
                    out.append(z)
                return torch.stack(out)

        return net, forward, norse.__version__

    raise SystemExit(f"peer_bench: unknown library {lib}")


def ce_rate_loss(lib):
    """snnTorch's ce_rate_loss; the others get the same formula in plain torch."""
    import torch.nn.functional as F

    if lib == "snntorch":
        import snntorch.functional as SF

        return SF.ce_rate_loss()

    def loss(spk, y):
        t = spk.shape[0]
        return F.cross_entropy(spk.flatten(0, 1), y.repeat(t))

    return loss


# ---------------------------------------------------------------- workloads


def run_classifier(bench, lib, workload, x, y, flops=None):
    import torch

    torch.manual_seed(bench.args.seed)
    net, forward, _ = build(lib, workload)
    if bench.wants("infer"):
        net.eval()
        spikes = [0.0]

        def infer():
            with torch.no_grad():
                spikes[0] = forward(net, x).sum().item()

        med = bench.time_mode("infer", infer)
        if flops:
            bench.record(
                {
                    "mode": "infer_rate",
                    "gflops": round(flops[1] / (med * 1e-3) / 1e9, 3),
                    "flop": flops[1],
                    "output_spikes": spikes[0],
                }
            )
    if bench.wants("train"):
        net.train()
        loss_fn = ce_rate_loss(lib)
        opt = torch.optim.Adam(net.parameters(), lr=LR, betas=(0.9, 0.999))
        last = [0.0]

        def train():
            spk = forward(net, x)
            loss = loss_fn(spk, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            last[0] = loss.item()

        med = bench.time_mode("train", train)
        if flops:
            bench.record(
                {
                    "mode": "train_rate",
                    "gflops": round(flops[0] / (med * 1e-3) / 1e9, 3),
                    "flop": flops[0],
                    "last_loss": last[0],
                }
            )


def w1_flops():
    rows = STEPS * BATCH
    fwd = 2.0 * rows * (784 * 1000 + 1000 * 10)
    return 2.0 * fwd + 2.0 * rows * 1000 * 10, fwd


def first_images(args, n):
    images, labels, _, _ = load_mnist(args.data or default_data_dir())
    return images[:n], labels[:n]


def w1(bench, args, dense):
    import torch

    if dense:
        g = torch.Generator().manual_seed(0xD1)
        x = torch.rand(STEPS, BATCH, 784, generator=g)
        y = torch.arange(BATCH) % 10
    else:
        images, labels = first_images(args, BATCH)
        p = torch.from_numpy(images.reshape(BATCH, 784).astype(np.float32) / 255.0)
        g = torch.Generator().manual_seed(7)
        # Bernoulli rate code, as snntorch.spikegen.rate (one draw per step and pixel).
        x = (torch.rand(STEPS, BATCH, 784, generator=g) < p).float()
        y = torch.from_numpy(labels.astype(np.int64))
    run_classifier(bench, args.lib, args.workload, x, y, w1_flops())


def w3(bench, args):
    import torch

    images, labels = first_images(args, BATCH)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(BATCH, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    run_classifier(bench, args.lib, args.workload, x, y)


def w2(bench, args):
    import torch

    n = int(args.workload.split("-")[1])
    torch.manual_seed(args.seed)
    net, forward, _ = build(args.lib, args.workload)
    x = torch.randn(500, 16, n)
    spikes = [0.0]
    if bench.wants("forward"):

        # Without autograd, as Nerve's forward (on Burn's plain device) and the W1/W3
        # inference modes.
        def fwd():
            with torch.no_grad():
                spikes[0] = forward(net, x).sum().item()

        bench.time_mode("forward", fwd, {"n": n})
    if bench.wants("fwd_bwd"):

        def fwd_bwd():
            net.zero_grad(set_to_none=True)
            out = forward(net, x).sum()
            spikes[0] = out.item()
            out.backward()

        bench.time_mode("fwd_bwd", fwd_bwd, {"n": n})
    bench.record({"mode": "spikes", "n": n, "output_spikes": spikes[0]})


def sgemm(bench, args):
    import torch

    n = 2048
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    flop = 2.0 * n**3
    best = [math.inf]

    def mm():
        t0 = time.perf_counter()
        torch.mm(a, b)
        best[0] = min(best[0], time.perf_counter() - t0)

    med = bench.time_mode("matmul", mm, {"n": n, "flop": flop})
    bench.record(
        {
            "mode": "peak",
            "n": n,
            "gflops_median": round(flop / (med * 1e-3) / 1e9, 3),
            "gflops_best": round(flop / best[0] / 1e9, 3),
        }
    )


def lif_reference(cur, beta=0.95):
    """snnTorch Leaky (subtract reset, delayed) in float64 NumPy."""
    mem = np.zeros(cur.shape[1:])
    out = []
    for c in cur:
        reset = (mem > 1.0).astype(np.float64)
        mem = beta * mem + c - reset
        out.append((mem > 1.0).astype(np.float64))
    return np.stack(out)


def check(bench, args):
    b = 8
    x = check_input(b)
    w1 = check_weights(784, 1000, 0)
    w2 = check_weights(1000, 10, 1)
    if args.lib == "reference":
        hidden = lif_reference(x.astype(np.float64) @ w1.astype(np.float64))
        out = lif_reference(hidden @ w2.astype(np.float64))
    else:
        import torch

        net, forward, _ = build(args.lib, "w1-dense")
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        hidden_spikes = []
        with torch.no_grad():
            for lin, w in zip(linears, (w1, w2)):
                lin.weight.copy_(torch.from_numpy(w.T.copy()))
                lin.bias.zero_()
            # Count the hidden layer's spikes with a hook on the second Linear's input.
            hook = linears[1].register_forward_hook(
                lambda m, inp, out: hidden_spikes.append(float(inp[0].sum()))
            )
            net.eval()
            out = forward(net, torch.from_numpy(x)).numpy()
            hook.remove()
        hidden = np.array([sum(hidden_spikes)])
    per_neuron = out.sum(axis=(0, 1))
    bench.record(
        {
            "mode": "spike_counts",
            "hidden_spikes": float(hidden.sum()),
            "output_spikes": float(out.sum()),
            "output_per_neuron": [float(v) for v in per_neuron],
        }
    )


def tta(bench, args):
    """snnTorch's tutorial recipe on full MNIST: training time and test accuracy per epoch."""
    import torch
    import snntorch.functional as SF

    if args.lib != "snntorch":
        raise SystemExit("peer_bench: tta is implemented for snntorch (the tutorial recipe)")
    tr_x, tr_y, te_x, te_y = load_mnist(args.data or default_data_dir())
    tr_x = torch.from_numpy(tr_x.astype(np.float32) / 255.0).unsqueeze(1)
    te_x = torch.from_numpy(te_x.astype(np.float32) / 255.0).unsqueeze(1)
    tr_y = torch.from_numpy(tr_y.astype(np.int64))
    te_y = torch.from_numpy(te_y.astype(np.int64))
    if args.train_limit:
        tr_x, tr_y = tr_x[: args.train_limit], tr_y[: args.train_limit]
    if args.test_limit:
        te_x, te_y = te_x[: args.test_limit], te_y[: args.test_limit]
    torch.manual_seed(args.seed)
    net, forward, _ = build("snntorch", "w3")
    loss_fn = SF.ce_rate_loss()
    opt = torch.optim.Adam(net.parameters(), lr=LR, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(args.seed)
    train_s = 0.0
    batches = 0
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(len(tr_x), generator=g)
        net.train()
        for i in range(len(tr_x) // BATCH):  # drop_last=True, as the tutorial's DataLoader
            idx = order[i * BATCH : (i + 1) * BATCH]
            spk = forward(net, tr_x[idx])
            loss = loss_fn(spk, tr_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            batches += 1
        train_s += time.perf_counter() - t0
        net.eval()
        right = 0
        with torch.no_grad():
            for i in range(0, len(te_x), 500):
                spk = forward(net, te_x[i : i + 500])
                right += int((spk.sum(0).argmax(1) == te_y[i : i + 500]).sum())
        acc = 100.0 * right / len(te_x)
        bench.record(
            {
                "mode": "tta_point",
                "epoch": epoch,
                "batches": batches,
                "train_s": round(train_s, 3),
                "test_accuracy": acc,
                "loss": float(loss),
            }
        )
    bench.record(
        {
            "mode": "tta",
            "reached": True,
            "test_accuracy": acc,
            "train_s": round(train_s, 3),
            "batches": batches,
            "peak_rss_mib": status_mib("VmHWM"),
        }
    )


def env():
    import torch

    info = {
        "impl": "env",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }
    from importlib.metadata import version

    for pkg in ("snntorch", "spikingjelly", "norse", "numpy"):
        try:
            info[pkg] = version(pkg)
        except Exception:
            info[pkg] = None
    emit(info)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("env")
    r = sub.add_parser("run")
    r.add_argument("workload")
    r.add_argument("--lib", required=True)
    r.add_argument("--iters", type=int, default=10)
    r.add_argument("--warmup", type=int, default=2)
    r.add_argument("--modes")
    r.add_argument("--round", type=int, default=1)
    r.add_argument("--data")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--train-limit", type=int)
    r.add_argument("--test-limit", type=int)
    r.add_argument("--json", action="store_true", help="accepted for symmetry with the Rust side")
    args = ap.parse_args()

    import torch

    # The same budget as Nerve's rayon pool: OMP_NUM_THREADS, 2 in run.sh.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    if args.cmd == "env":
        env()
        return
    if args.iters < 1:
        raise SystemExit("peer_bench: --iters must be at least 1")
    version = "" if args.lib == "reference" else build_version(args.lib)
    bench = Bench(args, version)
    w = args.workload
    if w == "sgemm":
        sgemm(bench, args)
    elif w in ("w1-dense", "w1-mnist"):
        w1(bench, args, w == "w1-dense")
    elif w in ("w2-512", "w2-4096"):
        w2(bench, args)
    elif w == "w3":
        w3(bench, args)
    elif w == "check":
        check(bench, args)
    elif w == "tta":
        tta(bench, args)
    else:
        raise SystemExit(f"peer_bench: unknown workload {w}")


def build_version(lib):
    from importlib.metadata import version

    name = {"norse-published": "norse"}.get(lib, lib)
    try:
        return version(name)
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())

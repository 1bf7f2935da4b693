"""NIR interop for Nerve's tests, run with a Python that has the `nir` package (1.0.x).

`write DIR`: writes graphs built with the nir package (fully connected with heterogeneous
time constants, CubaLIF, a recurrent LIF, a convolution with pooling and flattening), an input
for each, and the outputs of an independent NumPy forward-Euler simulation of snnTorch's import
convention (dt = 1e-4, current first, spike when v > threshold, reset to v_reset in the same
step, a cycle delayed one step). Inputs are redrawn until no membrane comes within 1e-3 of a
threshold, so float32 rounding cannot flip a spike.

`read FILE...`: reads every file with nir.read (type checking on) and prints one JSON line per
file: its node names and types.
"""
import json
import sys

import numpy as np
import nir

DT = np.float32(1e-4)
T, B = 12, 2


def f32(x):
    return np.asarray(x, dtype=np.float32)


def lif_params(rng, n, scale=1.0):
    tau = f32(rng.uniform(2e-4, 8e-4, n))
    return dict(tau=tau, r=f32(tau / DT) * f32(scale), v_leak=f32(np.zeros(n)),
                v_threshold=f32(rng.uniform(0.4, 1.0, n)), v_reset=f32(np.zeros(n)))


class Lif:
    """Forward Euler of LIF (or CubaLIF when tau_syn is given)."""

    def __init__(self, p, n):
        shape = (B, *n) if isinstance(n, tuple) else (B, n)
        self.p, self.v, self.i = p, np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.margin = np.inf

    def __call__(self, x):
        p = self.p
        if "tau_syn" in p:
            self.i = self.i + DT / p["tau_syn"] * (p["w_in"] * x - self.i)
            x = self.i
            tau = p["tau_mem"]
        else:
            tau = p["tau"]
        self.v = self.v + DT / tau * (p["v_leak"] - self.v + p["r"] * x)
        self.margin = min(self.margin, float(np.abs(self.v - p["v_threshold"]).min()))
        s = (self.v > p["v_threshold"]).astype(np.float32)
        self.v = np.where(s > 0, p["v_reset"], self.v).astype(np.float32)
        return s


def conv2d(x, w, b, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, o, h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1), np.float32)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = xp[:, :, i:i + kh, j:j + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w) + b
    return out


def sumpool2(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5))


def fc(rng):
    p1, p2 = lif_params(rng, 7), lif_params(rng, 3)
    w1, b1 = f32(rng.normal(0, 0.6, (7, 5))), f32(rng.normal(0, 0.1, 7))
    w2, b2 = f32(rng.normal(0, 0.8, (3, 7))), f32(rng.normal(0, 0.1, 3))
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([5])), "fc1": nir.Affine(w1, b1),
               "lif1": nir.LIF(**p1), "fc2": nir.Affine(w2, b2), "lif2": nir.LIF(**p2),
               "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")])
    n1, n2 = Lif(p1, 7), Lif(p2, 3)

    def step(x):
        return n2(n1(x @ w1.T + b1) @ w2.T + b2), n2

    return g, (T, B, 5), step, [n1, n2]


def cuba(rng):
    n = 4
    tau_syn = f32(rng.uniform(2e-4, 5e-4, n))
    tau_mem = f32(rng.uniform(3e-4, 9e-4, n))
    p = dict(tau_syn=tau_syn, tau_mem=tau_mem, r=f32(tau_mem / DT), v_leak=f32(np.zeros(n)),
             v_threshold=f32(rng.uniform(0.5, 1.2, n)), v_reset=f32(np.zeros(n)),
             w_in=f32(tau_syn / DT))
    w = f32(rng.normal(0, 0.5, (n, 6)))
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([6])), "w": nir.Linear(w),
               "cuba": nir.CubaLIF(**p), "output": nir.Output(output_type=np.array([n]))},
        edges=[("input", "w"), ("w", "cuba"), ("cuba", "output")])
    neuron = Lif(p, n)

    def step(x):
        return neuron(x @ w.T), neuron

    return g, (T, B, 6), step, [neuron]


def recurrent(rng):
    p = lif_params(rng, 5)
    w_in, b_in = f32(rng.normal(0, 0.7, (5, 3))), f32(rng.normal(0, 0.1, 5))
    w_rec = f32(rng.normal(0, 0.4, (5, 5)))
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([3])), "fc": nir.Affine(w_in, b_in),
               "lif": nir.LIF(**p), "rec": nir.Linear(w_rec),
               "output": nir.Output(output_type=np.array([5]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
               ("lif", "output")])
    neuron = Lif(p, 5)
    prev = [np.zeros((B, 5), np.float32)]

    def step(x):
        s = neuron(x @ w_in.T + b_in + prev[0] @ w_rec.T)
        prev[0] = s
        return s, neuron

    return g, (T, B, 3), step, [neuron]


def conv(rng):
    w = f32(rng.normal(0, 0.5, (2, 1, 3, 3)))
    b = f32(rng.normal(0, 0.1, 2))
    p1 = lif_params(rng, 2 * 6 * 6)
    p1 = {k: v.reshape(2, 6, 6) for k, v in p1.items()}
    w2, b2 = f32(rng.normal(0, 0.8, (4, 18))), f32(rng.normal(0, 0.1, 4))
    p2 = lif_params(rng, 4)
    g = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([1, 6, 6])),
               "conv": nir.Conv2d(input_shape=(6, 6), weight=w, stride=1, padding=1,
                                  dilation=1, groups=1, bias=b),
               "lif1": nir.LIF(**p1),
               "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                     padding=np.array([0, 0])),
               "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0,
                                   end_dim=-1),
               "fc": nir.Affine(w2, b2), "lif2": nir.LIF(**p2),
               "output": nir.Output(output_type=np.array([4]))},
        edges=[("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"),
               ("flat", "fc"), ("fc", "lif2"), ("lif2", "output")])
    n1, n2 = Lif(p1, (2, 6, 6)), Lif(p2, 4)

    def step(x):
        s = n1(conv2d(x, w, b, 1))
        return n2(sumpool2(s).reshape(B, -1) @ w2.T + b2), n2

    return g, (T, B, 1, 6, 6), step, [n1, n2]


def write(out_dir):
    import os
    for name, build in [("fc", fc), ("cuba", cuba), ("recurrent", recurrent), ("conv", conv)]:
        for seed in range(200):
            rng = np.random.default_rng(seed)
            g, shape, step, neurons = build(rng)
            x = f32(rng.uniform(0, 1.5, shape))
            spikes, mems = [], []
            for t in range(T):
                s, last = step(x[t])
                spikes.append(s.reshape(B, -1))
                mems.append(last.v.reshape(B, -1).copy())
            if min(n.margin for n in neurons) > 1e-3 and np.asarray(spikes).sum() > 0:
                break
        else:
            raise SystemExit(f"{name}: no input found with every membrane clear of threshold")
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        nir.write(os.path.join(d, "graph.nir"), g)
        np.save(os.path.join(d, "input.npy"), x)
        np.save(os.path.join(d, "expected.npy"), f32(spikes))
        np.save(os.path.join(d, "expected_mem.npy"), f32(mems))
        print(name, "seed", seed, "spikes", int(np.asarray(spikes).sum()))


def read(files):
    for f in files:
        g = nir.read(f)
        print(json.dumps({"file": f, "nodes": {k: type(v).__name__ for k, v in g.nodes.items()}}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        read(sys.argv[2:])

"""Writes a tiny SpikeGPT model directory as the authors' code releases one, and the logits and
loss their training model computes on it, for crates/nerve/tests/lm/spikegpt_released.rs.

    python3 make_spikegpt_fixture.py SPIKEGPT_REPO OUT_DIR

SPIKEGPT_REPO is a checkout of https://github.com/ridgerchu/SpikeGPT (commit 029f86f). Its
`src/model.py` is run unchanged except for three lines that need a GPU: the CUDA WKV kernel is
replaced by a line-for-line Python port of `kernel_forward` in `cuda/wkv_cuda.cu`, the
spikingjelly LIF neurons use their `torch` backend instead of `cupy`, and the WKV output is
allocated on the CPU. The checked-in copy in tiny_spikegpt/ was written by this script once with
torch 2.15.0 (CPU, Python 3.11).

OUT_DIR receives: tiny-spikegpt.pth (torch.save(model.state_dict())), config.json (the training
script's keys), vocab.json (the training script's UTF-16 id-to-character vocabulary), text.txt
(the text scored) and reference.json (tokens, logits [T, V], the cross-entropy loss of
GPT.forward in eval mode, and the spike count of each LIF layer).
"""
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

repo, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
sys.path.insert(0, str(repo))

source = (repo / "src/model.py").read_text()
cuda_load = source[source.index("wkv_cuda = load("):source.index("class WKV(")]
source = source.replace(cuda_load, "\n")
source = source.replace("backend='cupy'", "backend='torch'")
source = source.replace("device='cuda'", "device='cpu'")
source = source.replace("w.cuda(), u.cuda(), k.cuda(), v.cuda()", "w, u, k, v")


class WkvCpu:
    """kernel_forward of cuda/wkv_cuda.cu, one (batch, channel) lane at a time."""

    @staticmethod
    def forward(B, T, C, w, u, k, v, y):
        for b in range(B):
            for c in range(C):
                p, q, o = 0.0, 0.0, -1e38
                for t in range(T):
                    kk, vv = float(k[b, t, c]), float(v[b, t, c])
                    no = max(o, float(u[c]) + kk)
                    a, e = math.exp(o - no), math.exp(float(u[c]) + kk - no)
                    y[b, t, c] = (a * p + e * vv) / (a * q + e)
                    no = max(float(w[c]) + o, kk)
                    a, e = math.exp(float(w[c]) + o - no), math.exp(kk - no)
                    p, q, o = a * p + e * vv, a * q + e, no


# TorchScript reads the methods' source back, so the patched model is imported from a file.
patched = Path(tempfile.mkdtemp()) / "spikegpt_model_cpu.py"
patched.write_text(source)
spec = importlib.util.spec_from_file_location("spikegpt_model_cpu", patched)
module = importlib.util.module_from_spec(spec)
sys.modules["spikegpt_model_cpu"] = module
spec.loader.exec_module(module)
module.wkv_cuda = WkvCpu

torch.manual_seed(0)
text = "to be or not to be: that is the question.\n"
chars = sorted(set(text))
vocab, n_embd, n_layer, ctx_len = len(chars), 8, 2, 64
config = module.GPTConfig(vocab, ctx_len, model_type="RWKV", n_layer=n_layer, n_embd=n_embd)
model = module.GPT(config)
with torch.no_grad():
    # Larger weights than the initialisation, so that the LIF neurons of the tiny model fire
    # (their threshold is 1) and the test sees spikes, not only silence.
    for name, p in model.named_parameters():
        if name.endswith(".weight") and p.dim() == 2 and "emb" not in name:
            p.mul_(4.0)
        if ".time_" in name:
            p.add_(0.1 * torch.randn_like(p))
model.eval()

stoi = {c: i for i, c in enumerate(chars)}
tokens = [stoi[c] for c in text]
idx = torch.tensor([tokens[:-1]])
targets = torch.tensor([tokens[1:]])
spikes = []
for block in model.blocks:
    for lif in (block.lif1, block.lif2):
        lif.register_forward_hook(lambda m, i, o: spikes.append(int(o.sum().item())))
with torch.no_grad():
    x = model.atan(model.emb(idx))
    x = model.blocks(x)
    logits = model.head(model.ln_out(x))[0]
    loss = torch.nn.functional.cross_entropy(logits, targets[0])

torch.save(model.state_dict(), out / "tiny-spikegpt.pth")
(out / "config.json").write_text(json.dumps(
    {"n_layer": n_layer, "n_embd": n_embd, "ctx_len": ctx_len, "vocab_size": vocab,
     "model_type": "RWKV"}, indent=1))
with open(out / "vocab.json", "w", encoding="utf-16") as f:
    f.write(json.dumps({i: c for i, c in enumerate(chars)}, ensure_ascii=False))
(out / "text.txt").write_text(text)
(out / "reference.json").write_text(json.dumps(
    {"tokens": tokens[:-1], "targets": tokens[1:], "loss": loss.item(), "spikes": spikes,
     "logits": [[round(v, 6) for v in row] for row in logits.tolist()]}))
print(f"loss {loss.item():.6f}; spikes per LIF layer {spikes}")

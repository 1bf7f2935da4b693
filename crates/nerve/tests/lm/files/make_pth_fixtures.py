"""Writes the `.pth` fixtures of crates/nerve/tests/lm/pth.rs with real PyTorch.

    python3 make_pth_fixtures.py OUT_DIR

The checked-in copies beside this script were written by it once with torch 2.15.0 (CPU,
Python 3.11); the tests rerun it into a temporary directory when `python3` can import torch
(or NERVE_TORCH_PYTHON names such a Python) and read both.

- tiny_state_dict.pth: every storage type a state dict may hold, views with offsets and
  strides, a Parameter, a 0-d and an empty tensor, nested inside a checkpoint-style dict.
- legacy_state_dict.pth: the pre-1.6 (non-zip) format, which Nerve refuses with a clear error.
"""
import sys
from collections import OrderedDict
from pathlib import Path

import torch

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

base = torch.arange(12, dtype=torch.float32)
state = OrderedDict()
state["f32"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
state["f16_transposed"] = torch.arange(6, dtype=torch.float16).reshape(2, 3).t()
state["bf16"] = torch.tensor([1.5, -2.0, 0.25], dtype=torch.bfloat16)
state["f64_slice"] = torch.arange(10, dtype=torch.float64)[3:7]
state["i64"] = torch.tensor([-1, 7], dtype=torch.int64)
state["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
state["bool"] = torch.tensor([True, False, True])
state["scalar"] = torch.tensor(3.5)
state["empty"] = torch.zeros(0, 3)
state["param"] = torch.nn.Parameter(torch.full((2,), 0.5))
state["shared_row1"] = base.view(3, 4)[1]
state["shared_col2"] = base.view(3, 4)[:, 2]
checkpoint = {"model": state, "epoch": 3, "lr": 1e-3, "names": ["a", "b"]}
torch.save(checkpoint, out / "tiny_state_dict.pth")

torch.save(OrderedDict(w=torch.ones(2)), out / "legacy_state_dict.pth",
           _use_new_zipfile_serialization=False)

"""The one shim every adapter's ONNX export needs on torch 2.13.

The package calls `torch.onnx.export` with `dynamic_axes`, the TorchScript exporter's argument; torch 2.13
defaults to the dynamo exporter, which cannot trace upstream's data-dependent branches (the GPT's
set_text_padding, prepare_gpt_inputs) nor w2v-bert's attention reshape. `dynamo=False` is forced while the
context is open and undone after.
"""
from __future__ import annotations

import contextlib
import functools


@contextlib.contextmanager
def torchscript_exporter():
    import torch

    real = torch.onnx.export
    torch.onnx.export = functools.partial(real, dynamo=False)
    try:
        yield
    finally:
        torch.onnx.export = real

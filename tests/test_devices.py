"""PyTorch's dtype names and devices: ported code that says `device=`, `.to("cpu")`,
`torch.float` or asks `cuda.is_available()` runs on the CPU; asking for a GPU says why not."""

from __future__ import annotations

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn


@pytest.mark.parametrize("name, want", [
    ("float", np.float32), ("double", np.float64), ("half", np.float16), ("long", np.int64),
    ("int", np.int32), ("short", np.int16), ("bool", np.bool_), ("uint8", np.uint8),
    ("int16", np.int16), ("int8", np.int8), ("float32", np.float32), ("int64", np.int64),
])
def test_pytorch_dtype_names(name, want):
    dt = getattr(tg, name)
    assert dt == np.dtype(want)
    assert tg.zeros(2, dtype=dt).dtype == np.dtype(want)


def test_dtype_names_match_torchs():
    torch = pytest.importorskip("torch")
    for name in ("float", "double", "half", "long", "int", "short", "bool", "uint8"):
        assert np.dtype(str(getattr(torch, name)).replace("torch.", "")) == getattr(tg, name)


def test_device_arguments_and_to():
    x = tg.ones(2, 3, device="cpu")
    assert x.device == tg.device("cpu") == "cpu" and repr(x.device) == "device(type='cpu')"
    assert tg.tensor([1.0], device=tg.device("cpu")).device.type == "cpu"
    for make in (lambda: tg.zeros(2, device="cpu"), lambda: tg.randn(2, device="cpu:0"),
                 lambda: tg.arange(3, device="cpu"), lambda: tg.full((2,), 1.0, device=None)):
        assert make().device == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to("cpu", tg.double).dtype == np.float64
    assert x.to(dtype=tg.half).dtype == np.float16
    assert x.to(tg.ones(1, dtype=tg.long)).dtype == np.int64
    assert x.to(device="cpu", dtype=tg.float64).dtype == np.float64
    assert x.is_floating_point() and not tg.ones(1, dtype=tg.long).is_floating_point()
    assert x.element_size() == 4 and x.half().dtype == np.float16
    assert tg.ones(1).short().dtype == np.int16


def test_a_gpu_is_refused_with_the_reason():
    assert tg.cuda.is_available() is False and tg.cuda.device_count() == 0
    for ask in (lambda: tg.zeros(2, device="cuda"), lambda: tg.ones(2).to("cuda:0"),
                lambda: tg.ones(2).cuda(), lambda: nn.Linear(2, 2).cuda(),
                lambda: tg.device("mps")):
        with pytest.raises(RuntimeError, match="CPU only"):
            ask()


def test_module_to_device_and_dtype():
    m = nn.Linear(2, 3)
    w = m.weight
    assert m.to(tg.device("cpu")) is m and m.to("cpu").weight is w and m.cpu() is m
    m.to("cpu", tg.float64)
    assert m.weight is w and w.dtype == np.float64
    m.to(dtype=tg.float32)
    assert w.dtype == np.float32
    device = tg.device("cuda" if tg.cuda.is_available() else "cpu")  # the ported idiom
    out = m.to(device)(tg.ones(4, 2).to(device))
    assert out.shape == (4, 3) and out.device == device

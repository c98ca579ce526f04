"""PyTorch example programs (tests/pytorch_ports/*.py, each written for PyTorch: ``import
torch``) run twice: as written, with PyTorch, and after an import swap (``import tracegrad
as torch``, ``torch.nn`` -> ``tracegrad.nn``, ...) with nothing else changed. Both runs'
losses, gradients, weights and other results must agree to float32 rounding (float64 where
the program computes in float64). Issue 17's "done when"."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

PORTS = Path(__file__).parent / "pytorch_ports"
PROGRAMS = sorted(p.stem for p in PORTS.glob("*.py"))


def import_swap(source: str) -> str:
    """The program with its imports of torch replaced by tracegrad's, and only those."""
    out = []
    for line in source.splitlines():
        if line.startswith("import torch") or line.startswith("from torch"):
            if line.strip() == "import torch":
                line = "import tracegrad as torch"
            else:
                line = re.sub(r"\btorch\b", "tracegrad", line, count=1)
        out.append(line)
    return "\n".join(out) + "\n"


def run(source: str, name: str, workdir: Path) -> dict:
    namespace: dict = {"__name__": f"port_{name}"}
    exec(compile(source, str(PORTS / f"{name}.py"), "exec"), namespace)
    return namespace["run"](str(workdir))


def plain(obj):
    """Tensors (of either library) as arrays, recursively."""
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        return np.asarray(obj.detach().numpy())
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def assert_agree(ours, theirs, where: str) -> None:
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), f"{where}: keys {list(ours)} != {list(theirs)}"
        for k in theirs:
            assert_agree(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items, PyTorch {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_agree(a, b, f"{where}[{i}]")
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours).__name__}, not an array"
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
        assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} != {theirs.dtype}"
        if theirs.dtype.kind == "f":
            tol = 1e-10 if theirs.dtype == np.float64 else 2e-4
            np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol, err_msg=where)
        else:
            np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, float):
        assert isinstance(ours, float), f"{where}: {ours!r} is not a float"
        assert abs(ours - theirs) <= 2e-4 * max(1.0, abs(theirs)), f"{where}: {ours} != {theirs}"
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{where}: {ours!r} != {theirs!r}"


def test_there_are_at_least_ten_programs() -> None:
    assert len(PROGRAMS) >= 10


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_unchanged_after_the_import_swap(name: str, tmp_path: Path) -> None:
    source = (PORTS / f"{name}.py").read_text()
    swapped = import_swap(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), swapped.splitlines()) if a != b]
    assert changed and all(b.startswith(("import tracegrad", "from tracegrad"))
                           for _, b in changed), changed
    (tmp_path / "torch").mkdir()
    (tmp_path / "tracegrad").mkdir()
    theirs = plain(run(source, name, tmp_path / "torch"))
    ours = plain(run(swapped, name, tmp_path / "tracegrad"))
    assert_agree(ours, theirs, name)

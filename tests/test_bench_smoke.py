"""The benchmark runs and reports numbers; timings themselves are never asserted."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

# bench/ is a top-level folder of the repository, not part of the installed package.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import common, scalar  # noqa: E402

HAS_MICROGRAD = importlib.util.find_spec("micrograd") is not None


def _check_quick_run(result, name, engines, gaps=False):
    """What every quick run shows: its name, its first engines, and a finite positive number
    in every cell (``gaps``: or None where a peer has no such measurement, but never for
    tracegrad). Returns the printed result."""
    assert result["name"] == name
    assert result["engines"][:len(engines)] == engines
    for r in result["rows"]:
        for engine, value in r["values"].items():
            if value is None and gaps and engine != "tracegrad":
                continue
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (
                r["benchmark"], engine, value)
    return common.render(result)


def _check_missing_listed(text, names):
    for name in names:
        if importlib.util.find_spec(name) is None:
            assert f"{name}: not installed (pip install {name})" in text


@pytest.fixture(scope="module")
def result():
    return scalar.run(quick=True)


def test_scalar_quick_reports_numbers(result):
    text = _check_quick_run(result, "scalar", ["tracegrad"])
    moons = result["details"]["moons"]
    assert moons["nodes"]["tracegrad"] == 65_818
    n = result["details"]["chain_n"]
    assert result["details"]["chain"]["tracegrad"]["nodes"] == 2 * n + 1
    memory_target = result["targets"][1]
    assert memory_target["value"] > 0 and memory_target["pass"] in (True, False)
    assert "tracegrad" in text


@pytest.mark.skipif(not HAS_MICROGRAD, reason="micrograd not installed")
def test_scalar_quick_losses_agree_with_micrograd(result):
    moons = result["details"]["moons"]
    ours, theirs = moons["losses"]["tracegrad"], moons["losses"]["micrograd"]
    assert len(ours) == len(theirs) > 0
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert moons["losses_agree"]
    assert moons["nodes"]["micrograd"] == moons["nodes"]["tracegrad"]
    assert result["details"]["chain"]["micrograd"]["nodes"] == 2 * result["details"]["chain_n"] + 1


def test_missing_peer_is_listed_not_a_crash(monkeypatch):
    # None in sys.modules makes `import micrograd...` raise ImportError.
    monkeypatch.setitem(sys.modules, "micrograd", None)
    monkeypatch.setitem(sys.modules, "micrograd.engine", None)
    monkeypatch.setitem(sys.modules, "micrograd.nn", None)
    found, missing = scalar.engines()
    assert [e.name for e in found] == ["tracegrad"]
    assert missing == {"micrograd": "not installed (pip install micrograd==0.1.0)"}
    text = common.render({
        "title": "t", "engines": ["tracegrad"], "missing": missing, "targets": [],
        "rows": [common.row("x", "s", {"tracegrad": 0.1})],
    })
    assert "micrograd: not installed (pip install micrograd==0.1.0)" in text


# --------------------------------------------------------------------------------------
# bench.tensor and bench.train: quick runs, values checked, timings never asserted

from bench import tensor as bench_tensor  # noqa: E402
from bench import train as bench_train  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def tensor_result():
    return bench_tensor.run(quick=True)


def test_tensor_quick_reports_numbers(tensor_result):
    result = tensor_result
    text = _check_quick_run(result, "tensor", ["tracegrad", "numpy"], gaps=True)
    assert [t["pass"] in (True, False) for t in result["targets"]] == [True] * 3
    for label, diffs in result["details"]["chain_grad_rel_diff"].items():
        assert diffs["tracegrad"] < 1e-5, label
    assert "MLP step losses (agree" in text
    _check_missing_listed(text, ("autograd", "jax", "tinygrad"))


def test_tensor_quick_mlp_losses_agree_with_numpy(tensor_result):
    losses = tensor_result["details"]["mlp"]["losses"]
    assert len(losses["tracegrad"]) == 6  # quick: 2 warm-up steps and 4 timed, in turns of 2
    cold = tensor_result["details"]["mlp"]["cold_timings"]
    assert len(cold["tracegrad"]["seconds"]) == 2 and len(cold["numpy"]["seconds"]) == 2
    assert losses["tracegrad"] == pytest.approx(losses["numpy"], rel=1e-4)
    assert tensor_result["details"]["mlp"]["losses_agree"]


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
def test_tensor_quick_torch_agrees(tensor_result):
    assert "torch" in tensor_result["engines"]
    losses = tensor_result["details"]["mlp"]["losses"]
    assert losses["tracegrad"] == pytest.approx(losses["torch"], rel=1e-4)
    for diffs in tensor_result["details"]["chain_grad_rel_diff"].values():
        assert diffs["torch"] < 1e-4


def test_train_quick_reports_numbers():
    result = bench_train.run(quick=True)
    text = _check_quick_run(result, "train", ["tracegrad"])
    details = result["details"]
    assert details["steps_per_epoch"] == 11
    assert len(details["losses"]["tracegrad"]) == 3
    assert details["accuracy"]["tracegrad"] > 0.5
    if HAS_TORCH:
        assert details["losses_agree"]
        assert details["losses"]["tracegrad"] == pytest.approx(details["losses"]["torch"],
                                                               rel=1e-3)
    assert "one epoch" in text


def test_tensor_missing_peers_are_listed(monkeypatch):
    for name in ("torch", "micrograd", "autograd", "jax", "tinygrad"):
        monkeypatch.setitem(sys.modules, name, None)
    found, missing = bench_tensor.peers()
    assert list(found) == ["numpy"]
    assert missing["torch"] == "not installed (pip install torch)"
    assert missing["autograd"] == "not installed (pip install autograd)"


def test_train_without_torch_lists_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = bench_train.run(quick=True)
    assert result["engines"] == ["tracegrad"]
    assert "torch: not installed (pip install torch)" in common.render(result)


# --------------------------------------------------------------------------------------
# bench.compile: a quick run, compiled results checked against eager, timings never asserted

from bench import compile as bench_compile  # noqa: E402


@pytest.fixture(scope="module")
def compile_result():
    return bench_compile.run(quick=True)


def test_compile_quick_reports_numbers(compile_result):
    result = compile_result
    text = _check_quick_run(result, "compile", ["tracegrad", "tg eager", "numpy"], gaps=True)
    assert all(t["pass"] in (True, False) for t in result["targets"])
    assert "torch.compile: skipped in --quick" in text or "torch: not installed" in text
    _check_missing_listed(text, ("jax", "tinygrad"))


def test_compile_quick_compiled_equals_eager(compile_result):
    details = compile_result["details"]
    losses = details["mlp"]["losses"]
    assert len(losses["tracegrad"]) == 5
    assert losses["tracegrad"] == pytest.approx(losses["tg eager"], rel=1e-5)
    assert losses["numpy"] == pytest.approx(losses["tg eager"], rel=1e-4)
    assert details["mlp"]["param_diff"]["tracegrad"] < 1e-5
    for label in bench_compile.CHAINS:
        diff = details[f"chain {label}"]["diff"]
        assert diff["loss"] < 1e-4 and diff["x.grad"] < 1e-5, (label, diff)
    for name, d in details["gelu_ln"]["diff"].items():
        assert d < 1e-4, name


def test_compile_quick_long_chains_cnn_and_overhead(compile_result):
    details = compile_result["details"]
    scaling = details["compile_scaling"]
    assert {(r["chain"], r["ops"]) for r in scaling.values()} == {
        (label, n) for label in bench_compile.LONG_CHAINS for n in (100, 1_000)}
    for r in scaling.values():
        assert r["diff"] < 1e-5, r
        assert len(r["wall"]) == len(r["cpu"]) == 1
    cnn = details["cnn"]
    assert len(cnn["losses"]["tracegrad"]) == 8  # 4 epochs x 2 steps
    assert cnn["losses"]["tracegrad"] == pytest.approx(cnn["losses"]["tg eager"], rel=1e-4)
    assert cnn["variants"] >= 1 and cnn["misses"] >= cnn["variants"]
    for label, r in details["overhead"].items():
        assert r["all_hits"] and r["variants"] == 1, label
    text = common.render(compile_result)
    assert "compile time against chain length" in text and "per-call overhead" in text


# --------------------------------------------------------------------------------------
# bench.models: the digits CNN step, eager and compiled, checked against each other

from bench import models as bench_models  # noqa: E402


def test_models_quick_reports_numbers():
    result = bench_models.run(quick=True)
    text = _check_quick_run(result, "models", ["tracegrad", "tg compiled"])
    losses = result["details"]["losses"]
    assert len(losses["tracegrad"]) == 6  # 2 warm-up and 4 timed steps
    assert losses["tg compiled"] == pytest.approx(losses["tracegrad"], rel=1e-5)
    gpt = result["details"]["gpt"]
    assert len(gpt["losses"]["tracegrad"]) == 6
    assert gpt["losses"]["tg compiled"] == pytest.approx(gpt["losses"]["tracegrad"], rel=1e-5)
    sampling = result["details"]["sampling"]
    # the growing context: a static variant (length 2), then one dynamic variant
    assert sampling["variants"] == 2 and sampling["same_text"]
    assert len(sampling["texts"]["tg compiled"][0]) == sampling["tokens"] == 16
    names = [t["name"] for t in result["targets"]]
    if HAS_TORCH:
        assert result["details"]["losses_agree"] and gpt["losses_agree"]
        assert losses["torch"] == pytest.approx(losses["tracegrad"], rel=1e-4)
        assert gpt["losses"]["torch"] == pytest.approx(gpt["losses"]["tracegrad"], rel=1e-4)
        assert names == ["CNN eager / PyTorch eager", "CNN compiled / PyTorch eager",
                         "GPT eager / PyTorch eager", "sampling: compiled variants",
                         "sampling: compiled tokens/s / PyTorch eager's"]
        assert all(t["pass"] in (True, False) for t in result["targets"])
    assert "digits CNN" in text and "GPT" in text and "tokens/s" in text


def test_imports_quick_reports_numbers():
    from bench import imports

    result = imports.run(quick=True)
    text = _check_quick_run(result, "imports", ["tracegrad", "numpy"])
    assert result["details"]["optional_imported"] == []
    assert "import tracegrad / import numpy <= 1.5" in text


# ---------------------------------------------------------------------------------------
# bench.cbackend: a quick run; the C backend's results agree with eager's


def test_cbackend_quick_reports_numbers_and_agrees():
    from tracegrad.compiler.backends.c import available

    if available() is not None:
        pytest.skip(f"no C backend: {available()}")
    from bench import cbackend

    result = cbackend.run(quick=True)
    names = [r["benchmark"] for r in result["rows"]]
    assert any("GELU" in n for n in names) and any("Adam" in n for n in names)
    for row in result["rows"][:3]:
        assert row["values"]["tg C"] > 0 and row["values"]["numpy"] > 0
    text = " ".join(result["notes"])
    import re
    diffs = [float(d) for d in re.findall(r"max \|C - eager\| ([0-9.e+-]+)", text)]
    assert len(diffs) == 2 and max(diffs) < 1e-3, text
    assert "row program" in text  # the compile notes say what ran in C
def test_onnx_quick_reports_numbers():
    pytest.importorskip("onnxruntime")
    from bench import onnx as bench_onnx

    result = bench_onnx.run(quick=True)
    text = _check_quick_run(result, "onnx", ["tracegrad", "tracegrad compiled", "onnxruntime"])
    models = {k: d for k, d in result["details"].items() if isinstance(d, dict)}
    assert len(models) == 2 and all(d["agree"] for d in models.values())
    assert "tg.onnx.export (verified)" in text and "outputs agree" in text


def test_transforms_quick_reports_numbers_and_agreement():
    from bench import transforms as bench_transforms

    result = bench_transforms.run(quick=True)
    _check_quick_run(result, "transforms", ["tracegrad"], gaps=True)
    assert len(result["targets"]) == 5
    # the Jacobians and the Hessian agree with their references (timings are not asserted)
    diffs = result["details"]
    assert diffs["jvp eager vs compiled"] < 1e-4 and diffs["jacobians vs loop"] < 1e-12
    assert diffs["hessian vs torch"] is None or diffs["hessian vs torch"] < 1e-12

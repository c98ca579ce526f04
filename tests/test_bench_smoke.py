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


def _numbers(result):
    for r in result["rows"]:
        for engine, value in r["values"].items():
            yield r["benchmark"], engine, value


@pytest.fixture(scope="module")
def result():
    return scalar.run(quick=True)


def test_scalar_quick_reports_numbers(result):
    assert result["name"] == "scalar"
    assert result["engines"][0] == "tracegrad"
    for benchmark, engine, value in _numbers(result):
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (
            benchmark, engine, value)
    moons = result["details"]["moons"]
    assert moons["nodes"]["tracegrad"] == 65_818
    n = result["details"]["chain_n"]
    assert result["details"]["chain"]["tracegrad"]["nodes"] == 2 * n + 1
    memory_target = result["targets"][1]
    assert memory_target["value"] > 0 and memory_target["pass"] in (True, False)
    assert "tracegrad" in common.render(result)


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

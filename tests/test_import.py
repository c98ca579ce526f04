"""``import tracegrad`` stays light: optional dependencies are imported where first needed."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("scipy", "matplotlib", "torch", "graphviz", "safetensors", "tqdm", "sklearn",
            "onnx", "onnxruntime")


def _modules_after(code: str) -> set[str]:
    """The names of the modules loaded (``numpy``, ``tracegrad.tensor``) after ``code`` runs
    in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_tracegrad_imports_no_optional_dependency():
    loaded = _modules_after("import tracegrad")
    assert "tracegrad" in loaded and "numpy" in loaded
    assert loaded.isdisjoint(OPTIONAL), sorted(loaded & set(OPTIONAL))


def test_erf_is_right_with_scipy_imported_at_its_first_call():
    import math

    import tracegrad as tg

    x = tg.tensor([-1.5, 0.0, 0.5, 2.0], dtype=tg.float64)
    assert tg.erf(x).tolist() == [math.erf(v) for v in x.tolist()]
    got = tg.nn.functional.gelu(x).tolist()
    want = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()]
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-12
    if importlib.util.find_spec("scipy") is not None:  # (else a slower pure-Python erf)
        assert "scipy" in _modules_after(
            "import tracegrad as tg; tg.erf(tg.ones(3, dtype=tg.float64))")
    # float32 erf is NumPy arithmetic (ops.elementwise._erf_float32): no SciPy
    assert "scipy" not in _modules_after("import tracegrad as tg; tg.erf(tg.ones(3))")


def test_the_compiler_and_viz_are_imported_at_first_use():
    loaded = _modules_after("import tracegrad")
    assert "tracegrad.compiler" not in loaded and "tracegrad.viz" not in loaded
    used = _modules_after(
        "import tracegrad as tg\n"
        "f = tg.compile(lambda x: x * 2)\n"
        "assert f(tg.ones(3)).tolist() == [2.0, 2.0, 2.0]\n"
        "assert isinstance(tg.trace(lambda x: x + 1, tg.ones(2)), tg.Graph)\n"
        "assert tg.viz.draw is not None and tg.TensorSpec is not None\n"
        "assert tg.explain is tg.compiler.explain")
    assert {"tracegrad.compiler", "tracegrad.compiler.api", "tracegrad.viz"} <= used

"""`tracegrad demo` runs every section, prints micrograd's numbers and writes valid files."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tracegrad import demo
from tracegrad.cli import main

for _module in ("sklearn", "matplotlib", "tqdm"):
    pytest.importorskip(_module)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CAN_RENDER = shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None
# micrograd's README: g.data, a.grad, b.grad of its reference example.
REFERENCE_LINES = [r"g\s+=\s+24\.7041\b", r"dg/da\s+=\s+138\.8338\b", r"dg/db\s+=\s+645\.5773\b"]


def _run_main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out_dir = tmp_path_factory.mktemp("demo")
    status, output = _run_main(["demo", "--out", str(out_dir), "--quick"])
    assert status == 0
    return out_dir, output


def test_demo_prints_micrograds_three_numbers(quick_demo):
    _, output = quick_demo
    for line in REFERENCE_LINES:
        assert re.search(line, output), f"{line!r} not in the demo's output:\n{output}"


def test_demo_prints_a_header_per_section_and_the_files(quick_demo):
    out_dir, output = quick_demo
    for section in demo.SECTIONS:
        assert section.title in output
    assert "training accuracy" in output
    names = ["moons_loss.png", "moons_boundary.png", "graph.svg" if CAN_RENDER else "graph.dot"]
    for name in names:
        assert str(out_dir / name) in output
    assert output.rstrip().splitlines()[-1].startswith("Done in")


def test_demo_writes_valid_pngs(quick_demo):
    out_dir, _ = quick_demo
    for name in ("moons_loss.png", "moons_boundary.png"):
        data = (out_dir / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name  # a real picture, not an empty canvas


@pytest.mark.skipif(not CAN_RENDER, reason="needs Graphviz (`dot`) and the graphviz package")
def test_demo_writes_a_graph_svg_that_parses(quick_demo):
    out_dir, _ = quick_demo
    root = ET.parse(out_dir / "graph.svg").getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    assert "data 24.7041" in text  # the drawing shows g, labelled, with its value


def test_python_m_tracegrad_demo(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tracegrad", "demo", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for line in REFERENCE_LINES:
        assert re.search(line, result.stdout)
    assert "training" in result.stderr  # the tqdm progress bar
    assert (tmp_path / "moons_boundary.png").read_bytes().startswith(PNG_MAGIC)


def test_one_section_runs_alone(tmp_path):
    status, output = _run_main(["demo", "--section", "scalar", "--out", str(tmp_path)])
    assert status == 0
    assert re.search(REFERENCE_LINES[0], output)
    assert "moons" not in output
    assert not (tmp_path / "moons_loss.png").exists()


def test_without_graphviz_the_demo_writes_dot_and_says_how_to_get_svg(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)  # no `dot` on PATH
    status, output = _run_main(["demo", "--section", "scalar", "--out", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert not (tmp_path / "graph.svg").exists()
    notes = [line for line in output.splitlines() if "note:" in line]
    assert len(notes) == 1 and "Graphviz" in notes[0]


def test_missing_extras_name_the_pip_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=re.escape('pip install "tracegrad[demo]"')):
        demo.train_moons(1)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "scikit-learn" in err and 'pip install "tracegrad[demo]"' in err
    assert not list(tmp_path.iterdir())  # checked before any section ran


def test_no_arguments_prints_usage_with_the_subcommands(capsys):
    assert main([]) == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: tracegrad")
    assert "demo" in usage
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_unknown_section_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--section", "nope"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# The compiler section


AGREE = r"\((the same numbers, step by step|the same to float32 rounding: at most " \
        r"[\d.e+-]+ apart)\)"


def test_compiler_section_times_both_and_prints_the_explain_table(quick_demo):
    out_dir, output = quick_demo
    section = output[output.index("The compiler:"):]
    assert re.search(r"median\s+fastest", section)
    assert re.search(r"eager\s+[\d.]+\s+[\d.]+\s+ms/step", section)
    assert re.search(r"numpy\s+[\d.]+\s+[\d.]+\s+ms/step", section)
    assert re.search(r"speed-up numpy\s+[\d.]+x\s+[\d.]+x", section)
    if "no C backend here" not in section:  # the C backend, side by side
        assert re.search(r"\bC\s+[\d.]+\s+[\d.]+\s+ms/step", section)
        assert re.search(r"speed-up C\s+[\d.]+x\s+[\d.]+x", section)
        assert len(re.findall(AGREE, section)) == 2
    # compiled == eager, loss by loss (to float32 rounding, which a hundred steps grow)
    assert re.search(AGREE, section) and "DIFFER" not in section
    # the tg.explain table: its header and one row per pass, not the final IR
    assert re.search(r"pass\s+nodes\s+kernels\s+peak memory\s+time\s+what it did", section)
    for name in ("trace", "dce", "cse", "fold_constants", "simplify", "fuse", "plan_memory"):
        assert re.search(rf"^\s+{name}\s+\d+\s+\d+", section, flags=re.M), name
    assert re.search(r"fused \d+ node\(s\) into [1-9]\d* kernel", section)
    assert "final graph" not in section and "graph(%0" not in section
    name = "compiled_graph.svg" if CAN_RENDER else "compiled_graph.dot"
    assert str(out_dir / name) in output


@pytest.mark.skipif(not CAN_RENDER, reason="needs Graphviz (`dot`) and the graphviz package")
def test_compiler_section_draws_the_graph_with_kernels_as_clusters(quick_demo):
    out_dir, _ = quick_demo
    root = ET.parse(out_dir / "compiled_graph.svg").getroot()
    assert root.tag.endswith("svg")
    clusters = [g for g in root.iter() if g.get("class") == "cluster"]
    assert clusters  # the fused kernels, boxed
    text = " ".join(root.itertext())
    assert "fused kernel %" in text and "output 0" in text and "matmul" in text


def test_compiler_section_alone_without_graphviz_writes_dot(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)  # no `dot` on PATH
    status, output = _run_main(["demo", "--section", "compiler", "--quick", "--out",
                                str(tmp_path)])
    assert status == 0
    source = (tmp_path / "compiled_graph.dot").read_text()
    assert source.startswith("digraph") and "subgraph cluster_" in source
    assert not (tmp_path / "compiled_graph.svg").exists()
    notes = [line for line in output.splitlines() if "note:" in line]
    assert len(notes) == 1 and "Graphviz" in notes[0]
    assert "moons" not in output and "speed-up" in output


# ---------------------------------------------------------------- the tensor section


def test_demo_trains_the_digits_mlp_and_reports_its_test_accuracy(quick_demo):
    out_dir, output = quick_demo
    match = re.search(r"test accuracy (\d+\.\d+)% \((\d+)/450 images\)", output)
    assert match, output
    assert float(match.group(1)) > 90  # quick: 8 epochs, about 95%
    data = (out_dir / "digits_loss.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_demo_saves_the_model_and_the_reloaded_one_predicts_the_same(quick_demo):
    import numpy as np

    from tracegrad.io import load

    out_dir, output = quick_demo
    assert "predictions match the trained model's exactly" in output
    path = out_dir / "digits_mlp.safetensors"
    assert str(path) in output
    state = load(path)
    assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    assert state["0.weight"].shape == (256, 64)
    model = demo.digits_mlp()
    model.load_state_dict(state)
    data = demo.digits_split()
    accuracy = demo.accuracy(model, data.X_test, data.y_test)
    reported = float(re.search(r"test accuracy (\d+\.\d+)%", output).group(1))
    assert np.isclose(100 * accuracy, reported, atol=0.006)


def test_tensor_section_runs_alone(tmp_path):
    status, output = _run_main(["demo", "--section", "tensor", "--quick", "--out", str(tmp_path)])
    assert status == 0
    assert "digits" in output and "moons" not in output
    onnx = ["digits_mlp.onnx"] if importlib.util.find_spec("onnxruntime") else []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits_loss.png", *onnx,
                                                          "digits_mlp.safetensors"]


def test_demo_exports_the_digits_model_to_onnx(quick_demo):
    pytest.importorskip("onnxruntime")
    out_dir, output = quick_demo
    assert "ONNX Runtime's 450 test predictions match tracegrad's exactly" in output
    assert (out_dir / "digits_mlp.onnx").stat().st_size > 100_000

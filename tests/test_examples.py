"""The scripts in examples/ run and reach the results their docstrings promise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("sklearn", "matplotlib", "tqdm"):
    pytest.importorskip(_module)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load(name: str):
    # examples/ is a folder of scripts, not a package: load the file as a module.
    if str(EXAMPLES) not in sys.path:  # digits_cnn.py imports digits_mlp.py, as a script does
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_examples_import_nothing_from_the_demo(script):
    source = (EXAMPLES / script).read_text()
    assert "tracegrad.demo" not in source and "from tracegrad import demo" not in source


@pytest.mark.slow
def test_moons_scalar_reaches_full_training_accuracy(tmp_path):
    out = tmp_path / "loss.png"
    run = _load("moons_scalar").main(["--steps", "100", "--out", str(out)])  # seeded, ~20 s

    assert len(run.losses) == 100
    assert run.accuracies[-1] == 1.0  # micrograd's last step: 100%
    assert run.final_accuracy == 1.0  # and the trained model, after the last update
    # The loss jumps around early (lr starts at 1.0) but falls by almost two orders.
    assert run.losses[-1] < run.losses[0] / 50
    assert sum(run.losses[-10:]) < sum(run.losses[:10]) / 10
    assert run.final_loss < 0.02
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_moons_scalar_runs_as_a_script(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "moons_scalar.py"), "--steps", "2", "--out", "l.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "after 2 steps" in result.stdout
    assert (tmp_path / "l.png").read_bytes().startswith(PNG_MAGIC)


# ---------------------------------------------------------------- training real models


def test_digits_mlp_reaches_97_percent_test_accuracy():
    run = _load("digits_mlp").train()  # the full setting: 30 epochs, seed 0; a few seconds

    assert run.epochs == 30
    assert run.test_accuracy >= 0.97
    assert run.train_accuracy >= run.test_accuracy - 0.01
    assert run.test_accuracies[-1] == run.test_accuracy
    # 11 batches of 128 per epoch (1347 training images); the loss falls steadily.
    assert len(run.losses) == 30 * 11
    assert sum(run.losses[-11:]) < sum(run.losses[:11]) / 3


def test_digits_mlp_is_reproducible_with_a_seed():
    module = _load("digits_mlp")
    a, b = module.train(2, seed=3), module.train(2, seed=3)
    assert a.losses == b.losses and a.test_accuracy == b.test_accuracy
    assert module.train(2, seed=4).losses != a.losses


@pytest.mark.slow
def test_digits_cnn_reaches_98_percent_test_accuracy():
    run = _load("digits_cnn").train()  # the full setting: 20 epochs, seed 0; ~10-20 s

    assert run.epochs == 20
    assert run.test_accuracy >= 0.98
    assert sum(run.losses[-11:]) < sum(run.losses[:11]) / 3


def test_digits_cnn_model_shapes():
    import tracegrad as tg

    module = _load("digits_cnn")
    model = module.DigitsCNN()
    assert model(tg.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert sorted(model.state_dict()) == [
        "conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "head.bias", "head.weight"
    ]


def test_regression_recovers_the_oscillators_parameters_within_5_percent():
    module = _load("regression")
    fit = module.fit()  # the full setting: 120 Adam iterations from the poor guess, seed 0

    for name, true in module.TRUE.items():
        assert abs(module.GUESS[name] / true - 1) > 0.2  # the start really is poor
        assert abs(fit.params[name] / true - 1) < 0.05, (name, fit.params)
    assert fit.max_relative_error < 0.05
    # The fit explains the data down to the noise: its MSE is about the noise variance.
    assert fit.losses[-1] < 1.2 * module.NOISE**2
    assert fit.losses[-1] < fit.losses[0] / 20


def test_regression_simulation_matches_the_exact_solution():
    import numpy as np

    module = _load("regression")
    t, _ = module.observations()
    simulated = module.Oscillator(**module.TRUE)().numpy()
    exact = module.exact_solution(t, **module.TRUE)
    assert np.abs(simulated - exact).max() < 1e-2  # Heun's method at dt = 0.05: ~6e-3


@pytest.mark.parametrize(
    "script, args, expect",
    [
        ("digits_mlp.py", ["--epochs", "1"], "after 1 epochs"),
        ("digits_cnn.py", ["--epochs", "1"], "after 1 epochs"),
        ("regression.py", ["--epochs", "5", "--seed", "1"], "omega ="),
    ],
)
def test_training_examples_run_as_scripts(tmp_path, script, args, expect):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--out", "curve.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout
    assert "it/s" in result.stderr or "batch/s" in result.stderr  # the tqdm progress bar
    assert (tmp_path / "curve.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("script", ["digits_mlp.py", "digits_cnn.py", "regression.py"])
def test_training_examples_refuse_zero_epochs(tmp_path, script):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--epochs", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "--epochs must be at least 1" in result.stderr

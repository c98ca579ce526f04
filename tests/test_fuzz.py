"""The fuzz campaigns run, agree on a few seeds, and report a difference when there is one
(a campaign that cannot fail finds nothing)."""

from __future__ import annotations

import pytest

import tracegrad as tg
from fuzz import campaigns
from fuzz.__main__ import main


@pytest.mark.parametrize("name", sorted(campaigns.CAMPAIGNS))
def test_each_campaign_agrees_on_two_seeds(name):
    for seed in (1, 2):
        assert campaigns.run(name, seed) is None


def _off_by_a_bit(monkeypatch):
    """tg.compile made wrong: its first result is off by 0.01."""
    real = tg.compile

    def compile(fn, **kwargs):
        compiled = real(fn, **kwargs)

        def wrong(*args):
            out = compiled(*args)
            if isinstance(out, list):
                return [out[0] + 0.01, *out[1:]]
            return out + 0.01
        return wrong
    monkeypatch.setattr(tg, "compile", compile)


@pytest.mark.parametrize("name", ["rows", "training", "dynamic", "state"])
def test_a_compiled_result_off_by_a_bit_is_found(name, monkeypatch):
    _off_by_a_bit(monkeypatch)
    why = campaigns.run(name, 3)
    assert why and ("differ" in why or "where eager gives" in why)


def test_an_eager_view_that_differs_from_torch_is_found(monkeypatch):
    pytest.importorskip("torch")
    real = tg.Tensor.transpose
    monkeypatch.setattr(tg.Tensor, "transpose", lambda t, a, b: real(t, a, b) * 1.0 + 1e-3)
    found = [campaigns.run("views", seed) for seed in range(40)]
    assert any(f and "differs" in f for f in found)


def test_the_command_line_prints_how_to_rerun_a_failure(monkeypatch, capsys):
    _off_by_a_bit(monkeypatch)
    assert main(["rows", "--seed", "5", "--count", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL rows seed 5" in out and "python -m fuzz rows --seed 5 --count 1" in out

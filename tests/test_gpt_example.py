"""examples/gpt.py: the quick form trains, a checkpoint resumes bit for bit, the compiled
training step and sampling agree with eager."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import tracegrad as tg

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load():
    module = sys.modules.get("gpt_example")
    if module is None:
        spec = importlib.util.spec_from_file_location("gpt_example", EXAMPLES / "gpt.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpt_example"] = module  # (dataclasses look their module up there)
        spec.loader.exec_module(module)
    return module


gpt = _load()
TINY = replace(gpt.QUICK, steps=20, warmup=5, eval_every=10, eval_batches=2, batch_size=8,
               model=gpt.GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=32))


@pytest.fixture(scope="module")
def corpus():
    return gpt.load_corpus()


def test_the_corpus_is_the_standard_library_split_by_file(corpus):
    assert len(corpus.train_files) + len(corpus.val_files) == len(gpt.stdlib_files()) >= 50
    assert not set(map(str, corpus.val_files)) >= set(map(str, corpus.train_files))
    assert len(corpus.train) > 1_000_000 and len(corpus.val) > 100_000
    assert corpus.train.max() < len(gpt.VOCAB)
    assert 2.5 < corpus.unigram_loss() < 4.0  # ~3.1 nats: what a model must beat
    assert gpt.decode(gpt.encode("def f(x):\n\treturn é")) == "def f(x):\n\ufffdreturn \ufffd"


def test_quick_form_trains_below_the_unigram_loss(tmp_path, corpus, capsys):
    ckpt, png = tmp_path / "gpt.safetensors", tmp_path / "loss.png"
    trainer = gpt.main(["--quick", "--no-progress", "--checkpoint", str(ckpt), "--out",
                        str(png), "--tokens", "40"])
    out = capsys.readouterr().out
    losses = trainer.losses
    assert len(losses) == gpt.QUICK.steps
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 1.0  # from ~4.5 nats to ~2.5
    assert [s for s, _ in trainer.val_losses] == [100, 200, 300]
    assert trainer.val_losses[-1][1] < corpus.unigram_loss() - 0.4
    assert ckpt.is_file() and png.read_bytes().startswith(PNG_MAGIC)
    assert "validation loss" in out and "sample:\ndef " in out


def _params(trainer):
    return {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}


def test_resuming_a_checkpoint_continues_the_run_bit_for_bit(tmp_path, corpus):
    straight = gpt.Trainer(TINY, corpus)
    straight.train()
    first = gpt.Trainer(TINY, corpus)
    first.train(12)
    first.save(tmp_path / "ckpt.safetensors")
    resumed = gpt.Trainer.load(tmp_path / "ckpt.safetensors", TINY, corpus)
    assert resumed.step == 12 and resumed.losses == first.losses
    resumed.train()
    assert resumed.losses == straight.losses  # exactly: same batches, same state
    assert resumed.val_losses == straight.val_losses
    a, b = _params(straight), _params(resumed)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="checkpoint"):
        gpt.Trainer.load(tmp_path / "ckpt.safetensors", gpt.QUICK, corpus)


def test_compiled_training_gives_eager_losses_for_20_steps(corpus):
    eager, compiled = gpt.Trainer(TINY, corpus), gpt.Trainer(TINY, corpus, compile=True)
    eager.train()
    compiled.train()
    assert len(compiled.losses) == 20
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=2e-5)
    np.testing.assert_allclose([v for _, v in compiled.val_losses],
                               [v for _, v in eager.val_losses], rtol=2e-5)
    assert compiled._train_step.cache_info().variants == 1  # the lr is an input


def test_compiled_sampling_grows_the_context_with_two_variants():
    tg.manual_seed(0)
    model = gpt.GPT(TINY.model)
    eager, compiled = gpt.logits_program(model), gpt.logits_program(model, compile=True)
    rng = np.random.default_rng(0)
    text = rng.integers(0, len(gpt.VOCAB), size=3 * TINY.model.block_size)
    for t in [1, 2, 5, 15, 16, 17, 40]:  # shorter and longer than the context
        np.testing.assert_allclose(compiled(text[:t]), eager(text[:t]), rtol=1e-5, atol=1e-5)
    # the length 2 compiled statically, then every length (5, 15, 16) by one dynamic
    # variant (tg.compile's dynamic sizes): two variants
    info = compiled.program.cache_info()
    assert info.variants == 2 and len(info.dynamic) == 1, str(info)
    # Sampling 256 characters: the context grows, then slides
    a = gpt.sample(model, "def ", tokens=256, seed=1, compile=True)
    b = gpt.sample(model, "def ", tokens=256, seed=1)
    assert len(a) == 4 + 256 and a == b


def test_sampling_temperature_and_top_k():
    tg.manual_seed(0)
    model = gpt.GPT(TINY.model)
    greedy = gpt.sample(model, "x", tokens=30, top_k=1)
    assert greedy == gpt.sample(model, "x", tokens=30, top_k=1, seed=5)  # argmax: no chance
    assert gpt.sample(model, "x", tokens=30, temperature=2.0, top_k=None, seed=5) != greedy
    with pytest.raises(ValueError, match="temperature"):
        gpt.sample(model, "x", tokens=3, temperature=0.0)


def test_the_example_imports_nothing_from_the_demo_module():
    source = (EXAMPLES / "gpt.py").read_text()
    assert "tracegrad.demo" not in source and "from tracegrad import demo" not in source


def test_without_tqdm_and_matplotlib_it_prints_lines_and_skips_the_plot(monkeypatch, capsys,
                                                                        tmp_path, corpus):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # (import raises ImportError)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    trainer = gpt.Trainer(replace(TINY, steps=10, eval_every=5), corpus)
    trainer.train(progress=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    assert len(lines) == 10 and lines[-1].startswith("step 10/10: loss ")
    assert gpt.plot(trainer, 3.0, tmp_path / "x.png") is False
    assert not (tmp_path / "x.png").exists()

"""Models: a training step of the digits CNN and of a GPT, and GPT sampling, against PyTorch.

The model of ``examples/digits_cnn.py``: 1x8x8 digits, ``Conv2d(1, 32, 3, padding=1) - ReLU -
MaxPool2d(2) - Conv2d(32, 64, 3, padding=1) - ReLU - MaxPool2d(2) - Flatten - Linear(256, 10)``,
cross-entropy with label smoothing 0.1, AdamW (lr 3e-3, weight decay 1e-2), batches of 128.
One step is what a user writes: zero_grad, forward, loss, backward, step, ``loss.item()``.
All engines start from the same weights and see the same batches, so their losses must agree
step by step (printed). Issue 18's targets: eager <= 1.5x PyTorch eager, compiled <= 1.0x.

The GPT of ``examples/gpt.py`` (4 layers, 4 heads, 128 wide, context 64, batches of 16, on
windows of the standard library's sources): one step of AdamW with weight-decay groups and
gradient clipping, tracegrad eager and compiled against PyTorch eager and ``torch.compile``
(when it works here), losses compared step by step. Targets: eager <= 1.3x PyTorch eager,
compiled faster than torch.compile. And sampling 256 characters one at a time (greedy, so
every engine writes the same text): tokens per second, the compiled program serving the
growing context with one dynamic variant (at most 2 compiled variants; target: at least
PyTorch eager's speed).

    OPENBLAS_NUM_THREADS=1 python -m bench --only models
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import common, workloads

ROOT = Path(__file__).resolve().parent.parent

BATCH = workloads.BATCH
LR, WEIGHT_DECAY, SMOOTHING = 3e-3, 1e-2, 0.1
CHANNELS = (32, 64)
EAGER, COMPILED, TORCH, TORCH_COMPILE = "tracegrad", "tg compiled", "torch", "torch.compile"
LOSS_RTOL = 1e-3


def cnn(lib: Any, state: dict[str, np.ndarray] | None = None, channels: tuple = CHANNELS
        ) -> Any:
    """The digits CNN in ``lib`` (``tracegrad`` or ``torch``), loaded with ``state``."""
    nn = lib.nn
    c1, c2 = channels
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 2 * 2, 10))
    if state is not None:
        model.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    return model


def cnn_state(channels: tuple = CHANNELS, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights (tracegrad's PyTorch-style init after ``tg.manual_seed(seed)``)."""
    import tracegrad as tg

    tg.manual_seed(seed)
    return {k: v.numpy().copy() for k, v in cnn(tg, channels=channels).state_dict().items()}


def cnn_step(lib: Any, state: dict, data: list, compiled: bool = False,
             channels: tuple = CHANNELS) -> Callable[[int], float]:
    """``step(k)``: one AdamW step of the CNN on batch ``k`` (cyclically); returns the loss."""
    if lib.__name__ == "torch":
        lib.set_num_threads(1)
    model = cnn(lib, state, channels)
    opt = lib.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    cross_entropy = lib.nn.functional.cross_entropy

    def train_step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = cross_entropy(model(x), y, label_smoothing=SMOOTHING)
        loss.backward()
        opt.step()
        return loss

    fn = lib.compile(train_step) if compiled else train_step
    tensors = [(lib.from_numpy(x.reshape(-1, 1, 8, 8)), lib.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        return fn(*tensors[k % len(tensors)]).item()

    return step


# --------------------------------------------------------------------------------------
# The GPT of examples/gpt.py


GPT_SIZES = dict(block_size=64, n_layer=4, n_head=4, n_embd=128)  # issue 18's configuration
GPT_QUICK = dict(block_size=16, n_layer=1, n_head=2, n_embd=32)
GPT_BATCH, GPT_LR, GPT_DECAY, GPT_CLIP = 16, 1e-3, 0.1, 1.0
SAMPLE_TOKENS = 256


def gpt_example() -> Any:
    """``examples/gpt.py`` as a module (examples/ is a folder of scripts, not a package)."""
    module = sys.modules.get("gpt_example")
    if module is None:
        spec = importlib.util.spec_from_file_location("gpt_example", ROOT / "examples" / "gpt.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpt_example"] = module  # (dataclasses look their module up there)
        spec.loader.exec_module(module)
    return module


def torch_gpt(torch: Any, cfg: Any) -> Any:
    """The example's GPT written in PyTorch, parameter for parameter (same state dict keys)."""
    nn, F = torch.nn, torch.nn.functional
    C, H = cfg.n_embd, cfg.n_head

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)

        def forward(self, x: Any) -> Any:
            B, T, _ = x.shape
            q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2)
                       for t in self.qkv(x).split(C, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).reshape(B, T, C))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.attn, self.ln2 = nn.LayerNorm(C), Attention(), nn.LayerNorm(C)
            self.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C))

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(cfg.vocab_size, C)
            self.wpe = nn.Embedding(cfg.block_size, C)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.n_layer)])
            self.ln_f = nn.LayerNorm(C)

        def forward(self, idx: Any) -> Any:
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T

    return GPT()


def gpt_model(lib: Any, state: dict[str, np.ndarray], sizes: dict = GPT_SIZES) -> Any:
    gpt = gpt_example()
    cfg = gpt.GPTConfig(**sizes)
    model = gpt.GPT(cfg) if lib.__name__ == "tracegrad" else torch_gpt(lib, cfg)
    model.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
    return model


def gpt_state(sizes: dict = GPT_SIZES, seed: int = 0) -> dict[str, np.ndarray]:
    """The example's initial weights after ``tg.manual_seed(seed)``."""
    import tracegrad as tg

    gpt = gpt_example()
    tg.manual_seed(seed)
    model = gpt.GPT(gpt.GPTConfig(**sizes))
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def gpt_batches(n: int, sizes: dict = GPT_SIZES, seed: int = 0
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` batches of windows of the example's training text: inputs and next characters."""
    data = gpt_example().load_corpus().train
    rng = np.random.default_rng(seed)
    block = sizes["block_size"]
    out = []
    for _ in range(n):
        starts = rng.integers(0, len(data) - block - 1, size=GPT_BATCH)
        rows = data[starts[:, None] + np.arange(block + 1)].astype(np.int64)
        out.append((rows[:, :-1].copy(), rows[:, 1:].copy()))
    return out


def gpt_step(lib: Any, state: dict, data: list, compiled: bool = False,
             sizes: dict = GPT_SIZES) -> Callable[[int], float]:
    """``step(k)``: one training step of the GPT on batch ``k`` (cyclically); the loss."""
    model = gpt_model(lib, state, sizes)
    groups = gpt_example().param_groups(model, GPT_DECAY)
    opt = lib.optim.AdamW(groups, lr=GPT_LR, betas=(0.9, 0.95))
    if lib.__name__ == "tracegrad":
        train_step, _ = gpt_example().training_functions(model, opt, GPT_CLIP)
    else:
        lib.set_num_threads(1)
        F = lib.nn.functional

        def train_step(x: Any, y: Any) -> Any:
            opt.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), GPT_CLIP)
            opt.step()
            return loss

    fn = lib.compile(train_step) if compiled else train_step
    tensors = [(lib.from_numpy(x), lib.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        return fn(*tensors[k % len(tensors)]).item()

    return step


def gpt_sampler(lib: Any, state: dict, compiled: bool = False, sizes: dict = GPT_SIZES,
                tokens: int = SAMPLE_TOKENS) -> tuple[Callable, Any]:
    """``(run(k), program)``: ``run`` writes ``tokens`` characters greedily after a
    newline and returns them; ``program`` is tracegrad's compiled function (or None)."""
    model = gpt_model(lib, state, sizes)
    model.eval()
    program = None
    if lib.__name__ == "tracegrad":
        next_logits = gpt_example().logits_program(model, compiled)
        program = getattr(next_logits, "program", None) if compiled else None
    else:
        lib.set_num_threads(1)
        block = sizes["block_size"]

        def next_logits(context: np.ndarray) -> np.ndarray:
            with lib.no_grad():
                idx = lib.from_numpy(np.asarray(context[-block:], dtype=np.int64)[None])
                return model(idx)[0, -1].numpy()

    def run(k: int) -> str:
        ids = [0]
        for _ in range(tokens):
            ids.append(int(np.argmax(next_logits(np.array(ids)))))
        return gpt_example().decode(ids[1:])

    return run, program


def run(quick: bool = False) -> dict[str, Any]:
    """Time the engines step by step, interleaved in blocks of 5 steps: the digits CNN, then
    the GPT's training step, then GPT sampling.

    ``quick``: a smaller CNN (4 and 8 channels) and GPT (1 layer, 32 wide, context 16), 2
    warm-up and 4 timed steps, 16 sampled tokens, and no torch.compile.
    """
    warmup, repeats, block = (2, 4, 2) if quick else (10, 100, 5)
    names, missing, rows, notes, extra, targets = [EAGER, COMPILED], {}, [], [], [], []
    details: dict[str, Any] = {"warmup": warmup, "repeats": repeats}
    result = common.result("models", "models: training steps of the digits CNN and a GPT, "
                           "and GPT sampling", names, missing, rows, notes, extra, targets,
                           details)
    torch = common.import_peer("torch")
    if torch is None:
        missing["torch"] = common.missing_note("torch")
    else:
        names.append(TORCH)
        if not quick:
            names.append(TORCH_COMPILE)
    notes.append(
        "float32, one BLAS thread, torch.set_num_threads(1); engines interleaved in blocks of "
        f"{block} steps in one process, a full gc.collect() after each block (not timed); "
        "the compiled steps' first calls (the traces) are warm-up steps")
    if common.import_peer("sklearn.datasets") is None:
        notes.append("digits CNN skipped: scikit-learn " + common.missing_note("scikit-learn"))
    else:
        _bench_cnn(torch, quick, (warmup, repeats, block), result)
    _bench_gpt(torch, quick, (warmup, repeats, block), result)
    _bench_sampling(torch, quick, result)
    return result


def _bench_cnn(torch: Any, quick: bool, timing: tuple, result: dict) -> None:
    import tracegrad as tg

    warmup, repeats, block = timing
    rows, notes, extra, targets, details = (result[k] for k in
                                            ("rows", "notes", "extra", "targets", "details"))
    channels = (4, 8) if quick else CHANNELS
    names = [n for n in result["engines"] if n != TORCH_COMPILE]
    state = cnn_state(channels)
    data = workloads.batches(8, seed=3)
    libs = {EAGER: tg, COMPILED: tg, TORCH: torch}
    steps = {n: cnn_step(libs[n], state, data, n == COMPILED, channels) for n in names}
    timings = common.interleaved(steps, warmup, repeats, block=block)
    losses = {n: t.pop("outputs") for n, t in timings.items()}
    med = {n: common.median(t["seconds"]) for n, t in timings.items()}
    cpu = {n: common.median(t["cpu_seconds"]) for n, t in timings.items()}
    c1, c2 = channels
    rows.append(common.row(f"digits CNN ({c1}, {c2} channels): one step, batch {BATCH}", "s",
                           med))
    rows.append(common.row("digits CNN: one step, CPU time", "s", cpu))
    if TORCH in med:
        targets.append(common.target("CNN eager / PyTorch eager", med[EAGER] / med[TORCH],
                                     1.5, higher_is_better=False, unit="x"))
        targets.append(common.target("CNN compiled / PyTorch eager",
                                     med[COMPILED] / med[TORCH], 1.0, higher_is_better=False,
                                     unit="x"))
    notes.append(
        f"CNN step: median [min .. max] of {repeats}: "
        + "; ".join(f"{n} {common.spread(t['seconds'], 1e3, ' ms')}"
                    for n, t in timings.items()))
    agree = common.losses_agree(losses, LOSS_RTOL)
    extra.append(f"CNN training loss per step ({'agree' if agree else 'DISAGREE'}, rel. "
                 f"tolerance {LOSS_RTOL:g}):\n"
                 + common.loss_table(losses, warmup, decimals=6,
                                     shown=range(min(6, warmup + repeats)), total="all steps"))
    details.update(channels=channels, timings=timings, losses=losses, losses_agree=agree)


def _bench_gpt(torch: Any, quick: bool, timing: tuple, result: dict) -> None:
    import tracegrad as tg

    warmup, repeats, block = timing
    if not quick:  # the GPT step takes ~10x the CNN's: fewer repeats
        repeats = 30
    rows, notes, extra, targets = (result[k] for k in ("rows", "notes", "extra", "targets"))
    sizes = GPT_QUICK if quick else GPT_SIZES
    state = gpt_state(sizes)
    data = gpt_batches(8, sizes)
    libs = {EAGER: tg, COMPILED: tg, TORCH: torch, TORCH_COMPILE: torch}
    failed: dict[str, str] = {}
    steps = {}
    for n in result["engines"]:
        step = gpt_step(libs[n], state, data, n in (COMPILED, TORCH_COMPILE), sizes)
        steps[n] = common.guarded(n, step, failed, "unavailable") if n == TORCH_COMPILE \
            else step
    timings = common.interleaved(steps, warmup, repeats, block=block)
    for n, why in failed.items():
        timings.pop(n)
        result["missing"][n] = why
    losses = {n: t.pop("outputs") for n, t in timings.items()}
    med = {n: common.median(t["seconds"]) for n, t in timings.items()}
    cpu = {n: common.median(t["cpu_seconds"]) for n, t in timings.items()}
    shape = (f"{sizes['n_layer']} layers, {sizes['n_head']} heads, {sizes['n_embd']} wide, "
             f"context {sizes['block_size']}, batch {GPT_BATCH}")
    rows.append(common.row(f"GPT ({shape}): one step", "s", med))
    rows.append(common.row("GPT: one step, CPU time", "s", cpu))
    if TORCH in med:
        targets.append(common.target("GPT eager / PyTorch eager", med[EAGER] / med[TORCH],
                                     1.3, higher_is_better=False, unit="x"))
    if TORCH_COMPILE in med:
        targets.append(common.target("GPT compiled / torch.compile",
                                     med[COMPILED] / med[TORCH_COMPILE], 1.0,
                                     higher_is_better=False, unit="x"))
    notes.append(
        f"GPT step: median [min .. max] of {repeats}: "
        + "; ".join(f"{n} {common.spread(t['seconds'], 1e3, ' ms')}"
                    for n, t in timings.items()))
    agree = common.losses_agree(losses, LOSS_RTOL)
    extra.append(f"GPT training loss per step ({'agree' if agree else 'DISAGREE'}, rel. "
                 f"tolerance {LOSS_RTOL:g}):\n"
                 + common.loss_table(losses, warmup, decimals=6,
                                     shown=range(min(6, warmup + repeats)), total="all steps"))
    result["details"]["gpt"] = {"sizes": sizes, "timings": timings, "losses": losses,
                                "losses_agree": agree}


def _bench_sampling(torch: Any, quick: bool, result: dict) -> None:
    import tracegrad as tg

    sizes = GPT_QUICK if quick else GPT_SIZES
    tokens = 16 if quick else SAMPLE_TOKENS
    names = [n for n in (EAGER, COMPILED, TORCH) if n in result["engines"]]
    libs = {EAGER: tg, COMPILED: tg, TORCH: torch}
    state = gpt_state(sizes)
    runs, programs = {}, {}
    for n in names:
        runs[n], programs[n] = gpt_sampler(libs[n], state, n == COMPILED, sizes, tokens)
    repeats = 2 if quick else 5
    timings = common.interleaved(runs, 1, repeats)
    texts = {n: t.pop("outputs") for n, t in timings.items()}
    per_second = {n: tokens / common.median(t["seconds"]) for n, t in timings.items()}
    result["rows"].append(common.row(f"GPT sampling: {tokens} tokens one at a time",
                                     "tokens/s", per_second))
    variants = programs[COMPILED].cache_info().variants
    same = all(texts[n] == texts[EAGER] for n in texts)
    verdict = "it does" if same else "IT DOES NOT"
    result["notes"].append(
        f"sampling: greedy, so every engine writes the same text ({verdict}); tg compiled "
        f"samples the growing context (no padding: its length is a dynamic size, "
        f"context up to {sizes['block_size']}) and used {variants} compiled variant(s); "
        "the first run of each engine is a warm-up (tg compiled: one program for every "
        "length, each new length traced once, since the model reads it: in the warm-up)")
    result["targets"].append(common.target("sampling: compiled variants", variants, 2,
                                           higher_is_better=False))
    if TORCH in per_second:
        result["targets"].append(common.target(
            "sampling: compiled tokens/s / PyTorch eager's",
            per_second[COMPILED] / per_second[TORCH], 1.0, higher_is_better=True, unit="x"))
    result["details"]["sampling"] = {"tokens": tokens, "timings": timings, "texts": texts,
                                     "variants": variants, "same_text": same}

"""Train a character-level GPT on the Python standard library's own source code.

Every machine that runs this has the text: the ``.py`` files of the running interpreter's
standard library (a fixed, sorted list of modules; every 8th file is held out for
validation, so validation text is code the model never saw). The model is nanoGPT's, small:

    token + position embeddings
    n_layer x pre-norm blocks:  x + attention(layer_norm(x)),  x + mlp(layer_norm(x))
        causal multi-head self-attention, a 4x-wide GELU MLP
    final layer norm, logits = x @ token_embedding.T   (weight tying)

trained with AdamW (weight decay on matrices only), a linear warmup then a cosine decay of
the learning rate, and gradient clipping. It shows a progress bar (tqdm, if installed),
evaluates the validation loss, saves a checkpoint with ``tg.save`` (``--resume`` continues
it bit for bit), samples text with a temperature and top-k, and plots the loss curves
(matplotlib, if installed). ``--compile`` runs the training step, evaluation and sampling
through ``tg.compile``.

    python examples/gpt.py                  # about 5 minutes on 2 cores
    python examples/gpt.py --quick          # a smaller model, under a minute
    python examples/gpt.py --compile        # the same run, compiled
    python examples/gpt.py --resume         # continue a run stopped with Ctrl-C
    python examples/gpt.py --resume --steps 4000   # go on to step 4000 (the cosine
                                            # schedule then ends there)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import tracegrad as tg
import tracegrad.nn.functional as F
from tracegrad import nn

# ---------------------------------------------------------------- the data

# Modules present (as name.py or name/__init__.py) in every Python from 3.10 to 3.13.
STDLIB_MODULES = (
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "codecs", "collections",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "difflib", "dis",
    "enum", "fnmatch", "fractions", "functools", "getopt", "gettext", "glob", "gzip", "heapq",
    "hmac", "inspect", "ipaddress", "keyword", "linecache", "locale", "logging", "numbers",
    "operator", "optparse", "os", "pathlib", "pickle", "pprint", "queue", "random", "shlex",
    "shutil", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "timeit", "tokenize", "traceback", "types", "typing", "uuid",
    "warnings", "weakref", "zipfile",
)
VAL_EVERY = 8  # files 7, 15, 23, ... of the sorted list are the validation set

# A fixed vocabulary: newline, the 95 printable ASCII characters, and one token for anything
# else (tabs, non-ASCII letters in comments); so a checkpoint fits every Python version.
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127)) + "\N{REPLACEMENT CHARACTER}"
_CODES = np.full(0x110000, len(VOCAB) - 1, dtype=np.uint8)
_CODES[[ord(c) for c in VOCAB[:-1]]] = np.arange(len(VOCAB) - 1)


def encode(text: str) -> np.ndarray:
    """Characters to token ids (uint8): ``encode("ab")`` is ``[66, 67]``."""
    return _CODES[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]


def decode(ids: Sequence[int] | np.ndarray) -> str:
    return "".join(VOCAB[int(i)] for i in ids)


def stdlib_files() -> list[Path]:
    """The source file of each module in `STDLIB_MODULES` (a package's ``__init__.py``)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for name in STDLIB_MODULES:
        for path in (root / f"{name}.py", root / name / "__init__.py"):
            if path.is_file():
                files.append(path)
                break
    return files


@dataclass
class Corpus:
    train: np.ndarray  # token ids of the training files, concatenated
    val: np.ndarray
    train_files: list[str]
    val_files: list[str]

    def unigram_loss(self) -> float:
        """Validation cross-entropy (nats/char) of the training text's character frequencies
        (add-one smoothed): the loss of a model that ignores context, the bar to beat."""
        counts = np.bincount(self.train, minlength=len(VOCAB)) + 1.0
        logp = np.log(counts / counts.sum())
        return float(-logp[self.val].mean())


def load_corpus() -> Corpus:
    files = stdlib_files()
    if len(files) < VAL_EVERY:
        raise RuntimeError(f"gpt.py: found only {len(files)} standard library sources under "
                           f"{sysconfig.get_paths()['stdlib']}; this example needs them")
    split: dict[bool, list[Path]] = {True: [], False: []}
    for i, path in enumerate(files):
        split[i % VAL_EVERY == VAL_EVERY - 1].append(path)

    def ids(paths: list[Path]) -> np.ndarray:
        return encode("".join(p.read_text(encoding="utf-8", errors="replace") for p in paths))

    return Corpus(ids(split[False]), ids(split[True]), [p.name for p in split[False]],
                  [p.name for p in split[True]])


def get_batch(data: np.ndarray, batch_size: int, block_size: int,
              rng: np.random.Generator) -> tuple[tg.Tensor, tg.Tensor]:
    """``batch_size`` random windows of ``data``: inputs and the next character of each."""
    starts = rng.integers(0, len(data) - block_size - 1, size=batch_size)
    rows = data[starts[:, None] + np.arange(block_size + 1)].astype(np.int64)
    return tg.from_numpy(rows[:, :-1].copy()), tg.from_numpy(rows[:, 1:].copy())


# ---------------------------------------------------------------- the model


@dataclass
class GPTConfig:
    vocab_size: int = len(VOCAB)
    block_size: int = 64  # the longest context
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head}")
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # queries, keys, values at once
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        # -inf above the diagonal, added to the scores (is_causal's mask), cut to the
        # context's length: a slice of a tensor the model holds is one compiled program
        # for every length (tg.compile's dynamic sizes), a mask made per call is not
        block = cfg.block_size
        self.register_buffer("causal", tg.tensor(np.triu(np.full((block, block), -np.inf,
                                                                  np.float32), 1)),
                             persistent=False)

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        B, T, C = x.shape
        H = self.n_head
        q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2)  # (B, H, T, C/H)
                   for t in self.qkv(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.causal[:T, :T])
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd))

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token ids (B, T) -> next-character logits (B, T, vocab_size)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        # GPT-2's init: N(0, 0.02), the projections into the residual stream scaled down by
        # sqrt(2 * n_layer) (each block adds two of them), biases zero.
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.ndim == 2:
                std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("proj.weight") \
                    or name.endswith("mlp.2.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: tg.Tensor) -> tg.Tensor:
        T = idx.shape[1]
        if T > self.cfg.block_size:
            raise ValueError(f"GPT: {T} tokens, but the context is {self.cfg.block_size}")
        x = self.wte(idx) + self.wpe.weight[:T]  # (the rows of positions 0..T-1)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T  # weight tying: the embedding reads out

    def loss(self, idx: tg.Tensor, targets: tg.Tensor) -> tg.Tensor:
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay for the matrices (linear weights, embeddings), none for biases and
    layer norms, as in GPT-2."""
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


# ---------------------------------------------------------------- training


@dataclass
class TrainConfig:
    steps: int = 2500
    batch_size: int = 16
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: int = 100
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_batches: int = 16
    seed: int = 0
    model: GPTConfig = field(default_factory=GPTConfig)


QUICK = TrainConfig(steps=300, lr=5e-3, min_lr=5e-4, warmup=20, eval_every=100,
                    eval_batches=8, model=GPTConfig(block_size=32, n_layer=2, n_embd=64))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` over ``warmup`` steps, then a cosine down to ``min_lr``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def training_functions(model: GPT, opt: tg.optim.Optimizer, grad_clip: float
                       ) -> tuple[Callable, Callable]:
    """``train_step(x, y)``, one AdamW step on a batch, and ``eval_loss(x, y)``; each
    returns the loss. (Closures over the model and the optimizer only, so that what
    ``tg.compile`` guards on is just what they read.)"""

    def train_step(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
        opt.zero_grad()
        loss = model.loss(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        return loss

    def eval_loss(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
        with tg.no_grad():
            return model.loss(x, y)

    return train_step, eval_loss


class Trainer:
    """The model, its optimizer and the record of a run; `train` continues it, `save` and
    `Trainer.load` checkpoint it. The batch of step ``s`` is drawn from a generator seeded
    by ``(seed, s)``, so a resumed run sees exactly the batches the uninterrupted one would."""

    def __init__(self, cfg: TrainConfig, corpus: Corpus, compile: bool = False):
        self.cfg, self.corpus, self.compiled = cfg, corpus, compile
        tg.manual_seed(cfg.seed)
        self.model = GPT(cfg.model)
        self.opt = tg.optim.AdamW(param_groups(self.model, cfg.weight_decay), lr=cfg.lr,
                                  betas=cfg.betas)
        self.step = 0
        self.stop_requested = False
        self.losses: list[float] = []  # training loss of every step
        self.val_losses: list[tuple[int, float]] = []  # (step, validation loss)
        step, evaluate = training_functions(self.model, self.opt, cfg.grad_clip)
        self._train_step = tg.compile(step) if compile else step
        self._eval_loss = tg.compile(evaluate) if compile else evaluate

    def batch(self, data: np.ndarray, *seed: int) -> tuple[tg.Tensor, tg.Tensor]:
        rng = np.random.default_rng((self.cfg.seed, *seed))
        return get_batch(data, self.cfg.batch_size, self.cfg.model.block_size, rng)

    def evaluate(self) -> float:
        """Mean loss over a fixed set of validation batches."""
        self.model.eval()
        losses = [self._eval_loss(*self.batch(self.corpus.val, 1, i)).item()
                  for i in range(self.cfg.eval_batches)]
        self.model.train()
        return float(np.mean(losses))

    def train(self, steps: int | None = None, progress: bool = False) -> None:
        """Train until step ``steps`` (default: the config's last), evaluating every
        ``eval_every`` steps and after the config's last step; or until ``stop_requested``
        is set (by Ctrl-C in `main`), after a whole step."""
        end = self.cfg.steps if steps is None else steps
        bar = _progress(range(self.step, end), progress, self.step, end)
        for _ in bar:
            lr = lr_at(self.step, self.cfg)
            for group in self.opt.param_groups:
                group["lr"] = lr  # a float: an input of the compiled step, no recompiling
            loss = self._train_step(*self.batch(self.corpus.train, 0, self.step)).item()
            self.losses.append(loss)
            self.step += 1
            if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps:
                self.val_losses.append((self.step, self.evaluate()))
            if self.stop_requested:
                break
            if hasattr(bar, "set_postfix"):
                val = f"{self.val_losses[-1][1]:.3f}" if self.val_losses else "-"
                bar.set_postfix(loss=f"{loss:.3f}", val=val, lr=f"{lr:.1e}")

    def save(self, path: str | Path) -> None:
        """Model, optimizer state, step and the loss record in one safetensors file."""
        tg.save({
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "losses": tg.tensor(np.array(self.losses, dtype=np.float64)),
            "val_losses": tg.tensor(np.array(self.val_losses, dtype=np.float64).reshape(-1, 2)),
            "config": {k: v for k, v in asdict(self.cfg.model).items()},
        }, path)

    @classmethod
    def load(cls, path: str | Path, cfg: TrainConfig, corpus: Corpus,
             compile: bool = False) -> "Trainer":
        """A trainer in the state `save` wrote: training on continues the run exactly."""
        ckpt = tg.load(path)
        saved = GPTConfig(**{k: int(v) for k, v in ckpt["config"].items()})
        if saved != cfg.model:
            raise ValueError(f"gpt.py: the checkpoint {path} holds a {saved}, but the run asks "
                             f"for a {cfg.model}; use the same settings (--quick or not)")
        trainer = cls(cfg, corpus, compile)
        trainer.model.load_state_dict(ckpt["model"])
        trainer.opt.load_state_dict(ckpt["optimizer"])
        trainer.step = int(ckpt["step"])
        trainer.losses = ckpt["losses"].numpy().tolist()
        trainer.val_losses = [(int(s), v) for s, v in ckpt["val_losses"].numpy().tolist()]
        return trainer


@contextlib.contextmanager
def _ctrl_c_stops(trainer: Trainer) -> Iterator[None]:
    """Ctrl-C asks the trainer to stop after the step it is in (a step cut in half would
    leave some parameters updated and others not: no checkpoint to resume bit for bit)."""
    def stop(signum: int, frame: Any) -> None:
        trainer.stop_requested = True

    try:
        previous = signal.signal(signal.SIGINT, stop)
    except ValueError:  # not the main thread: Ctrl-C stays as it was
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(steps: range, progress: bool, start: int, end: int) -> Any:
    if not progress:
        return steps
    try:
        from tqdm import tqdm
    except ImportError:  # no bar: a line every tenth of the way
        return _Printer(steps, end)
    return tqdm(steps, initial=start, total=end, desc="gpt", unit="step", file=sys.stdout)


class _Printer:
    """What the progress bar shows, as a printed line every tenth of the run."""

    def __init__(self, steps: range, end: int):
        self.steps, self.every, self.shown = steps, max(1, end // 10), {}

    def __iter__(self):
        for i in self.steps:
            yield i
            if (i + 1) % self.every == 0 or i + 1 == self.steps.stop:
                print(f"step {i + 1}/{self.steps.stop}: " + ", ".join(
                    f"{k} {v}" for k, v in self.shown.items()), flush=True)

    def set_postfix(self, **shown: str) -> None:
        self.shown = shown


# ---------------------------------------------------------------- sampling


def logits_program(model: GPT, compile: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """``next_logits(context)``: the logits (float64) that follow a 1-d array of ids.

    Compiled, the context grows by one token a call: after the first change of its length
    ``tg.compile`` makes the length a dynamic size, and one variant serves every length
    from 2 up to ``block_size`` (see docs/compiler.md, "Dynamic shapes"); a single token is
    right-padded to two, which causal attention makes exact.
    """
    block = model.cfg.block_size

    def logits(idx: tg.Tensor) -> tg.Tensor:
        with tg.no_grad():
            return model(idx)

    program = tg.compile(logits) if compile else logits

    def next_logits(context: np.ndarray) -> np.ndarray:
        context = np.asarray(context[-block:], dtype=np.int64)
        t = len(context)
        if compile and t == 1:
            # tg.compile never makes length 1 dynamic (it broadcasts): right-padded to 2,
            # exactly the same logits at position 0 (causal attention), and no variant of
            # its own
            context = np.concatenate([context, context])
        out = program(tg.from_numpy(context[None]))
        return out.numpy()[0, t - 1].astype(np.float64)

    next_logits.program = program  # type: ignore[attr-defined]  # for cache_info()
    return next_logits


def sample(model: GPT, prompt: str = "\n", tokens: int = 300, temperature: float = 0.8,
           top_k: int | None = 20, seed: int = 0, compile: bool = False) -> str:
    """``tokens`` characters after ``prompt``, drawn one at a time from the model's
    distribution sharpened by ``temperature`` and cut to the ``top_k`` likeliest."""
    if temperature <= 0:
        raise ValueError(f"sample: temperature must be positive, got {temperature}")
    model.eval()
    next_logits = logits_program(model, compile)
    rng = np.random.default_rng(seed)
    ids = list(encode(prompt or "\n"))
    for _ in range(tokens):
        logits = next_logits(np.array(ids)) / temperature
        if top_k is not None and top_k < len(logits):
            logits[logits < np.partition(logits, -top_k)[-top_k]] = -np.inf
        p = np.exp(logits - logits.max())
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train()
    return decode(ids)


# ---------------------------------------------------------------- the command line


def plot(trainer: Trainer, unigram: float, path: str | Path) -> bool:
    """The training loss (a running mean over 50 steps) and the validation loss; False
    when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    losses = np.array(trainer.losses)
    window = min(50, len(losses))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(np.arange(window, len(losses) + 1), smooth, label="training (mean of 50 steps)")
    if trainer.val_losses:
        steps, vals = zip(*trainer.val_losses)
        ax.plot(steps, vals, "o-", label="validation")
    ax.axhline(unigram, color="gray", linestyle="--", label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / character)")
    ax.set_title("character-level GPT on the Python standard library")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> Trainer:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller model, 300 steps")
    parser.add_argument("--steps", type=int, help="train until this step")
    parser.add_argument("--compile", action="store_true", help="use tg.compile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="gpt.safetensors")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint")
    parser.add_argument("--tokens", type=int, default=300, help="characters to sample")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--prompt", default="def ")
    parser.add_argument("--out", default="gpt_loss.png", help="the loss curve picture")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    cfg = replace(QUICK if args.quick else TrainConfig(), seed=args.seed)
    if args.steps is not None:
        cfg = replace(cfg, steps=max(args.steps, cfg.warmup))
    corpus = load_corpus()
    unigram = corpus.unigram_loss()
    print(f"data: {len(corpus.train):,} training and {len(corpus.val):,} validation "
          f"characters from {len(corpus.train_files) + len(corpus.val_files)} standard library "
          f"files; unigram baseline {unigram:.3f} nats/char")
    if args.resume:
        trainer = Trainer.load(args.checkpoint, cfg, corpus, args.compile)
        print(f"resumed {args.checkpoint} at step {trainer.step}")
    else:
        trainer = Trainer(cfg, corpus, args.compile)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    print(f"model: {n_params:,} parameters, {cfg.model}")
    start = time.perf_counter()
    with _ctrl_c_stops(trainer):
        trainer.train(progress=not args.no_progress)
    seconds = time.perf_counter() - start
    if trainer.stop_requested:
        print(f"stopped at step {trainer.step}; --resume continues from the checkpoint")
    if trainer.val_losses:
        step, val = trainer.val_losses[-1]
        print(f"step {step}: validation loss {val:.3f} nats/char (unigram {unigram:.3f}); "
              f"trained {seconds:.0f} s")
    trainer.save(args.checkpoint)
    print(f"checkpoint: {args.checkpoint}")
    if args.out and trainer.losses and plot(trainer, unigram, args.out):
        print(f"loss curves: {args.out}")
    if args.tokens:
        text = sample(trainer.model, args.prompt, args.tokens, args.temperature, args.top_k,
                      seed=args.seed, compile=args.compile)
        print("sample:\n" + text)
    return trainer


if __name__ == "__main__":
    main()

"""The workloads several benchmark modules run, written once: the digits MLP and the chain.

**The digits MLP** (`bench.tensor`, `bench.train`, `bench.compile`): scikit-learn's 8x8 digits
scaled to [0, 1], ``Linear(64, 256) - ReLU - Linear(256, 256) - ReLU - Linear(256, 10)``,
cross-entropy. Every engine starts from the same weights (`mlp_weights`) and, for a training
step, sees the same batches (`batches`). tracegrad's API follows PyTorch's, so the model, the
training step are written once for a ``lib`` that is ``tracegrad`` or ``torch``::

    model = mlp_model(tg, mlp_weights(SIZES))
    step = train_step(tg, model, tg.optim.SGD(model.parameters(), lr=0.1))

**The chain** (`bench.tensor`, `bench.compile`): 1,000 elementwise ops on a (4,) float32
tensor, ``y = y * c + d`` 500 times or ``y = (y * c + d).tanh() + d`` 250 times (`CHAINS`).
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any, Callable

import numpy as np

# --------------------------------------------------------------------------------------
# The digits MLP

SIZES = [64, 256, 256, 10]
BATCH = 128


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: X float32 (1797, 64) scaled to [0, 1], y int64 (1797,)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def mlp_weights(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (out, in), bias (out,)) float32 per layer, drawn as PyTorch's Linear does by
    default, U(-1/sqrt(in), 1/sqrt(in)), from one seeded generator: every engine of a
    benchmark starts from these same numbers."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / n_in**0.5
        w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
        layers.append((w, b))
    return layers


def batches(count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` batches of BATCH digits, drawn without replacement epoch by epoch."""
    X, y = digits()
    rng = np.random.default_rng(seed)
    out: list[tuple] = []
    while len(out) < count:
        order = rng.permutation(len(X))
        for i in range(0, len(X) - BATCH + 1, BATCH):
            idx = order[i:i + BATCH]
            out.append((np.ascontiguousarray(X[idx]), np.ascontiguousarray(y[idx])))
    return out[:count]


def mlp_model(lib: ModuleType, weights: list) -> Any:
    """``lib.nn.Sequential`` of Linear and ReLU holding a copy of ``weights``; ``lib`` is
    ``tracegrad`` or ``torch`` (which then runs on one thread)."""
    if lib.__name__ == "torch":
        lib.set_num_threads(1)
    layers: list[Any] = []
    for w, _ in weights:
        layers += [lib.nn.Linear(w.shape[1], w.shape[0]), lib.nn.ReLU()]
    model = lib.nn.Sequential(*layers[:-1])
    state = {}
    for i, (w, b) in enumerate(weights):
        state[f"{2 * i}.weight"], state[f"{2 * i}.bias"] = lib.tensor(w), lib.tensor(b)
    model.load_state_dict(state)
    return model


def train_step(lib: ModuleType, model: Any, opt: Any) -> Callable[[Any, Any], Any]:
    """The training step as a user writes it; ``tg.compile`` and ``torch.compile`` take it
    unchanged. Returns the loss tensor."""
    cross_entropy = lib.nn.functional.cross_entropy

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def sgd_steps(lib: ModuleType, weights: list, data: list, lr: float,
              compiled: bool = False) -> tuple[Callable[[int], float], Any]:
    """``step(k)``: one SGD `train_step` of the MLP in ``lib`` on batch ``data[k]``, returning
    the loss; through ``lib.compile`` if ``compiled`` (``step.compiled`` is the stepping
    function either way). Also returns the model."""
    model = mlp_model(lib, weights)
    step_fn = train_step(lib, model, lib.optim.SGD(model.parameters(), lr=lr))
    if compiled:
        step_fn = lib.compile(step_fn)
    tensors = [(lib.from_numpy(x), lib.from_numpy(y)) for x, y in data]

    def step(k: int) -> float:
        return step_fn(*tensors[k]).item()

    step.compiled = step_fn  # type: ignore[attr-defined]
    return step, model


# --------------------------------------------------------------------------------------
# The chain

N_OPS = 1000

# The chain's data: c near 1 and d small keep 500 steps finite and the gradient O(1).
X0 = np.array([0.5, -0.3, 0.8, 0.1], dtype=np.float32)
C = np.array([0.999, 1.001, 0.998, 1.0005], dtype=np.float32)
D = np.array([0.001, -0.002, 0.003, 0.0005], dtype=np.float32)

# name -> (ops per repetition, uses tanh)
CHAINS = {"mul/add": (2, False), "mul/add/tanh/add": (4, True)}


def chain(x: Any, c: Any, d: Any, reps: int, tanh: bool,
          tanh_fn: Callable[[Any], Any] | None = None) -> Any:
    """``reps`` repetitions of ``y = y * c + d``, or with ``tanh`` of ``y = tanh(y * c + d) + d``,
    on any array type; ``tanh_fn`` for the functional ones (``jnp.tanh``), else ``.tanh()``.

    >>> chain(X0, C, D, 1, tanh=True, tanh_fn=np.tanh).shape
    (4,)
    """
    y = x
    if not tanh:
        for _ in range(reps):
            y = y * c + d
    elif tanh_fn is None:
        for _ in range(reps):
            y = (y * c + d).tanh() + d
    else:
        for _ in range(reps):
            y = tanh_fn(y * c + d) + d
    return y


def eager_chain_step(lib: ModuleType, reps: int, tanh: bool) -> Callable[[int], tuple]:
    """A timed chain step for ``lib`` (``tracegrad`` or ``torch``): returns (forward seconds,
    backward seconds, x.grad)."""
    c, d = lib.tensor(C), lib.tensor(D)

    def step(k: int) -> tuple:
        t0 = time.perf_counter()
        x = lib.tensor(X0, requires_grad=True)
        loss = chain(x, c, d, reps, tanh).sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, x.grad.numpy()

    return step

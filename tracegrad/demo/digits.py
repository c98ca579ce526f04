"""Demo section ``tensor``: an MLP of tensors learns sklearn's digits; saved, reloaded, exported."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..plots import training_curves
from .tour import Demo, _need, _one_blas_thread

DIGITS_SIZES = (64, 256, 256, 10)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: images float32 (1797, 64) scaled to [0, 1], labels int64."""
    digits = _need("sklearn.datasets").load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


DIGITS_TEST_SIZE = 0.25  # a fixed split: train_test_split(test_size=0.25, random_state=0)
DIGITS_MLP_EPOCHS = 30  # the full setting: >= 97% test accuracy
DIGITS_MLP_QUICK_EPOCHS = 8  # `tracegrad demo --quick`


@dataclass
class DigitsSplit:
    """The digits, split once and for all: 1347 training and 450 test samples."""

    X_train: np.ndarray  # float32 in [0, 1]: (N, 64), or (N, 1, 8, 8) as images
    y_train: np.ndarray  # int64 labels 0..9
    X_test: np.ndarray
    y_test: np.ndarray


def digits_split(images: bool = False) -> DigitsSplit:
    """`digits_data` split 75/25 with ``train_test_split(..., random_state=0)``; ``images``
    reshapes each sample to one 8x8 channel, (1, 8, 8), for a convolutional net."""
    X, y = digits_data()
    if images:
        X = X.reshape(-1, 1, 8, 8)
    split = _need("sklearn.model_selection").train_test_split
    X_train, X_test, y_train, y_test = split(X, y, test_size=DIGITS_TEST_SIZE, random_state=0)
    return DigitsSplit(X_train, y_train, X_test, y_test)


def digits_mlp(sizes: Sequence[int] = DIGITS_SIZES) -> Any:
    """``Linear - ReLU - ... - Linear`` with the given layer sizes (64-256-256-10)."""
    import tracegrad as tg

    layers: list[Any] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [tg.nn.Linear(n_in, n_out), tg.nn.ReLU()]
    return tg.nn.Sequential(*layers[:-1])


@dataclass
class TrainRun:
    """The result of `train_classifier`: the trained model and the history of training."""

    model: Any  # a tg.nn.Module, in eval mode
    losses: list[float]  # training loss of every batch, in order
    test_accuracies: list[float]  # after each epoch
    train_accuracy: float  # of the final model
    test_accuracy: float
    seconds: float  # the training loop, without data loading and the final evaluation

    @property
    def epochs(self) -> int:
        return len(self.test_accuracies)

    def __repr__(self) -> str:
        return (f"TrainRun(epochs={self.epochs}, train_accuracy={self.train_accuracy:.2%}, "
                f"test_accuracy={self.test_accuracy:.2%}, seconds={self.seconds:.1f})")


def predict(model: Any, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's class scores for ``X`` (a NumPy array), in eval mode, without a graph."""
    import tracegrad as tg

    model.eval()
    with tg.no_grad():
        parts = [model(tg.from_numpy(X[i : i + batch_size])).numpy()
                 for i in range(0, len(X), batch_size)]
    return np.concatenate(parts)


def accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of ``X`` whose highest-scoring class is ``y``."""
    return float((predict(model, X).argmax(axis=1) == y).mean())


def train_classifier(model: Any, data: DigitsSplit, epochs: int, *, lr: float = 2e-3,
                     weight_decay: float = 1e-2, label_smoothing: float = 0.1,
                     batch_size: int = 128, seed: int = 0, progress: bool = False,
                     desc: str = "training") -> TrainRun:
    """Train ``model`` on ``data`` by cross-entropy: AdamW, a cosine learning-rate schedule
    over ``epochs``, shuffled batches; ``progress`` shows a tqdm bar with the loss.

    Label smoothing and weight decay keep the small net from growing overconfident on
    1347 images (each is worth about 0.5 % of test accuracy here). ``seed`` fixes the
    batch order; the initial weights are the model's (seed them with `tg.manual_seed`).

    >>> tg.manual_seed(0)
    >>> run = train_classifier(digits_mlp(), digits_split(), epochs=30)  # doctest: +SKIP
    >>> run.test_accuracy  # doctest: +SKIP
    0.9777777777777777
    """
    import tracegrad as tg
    from tracegrad.data import DataLoader, TensorDataset

    F = tg.nn.functional
    loader = DataLoader(TensorDataset(tg.from_numpy(data.X_train), tg.from_numpy(data.y_train)),
                        batch_size=batch_size, shuffle=True, seed=seed)
    opt = tg.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = tg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    bar = None
    if progress:
        bar = _need("tqdm").tqdm(total=epochs * len(loader), desc=f"  {desc}", unit="batch")
    losses: list[float] = []
    test_accuracies: list[float] = []
    start = time.perf_counter()
    with _one_blas_thread():
        for epoch in range(epochs):
            model.train()
            for xb, yb in loader:
                loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                if bar is not None:
                    bar.set_postfix({"epoch": epoch + 1, "loss": f"{losses[-1]:.4f}"},
                                    refresh=False)
                    bar.update()
            schedule.step()
            test_accuracies.append(accuracy(model, data.X_test, data.y_test))
        seconds = time.perf_counter() - start
        train_accuracy = accuracy(model, data.X_train, data.y_train)
    if bar is not None:
        bar.close()
    return TrainRun(model, losses, test_accuracies, train_accuracy, test_accuracies[-1], seconds)


def train_digits_mlp(epochs: int = DIGITS_MLP_EPOCHS, *, seed: int = 0,
                     progress: bool = False) -> TrainRun:
    """The 64-256-256-10 ReLU MLP on the digits split; 30 epochs reach >= 97 % test accuracy
    in a few seconds.

    >>> train_digits_mlp(30).test_accuracy >= 0.97  # doctest: +SKIP
    True
    """
    import tracegrad as tg

    data = digits_split()
    tg.manual_seed(seed)
    return train_classifier(digits_mlp(), data, epochs, seed=seed, progress=progress,
                            desc="digits MLP")


def section(demo: Demo) -> None:
    from tracegrad.io import load, save

    epochs = DIGITS_MLP_QUICK_EPOCHS if demo.quick else DIGITS_MLP_EPOCHS
    sizes = "-".join(map(str, DIGITS_SIZES))
    demo.say(
        f"A {sizes} MLP of tg.Tensors (tg.nn.Linear, ReLU) learns sklearn's 8x8 digits:\n"
        f"1347 training images, 450 held out; AdamW, batches of 128, {epochs} epochs."
    )
    demo.say()
    run = train_digits_mlp(epochs, progress=True)
    n_params = sum(p.numel() for p in run.model.parameters())
    data = digits_split()
    correct = round(run.test_accuracy * len(data.y_test))
    demo.say(
        f"  {n_params:,} parameters, {epochs} epochs in {run.seconds:.1f} s: "
        f"test accuracy {run.test_accuracy:.2%} ({correct}/{len(data.y_test)} images), "
        f"training accuracy {run.train_accuracy:.2%}"
    )
    demo.say()

    path = demo.out / "digits_mlp.safetensors"
    save(run.model.state_dict(), path)
    demo.wrote(path, "the trained weights (tg.save: safetensors, no pickle)")
    fresh = digits_mlp()  # new random weights ...
    fresh.load_state_dict(load(path))  # ... replaced by the saved ones
    before, after = predict(run.model, data.X_test), predict(fresh, data.X_test)
    same = np.array_equal(before, after)
    demo.say(
        f"  reloaded into a fresh model with tg.load: its {len(after)} test predictions "
        + ("match the trained model's exactly" if same else "DIFFER from the trained model's")
    )
    if not same:
        raise RuntimeError("the reloaded model predicts differently from the saved one")
    _onnx_round_trip(demo, run.model, data.X_test, before.argmax(1))
    demo.wrote(training_curves(run, demo.out / "digits_loss.png", f"digits, MLP {sizes}"),
               "the loss curve and the test accuracy per epoch")


def _onnx_round_trip(demo: Demo, model: Any, X: np.ndarray, labels: np.ndarray) -> None:
    """Export the model with tg.onnx.export and predict with ONNX Runtime, if installed."""
    try:
        import onnxruntime
    except ImportError:
        demo.say('  (with pip install "tracegrad[onnx]" it would also export the model to '
                 'ONNX and run it in ONNX Runtime)')
        return
    from .. import onnx as tg_onnx
    from ..tensor import Tensor

    path = demo.out / "digits_mlp.onnx"
    tg_onnx.export(model, Tensor(X[:2]), path, input_names=["images"],
                   output_names=["scores"], dynamic_axes={"images": {0: "batch"}})
    demo.wrote(path, "the model as ONNX (tg.onnx.export, batch axis dynamic)")
    (scores,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": X})
    same = np.array_equal(scores.argmax(1), labels)
    demo.say(f"  ONNX Runtime's {len(X)} test predictions "
             + ("match tracegrad's exactly" if same else "DIFFER from tracegrad's"))
    if not same:
        raise RuntimeError("the ONNX model predicts differently from tracegrad")

"""ONNX export: how long ``tg.onnx.export`` takes, and the exported digits models run in ONNX
Runtime next to tracegrad (eager and compiled): inference on a batch of 128, one thread.

The export time includes everything `export` does: two traces (the batch axis is dynamic),
the passes, the lowering, ``onnx.checker``, shape inference, and the verification run in
ONNX Runtime at both batch sizes.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np

from bench import common, workloads
from bench.models import CHANNELS, cnn, cnn_state

EAGER, COMPILED, ORT = "tracegrad", "tracegrad compiled", "onnxruntime"
BATCH = workloads.BATCH


def _models(tg: Any, quick: bool) -> tuple[dict[str, tuple[Any, tuple]], Any]:
    from tracegrad.demo import DIGITS_SIZES, digits_mlp

    channels = (4, 8) if quick else CHANNELS
    tg.manual_seed(0)
    mlp = digits_mlp((64, 32, 10) if quick else DIGITS_SIZES).eval()
    net = cnn(tg, cnn_state(channels), channels).eval()
    rng = np.random.default_rng(0)
    sizes = "-".join(map(str, (64, 32, 10) if quick else DIGITS_SIZES))
    return {
        f"digits MLP {sizes}": (mlp, (BATCH, 64)),
        f"digits CNN {channels}": (net, (BATCH, 1, 8, 8)),
    }, rng


def _steps(tg: Any, ort: Any, model: Any, x: Any, data: bytes) -> dict:
    """One inference call per engine: tracegrad eager, compiled, and the ONNX file."""
    compiled = tg.compile(model)
    steps = {EAGER: lambda k: model(x).numpy(), COMPILED: lambda k: compiled(x).numpy()}
    if ort is not None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        feed = {"input0": x.numpy()}
        steps[ORT] = lambda k: session.run(None, feed)[0]
    return steps


def run(quick: bool = False) -> dict[str, Any]:
    warmup, repeats, exports = (2, 5, 1) if quick else (20, 200, 5)
    names, missing, rows, notes = [EAGER, COMPILED], {}, [], []
    details: dict[str, Any] = {"warmup": warmup, "repeats": repeats}
    result = common.result("onnx", "ONNX: export time, and inference in ONNX Runtime",
                           names, missing, rows, notes, details=details)
    if common.import_peer("onnx") is None:
        missing["onnx"] = common.missing_note("onnx")
        notes.append("skipped: tg.onnx.export needs onnx")
        return result
    ort = common.import_peer("onnxruntime")
    if ort is None:
        missing[ORT] = common.missing_note("onnxruntime")
    else:
        names.append(ORT)

    import tracegrad as tg

    models, rng = _models(tg, quick)
    for label, (model, shape) in models.items():
        x = tg.tensor(rng.uniform(0, 1, shape).astype(np.float32))
        seconds, data = [], b""
        for _ in range(exports):
            buf = io.BytesIO()
            start = time.perf_counter()
            tg.onnx.export(model, x[:2], buf, dynamic_axes={"input0": {0: "batch"}})
            seconds.append(time.perf_counter() - start)
            data = buf.getvalue()
        rows.append(common.row(f"{label}: tg.onnx.export (verified)", "s",
                               {EAGER: common.median(seconds)}, ratio=False))
        steps = _steps(tg, ort, model, x, data)
        with tg.no_grad():
            timings = common.interleaved(steps, warmup, repeats)
        outputs = {n: t.pop("outputs")[-1] for n, t in timings.items()}
        agree = all(np.allclose(o, outputs[EAGER], rtol=1e-4, atol=1e-5)
                    for o in outputs.values())
        rows.append(common.row(f"{label}: inference, batch {BATCH}", "s",
                               {n: common.median(t["seconds"]) for n, t in timings.items()}))
        notes.append(f"{label}: outputs {'agree' if agree else 'DISAGREE'}; "
                     f"{len(data):,} bytes of ONNX")
        details[label] = {"export_seconds": seconds, "agree": agree,
                          **{n: t["seconds"] for n, t in timings.items()}}
    notes.append(f"inference: median of {repeats} calls, engines interleaved call by call; "
                 "one BLAS thread, onnxruntime with one intra-op and one inter-op thread; "
                 f"export: median of {exports} (batch axis dynamic, so two traces)")
    return result

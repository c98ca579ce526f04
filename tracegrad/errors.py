"""The exceptions tracegrad raises on purpose. Imports nothing of ours."""


class ShapeError(ValueError, RuntimeError):
    """Operands whose shapes do not fit the op; the message names the op, the shapes and a fix.

    Both a ``ValueError`` and a ``RuntimeError``: PyTorch raises ``RuntimeError`` for shape
    mismatches, so ported code that catches ``RuntimeError`` keeps working."""


class ValueRangeError(ValueError, RuntimeError):
    """Values outside an op's domain that PyTorch reports as ``RuntimeError`` (probabilities
    outside [0, 1]): both a ``ValueError`` and a ``RuntimeError``, as `ShapeError`."""


class DTypeError(TypeError, RuntimeError):
    """Operands whose dtypes an op refuses to mix (a float64 input into a float32 Linear):
    a ``TypeError``, and a ``RuntimeError`` as PyTorch raises."""


class TraceError(RuntimeError):
    """Something the compiler cannot capture (e.g. Python control flow on a traced value)."""


def shapes_str(*shapes: tuple) -> str:
    """``(2, 3), (4,)`` for messages."""
    return ", ".join(str(tuple(s)) for s in shapes)


class LinAlgError(ValueError, RuntimeError):
    """A matrix the factorization cannot take (singular for inv/solve, not positive-definite
    for cholesky): a ``RuntimeError`` as PyTorch's ``torch.linalg.LinAlgError``, and a
    ``ValueError`` as NumPy's ``np.linalg.LinAlgError``."""

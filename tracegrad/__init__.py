"""tracegrad: automatic differentiation you can read, with a compiler for speed.

>>> import tracegrad as tg
>>> x = tg.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward(); x.grad
tensor([2., 4.])
"""

import importlib as _importlib

from . import (
    autograd,  # noqa: E402  (tg.autograd: PyTorch's API, beside the engine)
    cuda,
    data,
    functional,
    linalg,
    memory,
    optim,
    utils,
)
from . import rng as random  # tg.random: torch.random's functions (fork_rng, ...)
from .anomaly import detect_anomaly
from .autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .creation import (
    arange,
    as_tensor,
    eye,
    from_numpy,
    full,
    is_tensor,
    linspace,
    logspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    range,
    tensor,
    tril_indices,
    triu_indices,
    zeros,
    zeros_like,
)
from .device import device
from .dtype_info import can_cast, finfo, iinfo, is_complex, promote_types, result_type
from .dtypes import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from .errors import DTypeError, ShapeError, TraceError, ValueRangeError
from .functional import (
    abs,
    addbmm,
    addmv,
    addr,
    allclose,
    amax,
    amin,
    argwhere,
    as_strided,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    baddbmm,
    bernoulli,
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    block_diag,
    bmm,
    broadcast_shapes,
    broadcast_tensors,
    broadcast_to,
    cartesian_prod,
    cdist,
    clamp,
    column_stack,
    combinations,
    concat,
    concatenate,
    corrcoef,
    count_nonzero,
    cov,
    cross,
    cumprod,
    diag,
    diag_embed,
    diagflat,
    diagonal,
    diff,
    dstack,
    einsum,
    empty,
    empty_like,
    equal,
    fliplr,
    flipud,
    floor_divide,
    fmod,
    frac,
    full_like,
    gather,
    gcd,
    hstack,
    index_add,
    index_put,
    index_select,
    inner,
    is_nonzero,
    isclose,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    kron,
    lcm,
    log_softmax,
    logcumsumexp,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    masked_select,
    max,
    maximum,
    mean,
    meshgrid,
    min,
    minimum,
    mm,
    movedim,
    multinomial,
    mv,
    nan_to_num,
    nanmean,
    nansum,
    narrow,
    nonzero,
    normal,
    outer,
    poisson,
    prod,
    rand_like,
    randint_like,
    randn_like,
    randperm,
    ravel,
    remainder,
    repeat_interleave,
    rot90,
    scatter,
    scatter_add,
    select,
    softmax,
    std,
    std_mean,
    take,
    tensordot,
    tile,
    trapezoid,
    trapz,
    tril,
    triu,
    trunc,
    unbind,
    vander,
    var,
    var_mean,
    vdot,
    vstack,
    where,
)
from .indexing import (
    diagonal_scatter,
    index_copy,
    index_fill,
    masked_scatter,
    put,
    scatter_reduce,
    select_scatter,
    slice_scatter,
)
from .io import load, save
from .linalg import TOP_LEVEL as _LINALG_TOP_LEVEL
from .printing import set_printoptions
from .rng import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    seed,
    set_rng_state,
)
from .runtime import (
    are_deterministic_algorithms_enabled,
    get_num_interop_threads,
    get_num_threads,
    is_deterministic_algorithms_warn_only_enabled,
    set_num_interop_threads,
    set_num_threads,
    use_deterministic_algorithms,
)
from .scalar import Value
from .searching import (
    aminmax,
    bincount,
    bucketize,
    cummax,
    cummin,
    histc,
    isin,
    kthvalue,
    median,
    mode,
    msort,
    nanmedian,
    nanquantile,
    quantile,
    searchsorted,
    unique,
    unique_consecutive,
    unravel_index,
)
from .size import Size
from .special import polygamma
from .tensor import Tensor, cat, stack
from .transforms import grad, hessian, jacfwd, jacrev, jvp, value_and_grad, vjp, vmap

# PyTorch's dtype names (tg.float is float32, as torch.float)
bool = bool_  # noqa: A001
float, double, half = float32, float64, float16  # noqa: A001
long, int, short = int64, int32, int16  # noqa: A001

__version__ = "0.1.0"


def _method_alias(name: str):
    def fn(x, *args, **kwargs):
        return getattr(x if isinstance(x, Tensor) else tensor(x), name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"``tg.{name}(x, ...)`` is ``x.{name}(...)``."
    return fn


# Math ops are both methods and functions, as in PyTorch.
_FUNCTION_ALIASES = [
    "exp", "log", "sqrt", "tanh", "sin", "cos", "sigmoid", "relu", "erf", "sign", "sum",
    "argmax", "argmin", "reshape", "permute", "transpose", "flatten", "squeeze", "unsqueeze",
    "matmul",
    # (issue 17) every method op PyTorch also has as a function
    "cumsum", "sort", "topk", "flip", "roll", "round", "floor", "ceil", "split", "chunk",
    "masked_fill", "square", "rsqrt", "reciprocal", "log1p", "expm1", "norm", "dot", "t",
    "clone", "numel", "take_along_dim", "unflatten", "swapaxes", "moveaxis", "argsort",
    "add", "sub", "mul", "div", "pow", "neg", "negative", "detach",
]
_FUNCTION_ALIASES += ["log2", "log10", "exp2", "sinh", "cosh", "logaddexp", "hypot", "lerp",
                      "addmm", "addcmul", "addcdiv", "logit", "clamp_min", "clamp_max"]
_FUNCTION_ALIASES += ["subtract", "multiply", "divide", "true_divide", "ger", "all", "any",
                      "clip", "eq", "ne", "lt", "le", "gt", "ge", "fix", "swapdims",
                      "is_floating_point", "tensor_split", "hsplit", "vsplit", "dsplit"]
_FUNCTION_ALIASES += ["lgamma", "digamma", "erfinv", "i0"]
_FUNCTION_ALIASES += ["tan", "asin", "acos", "atan", "atan2", "arcsin", "arccos", "arctan",
                      "arctan2", "asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh",
                      "erfc", "xlogy", "sinc", "heaviside", "copysign", "fmax", "fmin",
                      "signbit", "float_power", "deg2rad", "rad2deg", "logaddexp2",
                      "positive", "absolute", "not_equal", "sgn"]
for _name in _FUNCTION_ALIASES:
    globals()[_name] = _method_alias(_name)
# torch.inverse, torch.det, torch.svd, ...: tracegrad.linalg's functions
globals().update(_LINALG_TOP_LEVEL)

__all__ = [
    "Value", "Tensor", "ShapeError", "TraceError", "DTypeError", "ValueRangeError", "Graph",
    "TensorSpec", "compile", "explain",
    "trace", "save", "load", "data", "nn", "functional", "optim", "utils", "viz", "Generator",
    "distributions", "testing", "backends", "Size", "set_printoptions", "set_num_threads",
    "get_num_threads", "set_num_interop_threads", "get_num_interop_threads",
    "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
    "is_deterministic_algorithms_warn_only_enabled",
    "tensor", "from_numpy", "zeros", "ones", "full", "zeros_like", "ones_like", "arange",
    "linspace", "eye", "rand", "randn", "randint", "manual_seed", "is_tensor",
    "random", "seed", "initial_seed", "get_rng_state", "set_rng_state", "default_generator",
    "bernoulli", "normal", "poisson",
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
    "float", "double", "half", "long", "int", "short", "device", "cuda",
    "set_default_dtype", "get_default_dtype",
    "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "grad", "value_and_grad",
    "jvp", "vjp", "jacrev", "jacfwd", "hessian", "vmap", "autograd",
    "detect_anomaly", "where", "cat", "stack", "abs", "amax", "amin", "clamp", "log_softmax",
    "logsumexp", "max", "maximum", "mean", "min", "minimum", "softmax", "std", "var",
    "logical_and", "logical_or", "logical_xor", "logical_not", *_FUNCTION_ALIASES,
    "allclose", "argwhere", "as_strided", "bmm", "cumprod", "einsum", "empty", "empty_like",
    "floor_divide",
    "fmod", "frac", "full_like", "gather", "index_add", "index_put", "index_select",
    "isclose", "isfinite",
    "isinf", "isnan", "isneginf", "isposinf", "masked_select", "median", "mm", "movedim",
    "multinomial", "mv", "nan_to_num", "narrow", "nonzero", "outer", "prod", "rand_like",
    "randint_like", "randn_like", "randperm", "remainder", "repeat_interleave", "scatter",
    "scatter_add", "select", "tril", "triu", "trunc", "unbind", "diag", "diagonal",
    # array functions as PyTorch's (composites in functional.py; creation in creation.py)
    "tile", "hstack", "vstack", "dstack", "column_stack", "concat", "concatenate",
    "broadcast_to", "broadcast_tensors", "broadcast_shapes", "meshgrid", "atleast_1d",
    "atleast_2d", "atleast_3d", "ravel", "rot90", "fliplr", "flipud", "diff", "take",
    "diag_embed", "diagflat", "block_diag", "tril_indices", "triu_indices", "cross", "kron",
    "tensordot", "inner", "vdot", "trapezoid", "trapz", "cartesian_prod", "combinations",
    "vander", "nansum", "nanmean", "std_mean", "var_mean", "count_nonzero", "equal",
    "logcumsumexp", "cdist", "cov", "corrcoef", "logspace", "range", "linalg",
    *_LINALG_TOP_LEVEL,
    # dtype queries, modes, fused products, scatters, searching (dtype_info.py, autograd,
    # functional.py, indexing.py, searching.py)
    "finfo", "iinfo", "promote_types", "result_type", "can_cast", "is_complex", "is_nonzero",
    "as_tensor", "inference_mode", "is_inference_mode_enabled", "addmv", "addr", "baddbmm",
    "addbmm", "index_copy", "index_fill", "masked_scatter", "scatter_reduce",
    "diagonal_scatter", "select_scatter", "slice_scatter", "put", "unique",
    "unique_consecutive", "searchsorted", "bucketize", "bincount", "histc", "isin", "cummax",
    "cummin", "kthvalue", "mode", "msort", "quantile", "nanquantile", "nanmedian", "aminmax",
    "unravel_index", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "polygamma", "special",
]


# Imported on first use, so that `import tracegrad` stays light (bench/imports.py): the
# compiler (its functions, and tg.compiler itself), tg.nn (its layers, losses and
# functions: about a tenth of the import), tg.viz (which draws its graphs), tg.onnx, and
# tg.func (torch.func's names for the transforms).
_LAZY = {"compile": "compiler", "explain": "compiler", "trace": "compiler",
         "Graph": "compiler", "TensorSpec": "compiler"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in ("compiler", "nn", "viz", "onnx", "func", "distributions", "testing",
                  "backends"):
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'tracegrad' has no attribute {name!r}")
    globals()[name] = value
    return value


memory.keep_freed_memory()  # (glibc: eager ops reuse freed memory instead of page-faulting)

"""The Tensor methods that are composite ops: ``x.mean(1)``, ``x.softmax(-1)``, ``x.clamp_(0, 1)``.

`Tensor` inherits `CompositeMethods`, the one list of them. ``mean = composite()`` makes
``x.mean(1)`` the function ``functional.mean(x, 1)``; ``clip = composite("clamp")`` names
another function; ``exp_ = composite(lambda F: F._unary_inplace("exp"))`` builds the method
from functional.py's helpers; ``unique = composite("searching:")`` takes the function of
another module (indexing.py, searching.py); the few that are one line of other methods
are written out. The rest of the surface: the primitives' methods (``exp``, ``__add__``,
...) are generated in tensor.py from the table in ops/methods.py, the in-place arithmetic
(``add_``, ``+=``) is in inplace.py, everything else is in the Tensor class.

functional.py is built on `Tensor`, so it is imported after it: each entry is looked up there
the first time it is used, and from then on the class attribute *is* that function, so a call
costs what calling the function costs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .tensor import Tensor


class composite:
    """A method that is a function of functional.py (by default the one of its own name),
    resolved on first use. ``make``: another function's name, or ``F -> method``."""

    def __init__(self, make: str | Callable[[Any], Any] | None = None):
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner, self.name = owner, name

    def resolve(self) -> Any:
        F = importlib.import_module("tracegrad.functional")
        make = self.make
        if isinstance(make, str) and ":" in make:  # "module:" or "module:function"
            module, _, attr = make.partition(":")
            method = getattr(importlib.import_module(f"tracegrad.{module}"), attr or self.name)
        else:
            method = getattr(F, make or self.name) if not callable(make) else make(F)
        setattr(self.owner, self.name, method)  # from now on the function itself
        return method

    def __get__(self, obj: Any, cls: type | None = None) -> Any:
        method = self.resolve()
        return method.__get__(obj, cls) if hasattr(method, "__get__") else method


def _linalg(name: str) -> Callable[[Any], Any]:
    """The method that is tracegrad.linalg's function of torch's top-level name ``name``."""
    return lambda F: importlib.import_module("tracegrad.linalg").TOP_LEVEL[name]


def _from(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"tracegrad.{module}"), name)


class CompositeMethods:
    """The composite-op methods of `Tensor` (a mixin: it holds no data)."""

    __slots__ = ()

    # reductions and statistics
    mean = composite()
    var = composite()
    std = composite()
    max = composite()
    min = composite()
    amax = composite()
    amin = composite()
    prod = composite()
    median = composite("searching:")
    logsumexp = composite()
    norm = composite()
    any = composite()
    all = composite()
    cumsum = composite()
    cumprod = composite()
    sort = composite()
    topk = composite()
    softmax = composite()
    log_softmax = composite()
    nansum = composite()
    nanmean = composite()
    count_nonzero = composite()
    logcumsumexp = composite()
    cov = composite()
    corrcoef = composite()
    diff = composite()
    unique = composite("searching:")
    unique_consecutive = composite("searching:")
    bincount = composite("searching:")
    histc = composite("searching:")
    cummax = composite("searching:")
    cummin = composite("searching:")
    kthvalue = composite("searching:")
    mode = composite("searching:")
    msort = composite("searching:")
    quantile = composite("searching:")
    nanquantile = composite("searching:")
    nanmedian = composite("searching:")
    aminmax = composite("searching:")
    isin = composite("searching:")

    # linear algebra (tracegrad/linalg.py)
    inverse = composite(_linalg("inverse"))
    det = composite(_linalg("det"))
    slogdet = composite(_linalg("slogdet"))
    logdet = composite(_linalg("logdet"))
    cholesky = composite(_linalg("cholesky"))
    svd = composite(_linalg("svd"))
    pinverse = composite(_linalg("pinverse"))
    matrix_power = composite(_linalg("matrix_power"))
    matrix_exp = composite(_linalg("matrix_exp"))

    # elementwise
    abs = composite()
    __abs__ = composite("abs")
    clamp = composite()
    clip = composite("clamp")
    minimum = composite()
    square = composite()
    reciprocal = composite()
    rsqrt = composite()
    log1p = composite()
    expm1 = composite()
    log2 = composite()
    log10 = composite()
    exp2 = composite()
    sinh = composite()
    cosh = composite()
    logaddexp = composite()
    hypot = composite()
    logit = composite()
    sinc = composite()
    heaviside = composite()
    signbit = composite()
    copysign = composite()
    fmax = composite()
    fmin = composite()
    float_power = composite()
    deg2rad = composite()
    rad2deg = composite()
    logaddexp2 = composite()
    positive = composite()
    absolute = composite("abs")
    lerp = composite()
    round = composite("_round")
    trunc = composite()
    fix = composite("trunc")
    frac = composite()
    # (the primitives' methods, tensor.py's, without torch's keywords alpha= and rounding_mode=)
    add = composite()
    sub = composite()
    subtract = composite("sub")
    div = composite()
    divide = composite("div")
    floor_divide = composite()
    remainder = composite()
    fmod = composite()
    __floordiv__ = composite(lambda F: F._forward_op(F.floor_divide))
    __rfloordiv__ = composite(lambda F: F._reflected(F.floor_divide))
    __mod__ = composite(lambda F: F._forward_op(F.remainder))
    __rmod__ = composite(lambda F: F._reflected(F.remainder))
    nan_to_num = composite()
    isnan = composite()
    isinf = composite()
    isposinf = composite()
    isneginf = composite()
    isfinite = composite()
    isclose = composite()
    allclose = composite()
    equal = composite()

    # logic: & | ^ ~ on bool masks
    logical_and = composite()
    logical_or = composite()
    logical_xor = composite()
    logical_not = composite()
    __and__ = composite(lambda F: F.MASK_OPERATORS["__and__"])
    __rand__ = composite(lambda F: F.MASK_OPERATORS["__rand__"])
    __or__ = composite(lambda F: F.MASK_OPERATORS["__or__"])
    __ror__ = composite(lambda F: F.MASK_OPERATORS["__ror__"])
    __xor__ = composite(lambda F: F.MASK_OPERATORS["__xor__"])
    __rxor__ = composite(lambda F: F.MASK_OPERATORS["__rxor__"])
    __invert__ = composite(lambda F: F.MASK_OPERATORS["__invert__"])
    __lshift__ = composite(lambda F: F.MASK_OPERATORS["__lshift__"])
    __rlshift__ = composite(lambda F: F.MASK_OPERATORS["__rlshift__"])
    __rshift__ = composite(lambda F: F.MASK_OPERATORS["__rshift__"])
    __rrshift__ = composite(lambda F: F.MASK_OPERATORS["__rrshift__"])

    # bits of integers (and bools)
    bitwise_and = composite()
    bitwise_or = composite()
    bitwise_xor = composite()
    bitwise_not = composite()
    bitwise_left_shift = composite()
    bitwise_right_shift = composite()
    gcd = composite()
    lcm = composite()
    bitwise_and_ = composite(lambda F: F._inplace_of(F.bitwise_and, "bitwise_and_"))
    bitwise_or_ = composite(lambda F: F._inplace_of(F.bitwise_or, "bitwise_or_"))
    bitwise_xor_ = composite(lambda F: F._inplace_of(F.bitwise_xor, "bitwise_xor_"))
    bitwise_not_ = composite(lambda F: F._inplace_of(F.bitwise_not, "bitwise_not_"))
    gcd_ = composite(lambda F: F._inplace_of(F.gcd, "gcd_"))
    lcm_ = composite(lambda F: F._inplace_of(F.lcm, "lcm_"))

    # linear algebra
    t = composite()
    dot = composite()
    mm = composite()
    bmm = composite()
    mv = composite()
    outer = composite()
    ger = composite("outer")
    addmm = composite()
    addmv = composite()
    addr = composite()
    baddbmm = composite()
    addbmm = composite()
    addcmul = composite()
    addcdiv = composite()
    diagonal = composite()
    trace = composite()
    diag = composite()
    diag_embed = composite()
    diagflat = composite()
    cross = composite()
    kron = composite()
    inner = composite()
    vdot = composite()
    tril = composite()
    triu = composite()

    # shape, indexing and gathering
    flip = composite()
    fliplr = composite()
    flipud = composite()
    rot90 = composite()
    tile = composite()
    ravel = composite()
    broadcast_to = composite()
    take = composite()
    roll = composite()
    split = composite()
    chunk = composite()
    tensor_split = composite()
    hsplit = composite()
    vsplit = composite()
    dsplit = composite()
    repeat = composite()
    repeat_interleave = composite()
    movedim = composite()
    moveaxis = composite("movedim")
    unflatten = composite()
    contiguous = composite()
    view_as = composite()
    reshape_as = composite()
    select = composite()
    narrow = composite()
    unfold = composite("_unfold")
    as_strided = composite()
    unbind = composite()
    gather = composite()
    scatter = composite()
    scatter_add = composite()
    index_select = composite()
    index_add = composite()
    index_put = composite()
    masked_fill = composite()
    masked_select = composite()
    take_along_dim = composite()
    nonzero = composite()
    argwhere = composite()
    index_copy = composite("indexing:")
    index_fill = composite("indexing:")
    masked_scatter = composite("indexing:")
    scatter_reduce = composite("indexing:")
    diagonal_scatter = composite("indexing:")
    select_scatter = composite("indexing:")
    slice_scatter = composite("indexing:")
    put = composite("indexing:")
    index_copy_ = composite(lambda F: F._inplace_of(_from("indexing", "index_copy"),
                                                    "index_copy_"))
    index_fill_ = composite(lambda F: F._inplace_of(_from("indexing", "index_fill"),
                                                    "index_fill_"))
    masked_scatter_ = composite(lambda F: F._inplace_of(_from("indexing", "masked_scatter"),
                                                        "masked_scatter_"))
    scatter_reduce_ = composite(lambda F: F._inplace_of(_from("indexing", "scatter_reduce"),
                                                        "scatter_reduce_"))
    put_ = composite(lambda F: F._inplace_of(_from("indexing", "put"), "put_"))

    # new tensors like this one; random draws
    type_as = composite("_type_as")
    new_full = composite("_new_full")
    new_tensor = composite("_new_tensor")
    new_zeros = composite(lambda F: F._new_filled(0))
    new_ones = composite(lambda F: F._new_filled(1))
    new_empty = composite(lambda F: F._new_filled(0))
    multinomial = composite()
    normal_ = composite(lambda F: F._random_fill("normal_"))
    uniform_ = composite(lambda F: F._random_fill("uniform_"))
    exponential_ = composite(lambda F: F._random_fill("exponential_"))
    cauchy_ = composite(lambda F: F._random_fill("cauchy_"))
    log_normal_ = composite(lambda F: F._random_fill("log_normal_"))
    geometric_ = composite(lambda F: F._random_fill("geometric_"))
    random_ = composite()
    bernoulli_ = composite()
    bernoulli = composite()

    # in place: the op above, its result written back (see inplace.py)
    exp_ = composite(lambda F: F._unary_inplace("exp"))
    log_ = composite(lambda F: F._unary_inplace("log"))
    sqrt_ = composite(lambda F: F._unary_inplace("sqrt"))
    tanh_ = composite(lambda F: F._unary_inplace("tanh"))
    sigmoid_ = composite(lambda F: F._unary_inplace("sigmoid"))
    relu_ = composite(lambda F: F._unary_inplace("relu"))
    abs_ = composite(lambda F: F._unary_inplace("abs"))
    neg_ = composite(lambda F: F._unary_inplace("neg"))
    clamp_ = composite(lambda F: F._unary_inplace("clamp"))
    square_ = composite(lambda F: F._unary_inplace("square"))
    pow_ = composite(lambda F: F._unary_inplace("pow"))
    sin_ = composite(lambda F: F._unary_inplace("sin"))
    cos_ = composite(lambda F: F._unary_inplace("cos"))
    reciprocal_ = composite(lambda F: F._unary_inplace("reciprocal"))
    rsqrt_ = composite(lambda F: F._unary_inplace("rsqrt"))
    log1p_ = composite(lambda F: F._unary_inplace("log1p"))
    expm1_ = composite(lambda F: F._unary_inplace("expm1"))
    sign_ = composite(lambda F: F._unary_inplace("sign"))
    floor_ = composite(lambda F: F._unary_inplace("floor"))
    ceil_ = composite(lambda F: F._unary_inplace("ceil"))
    round_ = composite(lambda F: F._unary_inplace("round"))
    lerp_ = composite(lambda F: F._inplace_of(F.lerp, "lerp_"))
    addmm_ = composite(lambda F: F._inplace_of(F.addmm, "addmm_"))
    addmv_ = composite(lambda F: F._inplace_of(F.addmv, "addmv_"))
    addr_ = composite(lambda F: F._inplace_of(F.addr, "addr_"))
    baddbmm_ = composite(lambda F: F._inplace_of(F.baddbmm, "baddbmm_"))
    addbmm_ = composite(lambda F: F._inplace_of(F.addbmm, "addbmm_"))
    addcmul_ = composite(lambda F: F._inplace_of(F.addcmul, "addcmul_"))
    addcdiv_ = composite(lambda F: F._inplace_of(F.addcdiv, "addcdiv_"))
    clamp_min_ = composite(lambda F: F._inplace_of(CompositeMethods.clamp_min, "clamp_min_"))
    clamp_max_ = composite(lambda F: F._inplace_of(CompositeMethods.clamp_max, "clamp_max_"))
    scatter_ = composite(lambda F: F._inplace_of(F.scatter, "scatter_"))
    scatter_add_ = composite(lambda F: F._inplace_of(F.scatter_add, "scatter_add_"))
    index_add_ = composite(lambda F: F._inplace_of(F.index_add, "index_add_"))
    index_put_ = composite(lambda F: F._inplace_of(F.index_put, "index_put_"))
    fill_diagonal_ = composite()
    floor_divide_ = composite(lambda F: F._inplace_of(F.floor_divide, "floor_divide_"))
    remainder_ = composite(lambda F: F._inplace_of(F.remainder, "remainder_"))
    nan_to_num_ = composite(lambda F: F._inplace_of(F.nan_to_num, "nan_to_num_"))
    tril_ = composite(lambda F: F._inplace_of(F.tril, "tril_"))
    triu_ = composite(lambda F: F._inplace_of(F.triu, "triu_"))
    trunc_ = composite(lambda F: F._inplace_of(F.trunc, "trunc_"))
    cumsum_ = composite(lambda F: F._inplace_of(F.cumsum, "cumsum_"))
    cumprod_ = composite(lambda F: F._inplace_of(F.cumprod, "cumprod_"))

    # special functions (the others, lgamma digamma erfinv i0, are primitives' methods)
    def polygamma(self: Tensor, n: int) -> Tensor:
        """The n-th derivative of digamma (``torch.polygamma(n, self)``)."""
        return _from("special", "polygamma")(n, self)

    # one line of other methods
    @property
    def mT(self: Tensor) -> Tensor:
        """The last two dimensions swapped."""
        return self.transpose(-2, -1)

    def neg(self: Tensor) -> Tensor:
        return -self

    negative = neg

    def swapaxes(self: Tensor, axis0: int, axis1: int) -> Tensor:
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    def clamp_min(self: Tensor, min: Any) -> Tensor:
        return self.clamp(min=min)

    def clamp_max(self: Tensor, max: Any) -> Tensor:
        return self.clamp(max=max)

    def argsort(self: Tensor, dim: int = -1, descending: bool = False,
                stable: bool = False) -> Tensor:
        return self.sort(dim, descending).indices

    def multiply(self: Tensor, other: Any) -> Tensor:
        return self * other

    def true_divide(self: Tensor, other: Any) -> Tensor:
        return self / other


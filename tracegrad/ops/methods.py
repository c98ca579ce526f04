"""Which tensor methods are which primitives: the table both `Tensor` and `GradArray`
generate their arithmetic from, so the two cannot disagree."""

from .base import PRIMITIVES, having

# Ops that only make sense on floats (the "float" fact): ints and bools are cast to the
# default float first, as PyTorch does (tg.tensor([1, 2]).exp() is float32).
FLOAT_ONLY = having("float_only")

# One-operand primitives that are a method of the same name (the "method" fact).
UNARY_METHODS = [name for name, p in PRIMITIVES.items() if p.method]

# method name, primitive, operands reversed
BINARY_METHODS = [
    ("__add__", "add", False), ("__radd__", "add", True), ("add", "add", False),
    ("__sub__", "sub", False), ("__rsub__", "sub", True), ("sub", "sub", False),
    ("__mul__", "mul", False), ("__rmul__", "mul", True), ("mul", "mul", False),
    ("__truediv__", "div", False), ("__rtruediv__", "div", True), ("div", "div", False),
    ("__pow__", "pow", False), ("__rpow__", "pow", True), ("pow", "pow", False),
    ("__lt__", "lt", False), ("__le__", "le", False), ("__gt__", "gt", False),
    ("__ge__", "ge", False), ("__eq__", "eq", False), ("__ne__", "ne", False),
    ("lt", "lt", False), ("le", "le", False), ("gt", "gt", False), ("ge", "ge", False),
    ("eq", "eq", False), ("ne", "ne", False), ("not_equal", "ne", False),
    ("atan2", "atan2", False), ("arctan2", "atan2", False), ("xlogy", "xlogy", False),
]

# method name -> the primitive it is another name of (NumPy's names, as in PyTorch)
UNARY_ALIASES = {
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
    "arccosh": "acosh", "arctanh": "atanh", "sgn": "sign",
}

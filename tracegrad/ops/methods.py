"""Which tensor methods are which primitives: the table both `Tensor` and `GradArray`
generate their arithmetic from, so the two cannot disagree."""

# Ops that only make sense on floats: ints and bools are cast to the default float first,
# as PyTorch does (tg.tensor([1, 2]).exp() is float32).
FLOAT_ONLY = {"exp", "log", "sqrt", "tanh", "sin", "cos", "sigmoid", "erf", "softplus", "div"}

UNARY_METHODS = ["exp", "log", "sqrt", "tanh", "sin", "cos", "sigmoid", "relu", "erf",
                 "softplus", "floor", "ceil", "round"]

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
    ("eq", "eq", False), ("ne", "ne", False),
]

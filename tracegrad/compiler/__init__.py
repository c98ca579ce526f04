"""The compiler: trace a dynamic graph once, optimize it as a static graph, run the result.

``tg.trace`` gives the `Graph`; ``tg.compile`` caches optimized variants behind guards;
``tg.explain`` shows what every pass did.
"""

from .api import CompiledFunction, compile
from .ir import Graph, Node
from .optimize import Explanation, explain, optimize
from .trace import TensorSpec, trace

__all__ = ["CompiledFunction", "Explanation", "Graph", "Node", "TensorSpec", "compile",
           "explain", "optimize", "trace"]

"""The compiler: trace a dynamic graph once, optimize it as a static graph, run the result.

``tg.trace`` gives the `Graph`; ``tg.compile`` caches optimized variants behind guards;
``tg.explain`` shows what every pass did.
"""

from .api import CompiledFunction, Explanation, compile, explain, optimize
from .ir import Graph, Node
from .trace import TensorSpec, trace

__all__ = ["CompiledFunction", "Explanation", "Graph", "Node", "TensorSpec", "compile",
           "explain", "optimize", "trace"]

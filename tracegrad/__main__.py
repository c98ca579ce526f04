"""``python -m tracegrad ...`` is the ``tracegrad`` command."""

from .cli import main

raise SystemExit(main())

"""The pvc-restore controller: a polling reconcile loop over PVC annotations, PVCRestores and lock ConfigMaps."""

import importlib.util as _importlib_util
import sys as _sys

# httpcore runs ``import sniffio`` for every lock it creates (several per API request) to tell asyncio from trio, and
# anyio no longer installs sniffio (4.12+): then each of those is a failed import that searches all of sys.path again
# (about 0.16 ms; some 5 of the controller's 30 CPU seconds with 50 restores at once, benchmarks/throughput.py).
# Without sniffio httpcore assumes asyncio, which is what the controller runs: record the miss once (None in
# sys.modules is Python's own "this import fails" marker), so that later attempts fail at once the same way.
if "sniffio" not in _sys.modules and _importlib_util.find_spec("sniffio") is None:
    _sys.modules["sniffio"] = None  # type: ignore[assignment]

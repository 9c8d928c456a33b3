"""Put the repository root ahead of tests/ on sys.path.

pytest puts tests/ (home of the shared conftest) on sys.path, where tests/bus/ would otherwise
be imported as a namespace package named `bus`, shadowing the kernel.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[3])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("bus"), "__file__", "") is None:
    for _name in [name for name in sys.modules if name == "bus" or name.startswith("bus.")]:
        del sys.modules[_name]

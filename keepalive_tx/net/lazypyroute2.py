"""
Import pyroute2's submodules without its package C{__init__}.

C{pyroute2/__init__.py} (0.9.x) imports every pyroute2 API at once (NDB,
IPDB, IPRoute, ethtool, conntrack, nftables, plan9, ... and C{unittest.mock}):
about 190 modules and 7.5 MB of resident memory, of which keepalive_tx needs
only the netlink message codecs (C{pyroute2.netlink.rtnl.*msg},
C{pyroute2.netlink.generic.ipvs}): about 3 MB.

L{install} puts an uninitialised C{pyroute2} package into C{sys.modules}
(same spec, same C{__path__}) whose module C{__getattr__} runs the real
C{__init__} the first time a name that is not a submodule is asked for
(C{pyroute2.IPRoute}, C{from pyroute2 import NDB}, C{pyroute2.__version__}),
so code that uses the full package still works, it just pays when it does.
Submodule imports (C{import pyroute2.netlink.rtnl}, C{from pyroute2 import
netns}) never trigger it.  If pyroute2 was already imported, or is not
installed, L{install} does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

__all__ = ["install"]

#: Dunder names the import system and introspection probe: answering them
#: must not run the full package C{__init__}.
_PUBLIC_DUNDERS = frozenset({"__all__", "__version__"})


def install(name: str = "pyroute2") -> types.ModuleType | None:
    """
    Register a lazily initialised C{name} package unless it is imported.

    @return: the module in C{sys.modules[name]} afterwards (C{None} when
        the package is not installed).
    """
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = importlib.util.module_from_spec(spec)
    state = {"loaded": False}

    def __getattr__(attr: str) -> Any:  # noqa: N807 (module __getattr__, PEP 562)
        if attr.startswith("__") and attr.endswith("__") and attr not in _PUBLIC_DUNDERS:
            raise AttributeError(attr)
        if not state["loaded"]:
            # A submodule (``from pyroute2 import netns``): import just it.
            try:
                child = importlib.util.find_spec(f"{name}.{attr}")
            except (ImportError, ValueError):
                child = None
            if child is not None:
                return importlib.import_module(f"{name}.{attr}")
            state["loaded"] = True
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            if attr in module.__dict__:
                return module.__dict__[attr]
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[name] = module
    return module

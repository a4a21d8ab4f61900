"""
Process-wide settings that only the daemon's entry point (L{keepalive_tx.tap},
run by C{twistd keepalived} or C{twist keepalived}) takes.

The library never changes its host interpreter: an application embedding
L{keepalive_tx.service.KeepalivedService} or calling
L{keepalive_tx.config.loadConfig} gets the same results without any of
this. These settings only make the daemon's own process faster or smaller,
where it owns the interpreter. Nothing in keepalive_tx but L{keepalive_tx.tap}
imports this module (C{tests/unit/test_processwide.py} checks that, and that no
other module switches the collector or edits C{sys.modules}).

  - L{pausedCollector}: no cyclic garbage collection while a configuration
    is read (C{--config-test}, start, reload).
  - L{lazyPackage}: C{import pyroute2.netlink.rtnl.ifaddrmsg} without running
    C{pyroute2/__init__.py}, which imports every pyroute2 API.

Measured with C{bench/startup_cost.py} and C{bench/config_load.py}; the
numbers are in the docstrings below.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["lazyPackage", "pausedCollector"]


@contextmanager
def pausedCollector() -> Iterator[None]:
    """
    Suspend the cyclic garbage collector for the duration of the block.

    Reading a configuration allocates hundreds of thousands of acyclic
    objects (the preprocessor and the model leave no reference cycle), and
    the collector's passes over them cost about a quarter of the load time
    of a large file (the 62,000 lines of C{bench/config_load.py}: 0.47 s of
    CPU paused, 0.62 s with the collector running). Afterwards the survivors (the model) are moved straight
    to the oldest generation (C{gc.freeze()} then C{gc.unfreeze()}):
    otherwise the first young-generation collection after re-enabling would
    traverse every one of them (about 50 ms for 10,000 real servers). They
    stay collectable by the next full collection. That step is skipped when
    something else froze objects, and nothing is re-enabled that was not
    enabled before.
    """
    wasEnabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if wasEnabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


#: Dunder names the import system and introspection probe: answering them
#: must not run the full package C{__init__}.
_PUBLIC_DUNDERS = frozenset({"__all__", "__version__"})


def lazyPackage(name: str) -> types.ModuleType | None:
    """
    Register package C{name} in C{sys.modules} uninitialised, unless it is
    imported already, so that importing its submodules does not run its
    C{__init__}.

    C{pyroute2/__init__.py} (0.9.x) imports every pyroute2 API at once (NDB,
    IPDB, IPRoute, ethtool, conntrack, nftables, plan9, ... and
    C{unittest.mock}), of which keepalive_tx uses only the netlink message
    codecs (C{pyroute2.netlink.rtnl.*msg}, C{pyroute2.netlink.generic.ipvs}):
    the running daemon imports 130 modules fewer, holds about 7 MB less
    resident memory (56 MB instead of 63 MB with one VRRP instance and one
    virtual server, on Python 3.11 and 3.13 alike) and starts about 0.5 s
    sooner on a loaded machine (C{bench/startup_cost.py}). The library
    imports just those submodules and is correct either way; this only
    saves the rest.

    The registered module has the package's own spec and C{__path__}, so
    submodule imports (C{import pyroute2.netlink.rtnl}, C{from pyroute2
    import netns}) work as usual. Its module C{__getattr__} (PEP 562) runs
    the real C{__init__} the first time a name that is not a submodule is
    asked for (C{pyroute2.IPRoute}, C{from pyroute2 import NDB},
    C{pyroute2.__version__}): code that uses the whole package still works,
    and pays for it when it does.

    @return: the module in C{sys.modules[name]} afterwards (C{None} when the
        package is not installed).
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

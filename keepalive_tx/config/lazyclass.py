"""
L{dataclass}: C{dataclasses.dataclass} whose generated methods are compiled
on first use.

C{dataclasses} writes the source of C{__init__}, C{__eq__}, C{__hash__},
C{__repr__}, C{__setattr__} and C{__delattr__} of every class and compiles it
with C{exec}; for the 48 model classes that was most of the configuration
package's import time, paid again by every C{twistd keepalived -t} run although
a run uses only a few of those methods. Here C{dataclasses} runs unchanged
except that each generated method is a placeholder (L{_LazyMethod}) holding
exactly the arguments C{dataclasses} would have compiled it from. The first
access of any kind (an instance being made, compared, hashed, or C{getattr} on
the class) compiles the real method and installs it on the class in the
placeholder's place, so from then on the class is what C{dataclasses} would
have made, function for function. Fields, C{__slots__}, C{__match_args__},
C{__doc__}, C{fields()}, C{replace()}, pickling and frozenness are
C{dataclasses}' own.

Should C{dataclasses} ever lose the private C{_create_fn} this relies on, the
classes are made eagerly by C{dataclasses.dataclass} itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
from typing import Any

__all__ = ["dataclass"]

_createFn = getattr(dataclasses, "_create_fn", None)
_lock = threading.RLock()

# dataclasses gives every function it installs the class's __qualname__;
# only the function that __repr__ wraps in its recursion guard keeps its own.
_UNQUALIFIED = "__repr__"

# A truthy __doc__ while dataclasses runs, so that it does not call
# inspect.signature() (which would compile __init__ at once).
_NO_DOC = "\0lazyclass: no docstring\0"


class _LazyMethod:
    """
    Stands for a method C{dataclasses} generated, until it is first used.
    """

    __slots__ = ("__name__", "_args", "_kwargs", "_real")

    def __init__(self, name: str, args: tuple, kwargs: dict) -> None:
        self.__name__ = name
        self._args = args
        self._kwargs = kwargs
        self._real = None

    def _materialize(self, owner: type | None):
        real = self._real
        if real is None:
            with _lock:
                real = self._real
                if real is None:
                    assert _createFn is not None
                    real = _createFn(*self._args, **self._kwargs)
                    self._real = real
        if owner is not None:
            for klass in owner.__mro__:
                if klass.__dict__.get(self.__name__) is self:
                    if self.__name__ != _UNQUALIFIED:
                        real.__qualname__ = f"{klass.__qualname__}.{self.__name__}"
                    setattr(klass, self.__name__, real)
                    break
        return real

    def __get__(self, instance: Any, owner: type | None = None):
        real = self._materialize(owner if owner is not None else type(instance))
        if instance is None:
            return real
        return real.__get__(instance, owner)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Only reached when dataclasses wrapped the placeholder (__repr__ in
        # its recursion guard): the wrapper stays, the call goes through.
        return self._materialize(None)(*args, **kwargs)

    def __getattribute__(self, name: str) -> Any:
        if name in _AS_COMPILED:
            # What functools.wraps copies when dataclasses wraps __repr__, as
            # the compiled function will have it: its globals name its
            # module, it is made inside dataclasses' __create_fn__, has no
            # docstring, and only __init__ has annotations. (These names
            # would otherwise find _LazyMethod's own class attributes.)
            kwargs = object.__getattribute__(self, "_kwargs")
            if name == "__module__":
                namespace = kwargs.get("globals")
                return (vars(dataclasses) if namespace is None else namespace).get("__name__")
            if name == "__qualname__":
                return f"__create_fn__.<locals>.{object.__getattribute__(self, '__name__')}"
            if name == "__doc__":
                return None
            if "return_type" not in kwargs:  # __dict__, __annotations__
                return {}
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        if name in _LazyMethod.__slots__:
            raise AttributeError(name)
        # Any other introspection sees the real function.
        return getattr(self._materialize(None), name)


_AS_COMPILED = frozenset(("__module__", "__qualname__", "__doc__", "__dict__", "__annotations__"))


def _lazyCreateFn(name: str, *args: Any, **kwargs: Any) -> _LazyMethod:
    return _LazyMethod(name, (name, *args), kwargs)


def _signatureDoc(cls: type) -> str:
    """
    The class docstring C{dataclasses} makes for a class without one:
    C{Name(signature of __init__)}, computed from the fields instead of from
    the compiled C{__init__}.
    """
    fields = [f for f in dataclasses.fields(cls) if f.init]
    params = []
    for kwOnly in (False, True):
        for f in fields:
            if bool(f.kw_only) is not kwOnly:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = dataclasses._HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]
            else:
                default = inspect.Parameter.empty
            kind = inspect.Parameter.KEYWORD_ONLY if kwOnly else inspect.Parameter.POSITIONAL_OR_KEYWORD
            params.append(inspect.Parameter(f.name, kind, default=default, annotation=f.type))
    text = str(inspect.Signature(params, return_annotation=None)).replace(" -> None", "")
    return cls.__name__ + text


def dataclass(cls: type | None = None, /, **options: Any) -> Any:
    """
    C{dataclasses.dataclass(cls, **options)} with the generated methods
    compiled on first use (see the module docstring). Classes with a
    C{__post_init__} are made eagerly.
    """

    def wrap(cls: type) -> type:
        if _createFn is None or hasattr(cls, "__post_init__") or not hasattr(dataclasses, "_HAS_DEFAULT_FACTORY"):
            return dataclasses.dataclass(cls, **options)
        undocumented = not cls.__doc__
        if undocumented:
            cls.__doc__ = _NO_DOC
        with _lock:
            dataclasses._create_fn = _lazyCreateFn  # type: ignore[attr-defined]
            try:
                made = dataclasses.dataclass(cls, **options)
            finally:
                dataclasses._create_fn = _createFn  # type: ignore[attr-defined]
        if undocumented:
            made.__doc__ = _signatureDoc(made)
        return made

    if cls is None:
        return wrap
    return wrap(cls)

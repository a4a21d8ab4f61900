"""
The shortcuts that make a large configuration load fast change nothing:
L{keepalive_tx.config.lazyclass} makes the model classes
C{dataclasses.dataclass} makes (only compiled later), the LVS fast
constructors make the objects the constructors make, and the preprocessor
leaves no reference cycle.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import sys
import types
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from keepalive_tx.config import lazyclass, model, model_lvs
from keepalive_tx.config.errors import Location
from keepalive_tx.config.lazyclass import _LazyMethod, dataclass

_METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")


def _eagerTwin(module: types.ModuleType) -> types.ModuleType:
    """
    C{module} executed again from its source with the standard
    C{dataclasses.dataclass}.
    """
    source = Path(module.__file__).read_text()
    lazy = "from keepalive_tx.config.lazyclass import dataclass\n"
    assert lazy in source
    twin = types.ModuleType(module.__name__ + "_eager")
    twin.__file__ = module.__file__
    sys.modules[twin.__name__] = twin
    try:
        exec(compile(source.replace(lazy, "from dataclasses import dataclass\n"), module.__file__, "exec"),
             twin.__dict__)
    finally:
        del sys.modules[twin.__name__]
    return twin


def _modelClasses(module: types.ModuleType) -> list[type]:
    return [
        v for v in vars(module).values()
        if isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == module.__name__
    ]


def _fieldSummary(cls: type) -> list[tuple]:
    def factory(f):
        # the twin's factories and defaults are the twin module's objects
        return getattr(f.default_factory, "__qualname__", f.default_factory)

    return [
        (f.name, f.type, repr(f.default), factory(f), f.init, f.repr, f.hash, f.compare, f.kw_only)
        for f in dataclasses.fields(cls)
    ]


def _sample(cls: type, module: types.ModuleType, seed: int = 0):
    """
    An instance of C{cls} with every required field given a simple value.
    """
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = f"{f.name}-{seed}"
    return cls(**kwargs)


class LazyModelClassTests(SynchronousTestCase):
    """
    Every class of L{model} and L{model_lvs} against its twin made by
    C{dataclasses.dataclass} from the same source.
    """

    def assertNotCompiledYet(self, method: object) -> None:
        """
        C{method} (read from a class's C{__dict__}) is L{lazyclass}'s
        placeholder -- or, where C{dataclasses} has no C{_create_fn} for
        L{lazyclass} to stand in for (Python 3.13 builds its methods
        otherwise), C{dataclasses}' own compiled function: there the
        classes are made eagerly, as L{lazyclass}'s docstring says.
        """
        if lazyclass._createFn is not None:
            self.assertIsInstance(method, _LazyMethod)
        else:
            self.assertIsInstance(method, types.FunctionType)

    def pairs(self):
        out = []
        for module in (model, model_lvs):
            twin = _eagerTwin(module)
            for cls in _modelClasses(module):
                out.append((cls, getattr(twin, cls.__name__), module))
        self.assertGreater(len(out), 40)
        return out

    def test_classAttributes(self) -> None:
        """
        Docstrings (also the generated ones), fields, slots, match args and
        dataclass parameters are C{dataclasses}'.
        """
        for cls, eager, _ in self.pairs():
            self.assertEqual(cls.__doc__, eager.__doc__, cls)
            self.assertEqual(_fieldSummary(cls), _fieldSummary(eager), cls)
            self.assertEqual(cls.__slots__, eager.__slots__, cls)
            self.assertEqual(getattr(cls, "__match_args__", None), getattr(eager, "__match_args__", None))
            self.assertEqual(repr(cls.__dataclass_params__), repr(eager.__dataclass_params__))
            self.assertEqual(sorted(vars(cls)), sorted(vars(eager)), cls)

    def test_methodsMaterialize(self) -> None:
        """
        Reading a generated method from the class gives the compiled function
        (same code, signature and qualified name as C{dataclasses}') and
        installs it in the placeholder's place.
        """
        for cls, eager, _ in self.pairs():
            for name in _METHODS:
                fn = getattr(cls, name)
                self.assertNotIsInstance(vars(cls)[name], _LazyMethod)
                other = getattr(eager, name)
                self.assertEqual(fn.__qualname__, other.__qualname__, (cls, name))
                self.assertEqual(str(inspect.signature(fn)), str(inspect.signature(other)), (cls, name))
                self.assertEqual(fn.__module__, cls.__module__)
                self.assertEqual(other.__module__, eager.__module__)
                for attribute in ("__name__", "__doc__", "__annotations__"):
                    self.assertEqual(getattr(fn, attribute), getattr(other, attribute), (cls, name, attribute))
                inner = getattr(fn, "__wrapped__", fn)
                otherInner = getattr(other, "__wrapped__", other)
                self.assertEqual(inner.__code__.co_code, otherInner.__code__.co_code, (cls, name))
                self.assertEqual(inner.__qualname__, otherInner.__qualname__, (cls, name))
            self.assertEqual(str(inspect.signature(cls)), str(inspect.signature(eager)), cls)

    def test_instancesBehaveAlike(self) -> None:
        """
        Construction, equality, hashing, repr, frozenness, C{replace}, copy
        and pickling.
        """
        for cls, eager, module in self.pairs():
            a, b = _sample(cls, module), _sample(cls, module)
            e = _sample(eager, module)
            self.assertEqual(a, b)
            self.assertEqual(hash(a), hash(b))
            self.assertEqual(hash(a), hash(e))
            self.assertEqual(repr(a), repr(e))
            self.assertNotEqual(a, e)  # different classes
            name = next(f.name for f in dataclasses.fields(cls) if f.compare)
            self.assertRaises(dataclasses.FrozenInstanceError, setattr, a, name, 1)
            self.assertRaises(dataclasses.FrozenInstanceError, delattr, a, name)
            c = dataclasses.replace(a, **{name: "other"})
            self.assertEqual(getattr(c, name), "other")
            self.assertNotEqual(a, c)
            self.assertEqual(copy.deepcopy(a), a)
            self.assertEqual(dataclasses.asdict(a), dataclasses.asdict(e))
        # pickling needs the classes importable by name
        vs = model_lvs.VirtualServer(address=None, port=80, location=Location("k.conf", 3))
        self.assertEqual(pickle.loads(pickle.dumps(vs)), vs)

    def test_constructorErrors(self) -> None:
        """
        Bad arguments fail as they do with C{dataclasses}.
        """
        for cls, eager, _ in self.pairs():
            with self.assertRaises(TypeError) as lazyError:
                cls(noSuchField=1)
            with self.assertRaises(TypeError) as eagerError:
                eager(noSuchField=1)
            self.assertEqual(str(lazyError.exception), str(eagerError.exception))

    def test_firstUseByConstruction(self) -> None:
        """
        A class whose methods were never read is usable straight away, and
        its methods are compiled once.
        """

        @dataclass(frozen=True, slots=True, kw_only=True)
        class Fresh:
            a: int
            b: str = "x"

        for name in ("__init__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
            self.assertNotCompiledYet(vars(Fresh)[name])
        self.assertNotCompiledYet(vars(Fresh)["__repr__"].__wrapped__)
        f = Fresh(a=1)
        self.assertNotIsInstance(vars(Fresh)["__init__"], _LazyMethod)
        self.assertNotCompiledYet(vars(Fresh)["__eq__"])
        self.assertEqual(f, Fresh(a=1, b="x"))
        self.assertNotEqual(f, Fresh(a=2))
        self.assertEqual(Fresh.__doc__, "Fresh(*, a: 'int', b: 'str' = 'x')")
        self.assertEqual(repr(f), "LazyModelClassTests.test_firstUseByConstruction.<locals>.Fresh(a=1, b='x')")
        init = vars(Fresh)["__init__"]
        Fresh(a=3)
        self.assertIs(vars(Fresh)["__init__"], init)

    def test_subclassUsesOwnMethods(self) -> None:
        """
        A dataclass subclass gets its own methods; materialising the
        subclass's leaves the base class's placeholders alone.
        """

        @dataclass(frozen=True, slots=True, kw_only=True)
        class Base:
            a: int = 0

        @dataclass(frozen=True, slots=True, kw_only=True)
        class Sub(Base):
            b: int = 1

        self.assertEqual(Sub(a=2, b=3), Sub(a=2, b=3))
        self.assertNotCompiledYet(vars(Base)["__init__"])
        self.assertEqual(Base(a=2), Base(a=2))
        self.assertNotEqual(Base(a=2), Sub(a=2))
        self.assertEqual(Sub.__doc__, "Sub(*, a: 'int' = 0, b: 'int' = 1)")

    def test_factoryDefaultInDoc(self) -> None:
        """
        A C{default_factory} shows as C{<factory>} in the generated docstring,
        as with C{dataclasses}.
        """

        @dataclass(frozen=True)
        class Lazy:
            items: tuple = dataclasses.field(default_factory=tuple)
            n: int = 0

        @dataclasses.dataclass(frozen=True)
        class Eager:
            items: tuple = dataclasses.field(default_factory=tuple)
            n: int = 0

        self.assertEqual(Lazy.__doc__, Eager.__doc__.replace("Eager", "Lazy"))
        self.assertEqual(Lazy(), Lazy(items=(), n=0))


class FastMakerTests(SynchronousTestCase):
    """
    L{keepalive_tx.config.build_lvs._fastMaker} makes the same objects as
    the classes' own constructors.
    """

    def test_sameAsConstructor(self) -> None:
        from keepalive_tx.config import build_lvs

        for kind, cls in build_lvs._MAKE.classes.items():
            kw = {f.name: f"{f.name}-value" for f in dataclasses.fields(cls)}
            made = build_lvs._MAKE[kind](dict(kw, extra="ignored"))
            self.assertIs(type(made), cls)
            self.assertEqual(made, cls(**kw))
            self.assertEqual(repr(made), repr(cls(**kw)))
            self.assertEqual(hash(made), hash(cls(**kw)))
            name = dataclasses.fields(cls)[0].name
            self.assertRaises(dataclasses.FrozenInstanceError, setattr, made, name, 1)

    def test_missingFieldRaises(self) -> None:
        from keepalive_tx.config import build_lvs

        self.assertRaises(KeyError, build_lvs._MAKE["TCP_CHECK"], {})


class PreprocessorCycleTests(SynchronousTestCase):
    """
    The preprocessor leaves no reference cycle holding the lines: they are
    freed by reference counting when dropped (not by a later, slow, cyclic
    collection over every line).
    """

    def test_noCycle(self) -> None:
        import gc

        from keepalive_tx.config.errors import Diagnostics
        from keepalive_tx.config.preprocess import preprocessText

        gc.collect()
        enabled = gc.isenabled()
        gc.disable()
        try:
            lines = preprocessText("a b\n$X=1\nc $X # d\n", "k.conf", Diagnostics(), "id")
            self.assertEqual(len(lines), 2)
            del lines
            self.assertEqual(gc.collect(), 0)
        finally:
            if enabled:
                gc.enable()

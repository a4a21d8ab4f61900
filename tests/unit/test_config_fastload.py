"""
The shortcuts that make a large configuration load fast change nothing: the
LVS fast constructors make the objects the constructors make, and the
preprocessor leaves no reference cycle.
"""

from __future__ import annotations

import dataclasses

from twisted.trial.unittest import SynchronousTestCase


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

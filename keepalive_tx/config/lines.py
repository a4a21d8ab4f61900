"""
The logical line: what the preprocessor hands to the block parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from keepalive_tx.config.errors import Location


@dataclass(frozen=True, slots=True)
class LogicalLine:
    """
    One logical configuration line after comments, conditionals, definitions,
    sequences, includes and brace splitting have been applied.

    A brace is always a line of its own: C{vrrp_instance VI_1 { state MASTER }}
    arrives as four lines C{vrrp_instance VI_1}, C{{}, C{state MASTER}, C{}}.

    @ivar location: file and line the text came from.
    @ivar text: the line text (comments stripped, parameters substituted),
        kept for keywords that tokenise it script-style (C{notify_master}, ...).
    @ivar tokens: general tokenisation: whitespace split, C{"..."} quoted
        words with the quotes removed.
    """

    location: Location
    text: str
    tokens: tuple[str, ...]

    @property
    def keyword(self) -> str:
        return self.tokens[0] if self.tokens else ""

    @property
    def isOpen(self) -> bool:
        return self.tokens == ("{",)

    @property
    def isClose(self) -> bool:
        return self.tokens == ("}",)

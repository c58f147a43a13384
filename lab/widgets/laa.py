"""The LAA lab of notebook 02: the agent board and the contact composer, side by side.

Both follow the center's events stream, so a click on the board changes the composer's
ranking (and an assignment the composer causes changes the board) through Redis, the
same way a change made by anyone else does: a learner watches cause and effect, and
neither widget can show something Redis no longer holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]

from acd import Center
from lab.widgets.agent_board import AgentBoard
from lab.widgets.composer import ContactComposer


class LAALab:
    def __init__(self, board: AgentBoard, composer: ContactComposer) -> None:
        self.board = board
        self.composer = composer
        self.widget = w.VBox([board.widget, composer.widget])

    @classmethod
    async def create(cls, center: Center, skills: Iterable[str] = (), page_size: int = 20
                     ) -> LAALab:
        board = await AgentBoard.create(center, skills, page_size)
        composer = await ContactComposer.create(center, board.skills)
        return cls(board, composer)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until both widgets show every change so far (one can cause the other's)."""
        for _ in range(2):
            await self.board.settle(timeout)
            await self.composer.settle(timeout)

    def stop(self) -> None:
        self.board.stop()
        self.composer.stop()

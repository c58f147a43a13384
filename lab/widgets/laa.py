"""The LAA lab of notebook 02: the agent board and the contact composer, linked.

Every change on the board refreshes the composer's ranking, and every assignment the
composer sees refreshes the board, so a learner watches cause and effect side by side.
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
        board.on_change(lambda _agent: composer.request_ranking())
        composer.after_assignment.append(lambda _c: board.request_refresh())
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
        """Wait for both widgets' background work (a change can trigger a refresh)."""
        for _ in range(3):
            await self.board.settle(timeout)
            await self.composer.settle(timeout)

"""Jupyter widgets of the lab: agent board, contact composer, live view, statistics
board, assignment explanations, offers to answer.

The logic lives in plain classes that hold their ipywidgets (``.widget``) and display as
them; tests drive them without a browser by setting widget values and awaiting
``settle()``. See ``_base`` for why they use asyncio tasks, and ``python -m
lab.widgets.bench`` for their speed with 200 agents.
"""

from lab.widgets.agent_board import AgentBoard
from lab.widgets.composer import ContactComposer
from lab.widgets.explain import ExplanationView
from lab.widgets.laa import LAALab
from lab.widgets.live import LiveView
from lab.widgets.offers import OffersBoard
from lab.widgets.stats import StatsBoard

__all__ = ["AgentBoard", "ContactComposer", "ExplanationView", "LAALab", "LiveView",
           "OffersBoard", "StatsBoard"]

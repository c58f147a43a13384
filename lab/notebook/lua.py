"""The Lua the notebooks teach, read from acd/lua/ itself: never a copy.

``show_lua("claim")`` displays one top-level function of the library with the
comment above it and the file it is in; ``show_lua()`` the whole library.
``lua_chunk("longest_available")`` is
Lua that runs on its own (EVAL): that function after every top-level function and constant
of the library it uses, in the library's order, so a notebook can time or call the
library's own code. A notebook that shows or runs Lua this way can never drift from what
the dispatcher does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from acd.functions import LIBRARY, LIBRARY_FILES

_FUNCTION = re.compile(r"local function (\w+)\(")
_CONSTANT = re.compile(r"local (\w+) = ")
_ONE_LINE_FUNCTION = re.compile(r"local function \w+\(.*\).*\bend\s*$")
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b")


@dataclass(frozen=True)
class Definition:
    """One top-level ``local`` of the library: a function or a constant."""

    name: str
    comment: str  # the comment right above it ('' when none)
    code: str
    file: str = ""  # where it is, relative to the repository (acd/lua/09_dispatch.lua)

    @property
    def source(self) -> str:
        return self.comment + self.code

    def uses(self) -> set[str]:
        """The identifiers its code mentions (comments left out)."""
        code = "\n".join(line.split("--", 1)[0] for line in self.code.splitlines())
        return set(_IDENTIFIER.findall(code)) - {self.name}


def _comment_above(lines: list[str], start: int) -> int:
    """The first line of the comment ending right above line ``start``: a run of ``--``
    lines, or one ``--[[ ... ]]`` block."""
    first = start
    if first > 0 and lines[first - 1].rstrip().endswith("]]"):
        while first > 0 and not lines[first - 1].startswith("--[["):
            first -= 1
        return first - 1 if first > 0 else start
    while first > 0 and lines[first - 1].startswith("--") and not lines[first - 1].startswith(
            "--[["):
        first -= 1
    return first


def parse(text: str, file: str = "") -> dict[str, Definition]:
    """Every top-level ``local function`` and ``local`` constant of a Lua library, by name,
    in the library's order. A function ends at the first line that is ``end`` alone (the
    library's style), or on its own line when written on one line."""
    lines = text.splitlines(keepends=True)
    found: dict[str, Definition] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        function, constant = _FUNCTION.match(line), _CONSTANT.match(line)
        if function is None and constant is None:
            i += 1
            continue
        name = function.group(1) if function is not None else constant.group(1)  # type: ignore[union-attr]
        last = i
        if function is not None and not _ONE_LINE_FUNCTION.match(line):
            last = i + 1
            while last < len(lines) and lines[last].rstrip() != "end":
                last += 1
            if last == len(lines):
                raise ValueError(f"local function {name} has no closing 'end' line")
        found[name] = Definition(name, "".join(lines[_comment_above(lines, i):i]),
                                 "".join(lines[i:last + 1]), file)
        i = last + 1
    return found


@cache
def _library() -> dict[str, Definition]:
    found: dict[str, Definition] = {}
    for path in LIBRARY_FILES:  # the library's order: its files' name order
        found.update(parse(path.read_text(), f"acd/lua/{path.name}"))
    return found


def _definition(name: str) -> Definition:
    try:
        return _library()[name]
    except KeyError:
        raise KeyError(f"no top-level local {name!r} in acd/lua/") from None


def lua_source(function: str | None = None) -> str:
    """The acd library's source, or one top-level function of it (by its Lua name) with
    the comment above it."""
    if function is None:
        return LIBRARY
    return _definition(function).source


def lua_chunk(function: str) -> str:
    """``function`` and every top-level definition it needs, in the library's order: Lua
    that EVAL runs, with ``function`` defined at its end."""
    library = _library()
    needed: set[str] = set()
    todo = [_definition(function).name]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(library[name].uses() & library.keys())
    return "".join(d.source for d in library.values() if d.name in needed)


def show_lua(*functions: str) -> Any:
    """Display Lua source of the library with syntax colouring in a notebook: the named
    top-level definitions one after the other (none: the whole library)."""
    from IPython.display import Markdown

    if not functions:
        return Markdown(f"```lua\n{lua_source()}```")  # type: ignore[no-untyped-call]
    shown = [_definition(f) for f in functions]
    files = ", ".join(dict.fromkeys(d.file for d in shown))
    source = "\n".join(d.source for d in shown)
    return Markdown(f"From `{files}`:\n```lua\n{source}```")  # type: ignore[no-untyped-call]

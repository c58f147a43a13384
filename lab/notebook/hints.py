"""Hints in place of tracebacks for the mistakes learners make most.

``install_hints()`` (called by ``lab.notebook.setup``) replaces the long redis-py
traceback of the most common mistake of notebook 01, a JSON value that is not JSON (an
unquoted string), with one line that says how to write it.
"""

from __future__ import annotations

import re
from typing import Any

from redis.exceptions import ResponseError

_NOT_JSON = re.compile(r"expected (value|ident)|EOF while parsing|trailing characters")


def hint_for(exc: BaseException) -> str | None:
    """A one-line hint for an error learners meet often, or None."""
    if isinstance(exc, ResponseError) and _NOT_JSON.search(str(exc)):
        return ("Redis could not read your value as JSON. JSON commands take JSON text: a "
                "string needs double quotes inside the Python string, '\"Billing\"' (or "
                "json.dumps(\"Billing\")), not 'Billing'.")
    return None


def install_hints() -> None:
    """In an IPython kernel, show a hint instead of a long traceback for the errors
    ``hint_for`` knows; every other error shows its traceback as usual. The cell still
    fails, so Run All stops there."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell: Any = get_ipython()
    if shell is None:
        return

    def handler(shell: Any, etype: type[BaseException], value: BaseException, tb: Any,
                tb_offset: int | None = None) -> list[str]:
        hint = hint_for(value)
        if hint is None:
            stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset)
        else:
            stb = [f"{etype.__name__}: {value}", f"Hint: {hint}"]
        shell._showtraceback(etype, value, stb)
        return list(stb)

    shell.set_custom_exc((ResponseError,), handler)

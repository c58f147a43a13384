"""Every exercise check: the solution passes, the placeholder says "not answered", and each
common wrong answer (a real None, a wrong type, a missing await, the classic mistake of
that exercise) gets a hint that names it, never a traceback. Real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ResponseError

from acd import Center
from acd.naive import NaiveDispatcher
from lab.notebook import Lab, hints
from lab.notebook import exercises as ex


@pytest.fixture
async def lab(center: Center) -> AsyncIterator[Lab]:
    yield Lab(redis=center.redis, center=center, env="test", url="redis://test",
              server_version="test")


def verdict(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_key_name(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "{acd:nb00}:agent:a7": "✔",
        ...: "Not answered yet",
        None: "you gave None",
        "acd:nb00:agent:a7": "Missing the hash tag",
        "{acd:nb0}:agent:a7": "must be exactly {acd:nb00}",
        "{acd:nb00}:agents:a7": "Right tag, wrong rest",
    }
    for answer, expected in cases.items():
        ok = ex.check_key_name(answer, "nb00", "a7")
        out = verdict(capsys)
        assert expected in out and ok == (expected == "✔"), (answer, out)


async def test_agent_skills(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    r, key = lab.redis, lab.keys.agent("a2")

    async def fresh() -> None:
        await r.execute_command("JSON.SET", key, "$", json.dumps(
            {"id": "a2", "fname": "Bo", "lname": "Li", "skills": ["English"]}))

    async def attempt(*values: str) -> tuple[bool, str]:
        await fresh()
        for value in values:
            await r.execute_command("JSON.ARRAPPEND", key, "$.skills", value)
        ok = await ex.check_agent_skills(lab, "a2", ["English", "Support", "Sales"])
        return ok, verdict(capsys)

    assert (await attempt('"Support"', '"Sales"'))[0]
    ok, out = await attempt()
    assert not ok and "missing ['Support', 'Sales']" in out and "double quotes" in out
    ok, out = await attempt('"Support"', '"Sales"', '"Sales"')
    assert not ok and "appears twice" in out
    ok, out = await attempt('["Support", "Sales"]')
    assert not ok and "itself an array" in out
    ok, out = await attempt('"Sales"', '"Support"')
    assert not ok and "wrong order" in out
    # The classic: an unquoted string is not JSON. Redis refuses it; the hint says why.
    await fresh()
    with pytest.raises(ResponseError) as refused:
        await r.execute_command("JSON.ARRAPPEND", key, "$.skills", "Support")
    hint = hints.hint_for(refused.value)
    assert hint is not None and '\'"Billing"\'' in hint
    await r.delete(key)
    assert not await ex.check_agent_skills(lab, "a2", ["English"])
    assert "There is no document" in verdict(capsys)


def test_the_json_hint_replaces_the_traceback_in_ipython(
        capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        hints.install_hints()
        result = shell.run_cell("from redis.exceptions import ResponseError\n"
                                "raise ResponseError('expected value at line 1 column 1')")
        out = capsys.readouterr()
        assert isinstance(result.error_in_exec, ResponseError), "the cell still fails"
        text = out.out + out.err
        assert "Hint: Redis could not read your value as JSON" in text
        assert "Traceback" not in text
        result = shell.run_cell("from redis.exceptions import ResponseError\n"
                                "raise ResponseError('WRONGTYPE something else')")
        text = "".join(capsys.readouterr())
        assert "WRONGTYPE" in text and "Hint" not in text, "other errors keep their traceback"
    finally:
        InteractiveShell.clear_instance()


async def test_laa(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    c, r, k = lab.center, lab.redis, lab.keys
    # x became available first with English, but last with Support: SUM ranks it last.
    await c.create_agent("x", "X", "X", ["English"], available=True)
    await asyncio.sleep(0.01)
    await c.create_agent("y", "Y", "Y", ["English", "Support"], available=True)
    await asyncio.sleep(0.01)
    await c.add_skill("x", "Support")  # keeps x's score, the oldest
    await r.zadd(k.avail("Support"), {"x": 10**13})  # ...unless someone writes it by hand
    skills = ["English", "Support"]
    ranked = await r.zinter([k.avail(s) for s in skills], aggregate="MIN")
    assert await ex.check_laa(lab, skills, ranked[0])
    assert "✔" in verdict(capsys)
    summed = await r.zinter([k.avail(s) for s in skills])
    assert summed[0] != ranked[0], "the SUM trap needs a different first agent"
    wrong = {
        summed[0]: "default AGGREGATE SUM",
        ...: "Not answered yet",
        None: "None is not an agent id",
    }
    for answer, expected in wrong.items():
        assert not await ex.check_laa(lab, skills, answer)
        assert expected in verdict(capsys), answer
    assert not await ex.check_laa(lab, skills, ranked)
    assert "not the whole ranking" in verdict(capsys)
    with_scores = await r.zinter([k.avail(s) for s in skills], aggregate="MIN",
                                 withscores=True)
    assert not await ex.check_laa(lab, skills, with_scores[0])
    assert "(member, score)" in verdict(capsys)
    assert not await ex.check_laa(lab, skills, "nobody")
    assert "not an available agent" in verdict(capsys)


async def test_fifo(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    r, q = lab.redis, lab.keys.tag + ":demo:queue"

    async def fill() -> None:
        await r.zadd(q, {"late": 3000, "early": 1000, "middle": 2000})

    await fill()
    assert await ex.check_fifo(lab, await r.bzpopmin(q, timeout=1), "early")
    verdict(capsys)
    await fill()
    cases = {
        "max": (await r.bzpopmax(q, timeout=1), "use BZPOPMIN"),
        "zpopmin": (await r.zpopmin(q), "ZPOPMIN's answer"),
        "timeout": (await r.bzpopmin(lab.keys.queue, timeout=0.05), "timeout expired"),
        "placeholder": (..., "Not answered yet"),
    }
    for name, (popped, expected) in cases.items():
        assert not await ex.check_fifo(lab, popped, "early"), name
        assert expected in verdict(capsys), name
    assert not await ex.check_fifo(lab, r.bzpopmin(q, timeout=1), "early")
    assert "put await in front" in verdict(capsys)


async def test_naive_step(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    c = lab.center
    await c.set_dispatch_mode("manual")
    await c.create_agent("old", "O", "O", ["English"], available=True)
    await asyncio.sleep(0.01)
    await c.create_agent("new", "N", "N", ["English"], available=True)
    await c.create_contact(["English"], contact_id="c9")
    assert not await ex.check_naive_step(lab, None, "c9", "old")
    assert "assigned nobody" in verdict(capsys)
    assert not await ex.check_naive_step(lab, "new", "c9", "old")
    assert "longest available agent was old" in verdict(capsys)
    step = NaiveDispatcher(c, pop_timeout=0.5, backoff=(0, 0))
    assert not await ex.check_naive_step(lab, step.step(), "c9", "old")
    assert "put await in front" in verdict(capsys)
    result = await step.step()  # the solution's step
    assert result is not None
    assert await ex.check_naive_step(lab, result.agent, "c9", "old")
    assert "went to old" in verdict(capsys)
    assert not await ex.check_naive_step(lab, None, "c9", "old")  # ran it twice
    assert "did you run the cell twice" in verdict(capsys)
    assert not await ex.check_naive_step(lab, ..., "c9", "old")
    assert "Not answered yet" in verdict(capsys)


async def test_no_hol(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    c = lab.center
    await c.create_agent("a1", "A", "A", ["English"], available=True)
    await c.create_contact(["Spanish"], contact_id="p1")
    assert not await ex.check_no_hol(lab, "e1", "p1")
    assert "no contact 'e1' yet" in verdict(capsys)
    await c.create_contact(["English"], contact_id="e1")
    assert not await ex.check_no_hol(lab, "e1", "p1")
    assert "call await center.dispatch()" in verdict(capsys)
    await c.dispatch()
    assert await ex.check_no_hol(lab, "e1", "p1")
    assert "no head-of-line blocking" in verdict(capsys)


def test_staffing(capsys: pytest.CaptureFixture[str]) -> None:
    best = ex.smallest_staffing(720, 240)
    assert best == 54
    cases: list[tuple[object, str]] = [
        (54, "✔"), (54.0, "✔"), (53, "short of 80%"), (55, "so do 54"),
        (48, "cannot keep up"), (..., "Not answered yet"), (None, "give an int, not None"),
        ("54", "give an int"), (53.5, "give an int"), (0, "At least one agent"),
    ]
    for answer, expected in cases:
        ok = ex.check_staffing(answer, rate_per_hour=720, handle=240)
        out = verdict(capsys)
        assert expected in out and ok == (expected == "✔"), (answer, out)


def test_same_slot(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "{acd:nb07}:callbacks": "✔", "callbacks": "No hash tag",
        "{}{acd:nb07}:callbacks": "empty hash tag", "{x}{acd:nb07}:cb": "Only the FIRST",
        "{acd:nb7}:callbacks": "must match exactly", ...: "Not answered yet",
        None: "you gave None",
    }
    for answer, expected in cases.items():
        ok = ex.check_same_slot(answer, "nb07")
        out = verdict(capsys)
        assert expected in out and ok == (expected == "✔"), (answer, out)


def test_min_replicas(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {1: "✔", 0: "switches the protection off", 2: "one failure stops the ACD",
             "1": "is text", None: "not None", ...: "Not answered yet", -1: "negative"}
    for answer, expected in cases.items():
        ok = ex.check_min_replicas(answer)
        out = verdict(capsys)
        assert expected in out and ok == (expected == "✔"), (answer, out)

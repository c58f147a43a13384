"""What queueing a contact costs with every routing feature off, counted in commands (INFO
commandstats), so the counts do not depend on the machine (README, Performance: "Against
both befores"). A contact that starts a combination asks whether anyone available can serve
it, which decides whether the combination is ready or parked: one ZINTERCARD ... LIMIT 1,
not a walk of the availability sets.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

from acd import Center
from acd.invariants import violations


async def ran(center: Center, step: Awaitable[Any]) -> dict[str, int]:
    """The commands the server ran for ``step`` (and for nothing else: the test's own INFO
    calls left out), by name."""
    async def counts() -> dict[str, int]:
        stats = await cast(Any, center.redis).info("commandstats")
        return {str(k).removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

    before = await counts()
    await step
    after = await counts()
    diff = {name: n - before.get(name, 0) for name, n in after.items()}
    diff["info"] -= 1
    return {name: n for name, n in diff.items() if n > 0}


async def test_a_new_combination_asks_once_whether_anyone_can_serve_it(
        center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en", "fr"], available=True)
    await center.create_agent("b", "A", "B", ["de", "fr"], available=True)
    cases = [(["en", "fr"], True),  # a has both
             (["de", "en"], False),  # each has one of them, nobody both
             (["en", "zz"], False),  # nobody has zz: its set is empty
             (["de", "en", "fr"], False)]
    for skills, servable in cases:
        commands = await ran(center, center.create_contact(skills))
        sig = ",".join(skills)
        assert commands.get("zintercard") == 1, (sig, commands)
        assert not {"zmscore", "zrange"} & commands.keys(), (sig, commands)
        assert commands.get("zcard", 0) <= 1, (sig, commands)  # the queue's, for its cap
        in_ready = await center.redis.zscore(center.keys.ready, sig) is not None
        parked = await center.redis.hexists(center.keys.parked_on, sig)
        assert (in_ready, bool(parked)) == (servable, not servable), sig
    assert not await violations(center)


async def test_a_contact_of_a_known_combination_asks_nothing(center: Center) -> None:
    await center.create_agent("a", "A", "B", ["en", "fr"], available=True)
    await center.create_contact(["en", "fr"])
    commands = await ran(center, center.create_contact(["en", "fr"]))
    assert not {"zintercard", "zmscore", "zrange"} & commands.keys(), commands
    assert commands["fcall"] == 1
    # Inside the call, features off (README): the clock, the meta read once (HMGET), the
    # document, the queue's size for its cap (ZCARD; ACD_MAX_QUEUED), the queue and the
    # combination's FIFO, three counts, whether the combination is parked, an event and a
    # wake. (Outside it: the center's registration, SADD.)
    inside = sum(n for name, n in commands.items() if name not in {"fcall", "sadd"})
    assert inside <= 14, commands

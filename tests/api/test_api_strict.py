"""Strict input (issue 13): no coercion of types, unknown fields refused naming them, names
of printable characters only, 404 for an unknown skill, no agent left without skills.

The same rules hold on the /v1 routes, the original demo's routes and acd.Center itself."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from acd import Center, InvalidInput, InvalidState, NotFound
from lab.apiserver import ApiServer

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: shows "txt.exe" as "exe.txt"


def problems(r: httpx.Response) -> list[tuple[list[Any], str]]:
    assert r.status_code == 422, r.text
    return [(item["loc"], item["msg"]) for item in r.json()["detail"]]


async def agent(client: httpx.AsyncClient, v1: str, agent_id: str, skills: list[str]) -> None:
    r = await client.post(f"{v1}/agents", json={"id": agent_id, "fname": "Ada",
                                                "lname": "Lee", "skills": skills})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", "/state", {"open": "yes"}, "open"),
    ("PUT", "/state", {"open": 1}, "open"),
    ("POST", "/agents", {"id": "a", "fname": "A", "lname": "B", "skills": ["x"],
                         "available": "true"}, "available"),
    ("PUT", "/agents/a1/state", {"state": True}, "state"),
])
async def test_v1_types_are_not_coerced(client: httpx.AsyncClient, v1: str, method: str,
                                        path: str, body: dict[str, Any], field: str) -> None:
    locs = [loc for loc, _ in problems(await client.request(method, v1 + path, json=body))]
    assert ["body", field] in locs


async def test_a_query_flag_is_true_or_false(client: httpx.AsyncClient, v1: str) -> None:
    await agent(client, v1, "a1", ["x", "y"])
    found = problems(await client.delete(f"{v1}/skills/x", params={"force": "yes"}))
    assert found == [(["query", "force"], "'yes' is not a boolean: use true or false")]
    r = await client.delete(f"{v1}/skills/x", params={"force": "true"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/acd", {"state": True}, "state"),
    ("POST", "/acd", {"state": "1"}, "state"),
    ("PATCH", "/agent/agent:1/state", {"state": False}, "state"),
    ("POST", "/contact", {"skills": "English"}, "skills"),
])
async def test_demo_types_are_not_coerced(client: httpx.AsyncClient, method: str, path: str,
                                          body: dict[str, Any], field: str) -> None:
    locs = [loc for loc, _ in problems(await client.request(method, path, json=body))]
    assert ["body", field] in locs


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "{v1}/state", {"open": True, "force": True}),
    ("PUT", "{v1}/dispatch-mode", {"mode": "manual", "now": 1}),
    ("POST", "{v1}/contacts", {"skills": ["x"], "urgency": 5}),
    ("POST", "/acd", {"state": 1, "force": True}),
    ("POST", "/contact", {"skills": ["x"], "priority": 5}),
    ("POST", "/agent/agent:9", {"fname": "A", "lname": "B", "skills": ["x"], "age": 3}),
    ("PATCH", "/agent/agent:9/skill", {"skill": "x", "level": 3}),
])
async def test_unknown_fields_are_422_naming_them(client: httpx.AsyncClient, v1: str,
                                                  method: str, path: str,
                                                  body: dict[str, Any]) -> None:
    unknown = (set(body) - {"open", "mode", "skills", "state", "fname", "lname",
                            "skill"}).pop()
    found = problems(await client.request(method, path.format(v1=v1), json=body))
    assert (["body", unknown], f"unknown field {unknown!r}") in found, found


@pytest.mark.parametrize(("method", "path", "body", "loc"), [
    ("POST", "{v1}/agents", {"id": "a", "fname": f"Ann{RLO}", "lname": "B", "skills": ["x"]},
     ["body", "fname"]),
    ("PATCH", "{v1}/agents/a1", {"fname": "A", "lname": "B\x07"}, ["body", "lname"]),
    ("POST", "/agent/agent:9", {"fname": "A\n", "lname": "B", "skills": ["x"]},
     ["body", "fname"]),
    ("PATCH", "/agent/agent:1", {"fname": "A", "lname": f"{RLO}B"}, ["body", "lname"]),
    ("POST", "{v1}/contacts", {"skills": [f"x{RLO}"]}, ["body", "skills", 0]),
    ("POST", "/contact", {"skills": ["ok", f"x{RLO}"]}, ["body", "skills", 1]),
    ("PATCH", "/agent/agent:1/skill", {"skill": f"x{RLO}"}, ["body", "skill"]),
    ("GET", f"/v1/centers/c{RLO}/agents", None, ["path", "center"]),
    ("GET", f"{{v1}}/agents/a{RLO}", None, ["path", "agent_id"]),
    ("DELETE", f"{{v1}}/skills/s{RLO}", None, ["path", "skill"]),
    ("GET", f"/contact/contact:c{RLO}", None, ["path", "contact_key"]),
    ("DELETE", f"/skill/s{RLO}", None, ["path", "skill"]),
])
async def test_names_with_control_or_bidi_characters_are_422_naming_them(
        client: httpx.AsyncClient, v1: str, method: str, path: str,
        body: dict[str, Any] | None, loc: list[Any]) -> None:
    found = problems(await client.request(method, path.format(v1=v1), json=body))
    msgs = [msg for where, msg in found if where == loc]
    assert msgs, found
    assert any(name in msgs[0] for name in ("U+202E RIGHT-TO-LEFT OVERRIDE",
                                            "U+0007 <control>", "U+000A <control>")), msgs


async def test_printable_names_are_kept(client: httpx.AsyncClient, v1: str) -> None:
    r = await client.post(f"{v1}/agents", json={"id": "a1", "fname": "Zoë Ann",
                                                "lname": "O'Brien-Ñúñez", "skills": ["x"]})
    assert r.status_code == 201, r.text
    assert (r.json()["fname"], r.json()["lname"]) == ("Zoë Ann", "O'Brien-Ñúñez")


async def test_the_package_refuses_the_same_names(center: Center) -> None:
    with pytest.raises(InvalidInput, match="U\\+202E RIGHT-TO-LEFT OVERRIDE"):
        await center.create_agent("a1", f"A{RLO}", "B", ["x"])
    with pytest.raises(InvalidInput, match="U\\+202E RIGHT-TO-LEFT OVERRIDE"):
        await center.create_agent(f"a{RLO}", "A", "B", ["x"])
    await center.create_agent("a1", "A", "B", ["x"])
    with pytest.raises(InvalidInput, match="U\\+0000 <control>"):
        await center.update_agent("a1", "A\x00", "B")
    with pytest.raises(InvalidInput, match="U\\+202E RIGHT-TO-LEFT OVERRIDE"):
        await center.add_skill("a1", f"y{RLO}")
    assert (await center.get_agent("a1")).fname == "A"
    with pytest.raises(InvalidInput, match="available: 'no' is not a boolean"):
        await center.create_agent("a2", "A", "B", ["x"], available="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="force: 1 is not a boolean"):
        await center.delete_skill("x", force=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["{v1}/skills/nobody-has-it", "/skill/nobody-has-it"])
async def test_deleting_an_unknown_skill_is_404(client: httpx.AsyncClient, v1: str,
                                                path: str) -> None:
    await agent(client, v1, "a1", ["English"])
    r = await client.delete(path.format(v1=v1))
    assert r.status_code == 404, r.text
    assert "nobody-has-it" in r.json()["detail"]


@pytest.mark.parametrize("path", ["{v1}/agents/a1/skills/English",
                                  "/agent/agent:a1/skill/English"])
async def test_removing_an_agents_last_skill_is_409(client: httpx.AsyncClient, v1: str,
                                                   path: str) -> None:
    await agent(client, v1, "a1", ["English"])
    r = await client.delete(path.format(v1=v1))
    assert r.status_code == 409, r.text
    assert "a1" in r.json()["detail"] and "English" in r.json()["detail"]
    assert (await client.get(f"{v1}/agents/a1")).json()["skills"] == ["English"]


@pytest.mark.parametrize("path", ["{v1}/skills/Billing", "/skill/Billing"])
async def test_deleting_the_only_skill_of_an_agent_is_409_changing_nothing(
        client: httpx.AsyncClient, v1: str, center: Center, path: str) -> None:
    await agent(client, v1, "a1", ["English", "Billing"])
    await agent(client, v1, "a2", ["Billing"])
    await agent(client, v1, "a3", ["Billing", "French"])
    r = await client.delete(path.format(v1=v1))
    assert r.status_code == 409, r.text
    assert "a2" in r.json()["detail"] and "a1" not in r.json()["detail"]
    assert [a.skills for a in await center.list_agents()] == [
        ["English", "Billing"], ["Billing"], ["Billing", "French"]]
    # Nothing marked either: the agent may gain another skill, then the delete goes through.
    assert (await client.put(f"{v1}/agents/a2/skills/German")).status_code == 200
    assert (await client.delete(path.format(v1=v1))).status_code == 200
    assert [a.skills for a in await center.list_agents()] == [
        ["English"], ["German"], ["French"]]


async def test_a_skill_being_deleted_is_not_an_agents_last(center: Center) -> None:
    """While a skill is being deleted (between its short calls), removing an agent's other
    skill would leave it with the doomed one only: refused, so the deletion cannot leave
    the agent with none."""
    await center.create_agent("a1", "A", "B", ["x", "y"])
    await center.redis.hset(center.keys.meta, "deleting_skill:x", "1")  # as its first call
    with pytest.raises(InvalidState, match="x is being deleted"):
        await center.remove_skill("a1", "y")
    with pytest.raises(InvalidState, match="only skill"):
        await center.delete_skill("y")
    await center.redis.hdel(center.keys.meta, "deleting_skill:x")
    with pytest.raises(NotFound, match="skill z"):
        await center.delete_skill("z")


async def test_the_only_skill_check_reads_past_a_thousand_skills(center: Center) -> None:
    """acd_skill_delete compares against the other skills' sets 1,000 at a time (more than
    Lua's unpack takes at once); an agent whose other skill lies past the first 1,000 is
    still seen to keep one."""
    others = [f"t{i:04d}" for i in range(1100)]
    await asyncio.gather(*(center.create_agent(f"a{i}", "A", "B", ["s", t])
                           for i, t in enumerate(others)))
    await center.create_agent("alone", "A", "B", ["s"])
    with pytest.raises(InvalidState, match=r"only skill of 1 agents \(alone\)"):
        await center.delete_skill("s")
    await center.delete_agent("alone")
    assert (await center.delete_skill("s")).agents == len(others)


async def test_the_rules_hold_under_a_real_uvicorn(uvicorn_server: ApiServer, center: Center,
                                                   api_headers: dict[str, str]) -> None:
    """Over real HTTP: percent-encoded paths, raw bytes and JSON as a client sends them."""
    v1 = f"/v1/centers/{center.name}"
    async with httpx.AsyncClient(base_url=uvicorn_server.url, timeout=10.0,
                                 headers=api_headers) as http:
        assert problems(await http.put(f"{v1}/state", json={"open": "yes"})) == [
            (["body", "open"], "Input should be a valid boolean")]
        assert problems(await http.post("/acd", json={"state": 1, "force": True})) == [
            (["body", "force"], "unknown field 'force'")]
        found = problems(await http.get(f"{v1}/agents/a%E2%80%AEb"))
        assert found[0][0] == ["path", "agent_id"] and "U+202E" in found[0][1], found
        r = await http.post(f"{v1}/contacts", content=b"\xff\xfe{",
                            headers={"content-type": "application/json"})
        assert problems(r) == [(["body"], "the body is not JSON text in UTF-8")]
        r = await http.delete("/skill/never-seen")
        assert r.status_code == 404 and "never-seen" in r.json()["detail"]


async def test_a_query_parameter_of_one_value_given_twice_is_422(
        client: httpx.AsyncClient, v1: str) -> None:
    # FastAPI alone takes the last value: ?limit=5000&limit=5 would pass as 5.
    r = await client.get(f"{v1}/queue", params=[("limit", "5000"), ("limit", "5")])
    assert problems(r) == [(["query", "limit"],
                            "query parameter 'limit' takes one value, given 2")]
    assert (await client.get(f"{v1}/queue", params={"limit": "5"})).status_code == 200
    # A list parameter may repeat.
    r = await client.get(f"{v1}/candidates", params=[("skills", "x"), ("skills", "y")])
    assert r.status_code == 200, r.text

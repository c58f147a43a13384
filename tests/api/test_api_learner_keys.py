"""A workshop learner's API key (scope ``learner alice``, lab.workshop): it opens the
learner's centers, ``alice`` and ``alice.<anything>``, and nothing else: 403 naming the
key's id for every other center, the demo routes of another default center included."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from acd import Center
from acd.api import apikeys
from acd.keys import API_KEYS


@pytest.fixture
async def learner_key(center: Center) -> AsyncIterator[tuple[str, str]]:
    learner = f"l{uuid.uuid4().hex[:8]}"
    key = await apikeys.create(center.redis, label="workshop learner", learner=learner)
    yield learner, key
    await apikeys.revoke(center.redis, key)
    for name in (learner, f"{learner}.nb06"):
        await Center(center.redis, name).wipe()


async def test_a_learner_key_opens_the_learners_centers_only(
        bare: httpx.AsyncClient, center: Center, learner_key: tuple[str, str]) -> None:
    learner, key = learner_key
    key_id = apikeys.parse(key)[0]
    mine = apikeys.headers(key)
    for own in (learner, f"{learner}.nb06"):
        r = await bare.post(f"/v1/centers/{own}/agents", headers=mine, json={
            "id": "a1", "fname": "A", "lname": "B", "skills": ["en"]})
        assert r.status_code == 201, (own, r.text)
        assert (await bare.get(f"/v1/centers/{own}/agents", headers=mine)).status_code == 200
    for other in (f"{learner}a", f"{learner}-b", f"x{learner}", center.name, "default"):
        for method, path in (("GET", "agents"), ("GET", "events"), ("POST", "contacts"),
                             ("DELETE", "")):
            r = await bare.request(method, f"/v1/centers/{other}/{path}".rstrip("/"),
                                   headers=mine)
            assert r.status_code == 403, (other, method, path, r.text)
            assert r.json()["detail"] == (
                f"API key {key_id} is scoped to learner {learner}'s centers ({learner}, "
                f"{learner}.*): it may not use center {other}")
            assert key.split("_")[2] not in r.text
    # The demo routes serve the API's default center (the test's): not the learner's.
    assert (await bare.get("/contact/contact:nobody", headers=mine)).status_code == 403
    assert (await bare.post("/contact", headers=mine, json={"skills": ["en"]})
            ).status_code == 403


async def test_the_scope_is_stored_and_listed(center: Center,
                                              learner_key: tuple[str, str]) -> None:
    learner, key = learner_key
    key_id = apikeys.parse(key)[0]
    stored = json.loads(await center.redis.hget(API_KEYS, key_id))
    assert stored["learner"] == learner and stored["center"] is None
    listed = {k.id: k for k in await apikeys.list_keys(center.redis)}[key_id]
    assert listed.scope == f"learner {learner}" and not listed.admin
    assert listed.allows(f"{learner}.x") and not listed.allows(f"{learner}x")


async def test_a_key_has_one_scope_and_a_learner_name_has_no_dot(center: Center) -> None:
    with pytest.raises(ValueError, match="not both"):
        await apikeys.create(center.redis, center.name, learner="alice")
    for bad in ("al.ice", "", "a b", "a" * 33):
        with pytest.raises(ValueError, match="learner"):
            await apikeys.create(center.redis, learner=bad)


def test_the_cli_adds_a_learner_key(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from lab.__main__ import main as lab_main

    assert lab_main(["apikey", "--redis-url", redis_url, "add", "--learner", "zed"]) == 0
    key = capsys.readouterr().out.strip()
    assert lab_main(["apikey", "--redis-url", redis_url, "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{apikeys.parse(key)[0]}  learner zed" in listed
    assert lab_main(["apikey", "--redis-url", redis_url, "revoke", key]) == 0
    assert lab_main(["apikey", "--redis-url", redis_url, "add", "--learner", "z.d"]) == 2

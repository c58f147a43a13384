"""CI validation of the shipped balancer configs, compose file and database definition.

No Docker engine needed: HAProxy configs go through `haproxy -c`, keepalived configs
through `keepalived -t`, docker-compose.yml through the Compose Specification JSON schema
(vendored: compose-spec.json, see compose-spec.NOTICE.txt), database.json through what
the ACD code expects of the database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from lab.enterprise import bootstrap as ent
from lab.ha import configs as ha_configs
from lab.ha.layout import HATopology

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ENT = REPO / "lab" / "enterprise"
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
KEEPALIVED = shutil.which("keepalived") or shutil.which("keepalived", path="/usr/sbin")
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None, reason="haproxy not installed (apt-get install haproxy)"
)
needs_keepalived = pytest.mark.skipif(
    KEEPALIVED is None, reason="keepalived not installed (apt-get install keepalived)"
)


def _haproxy_check(cfg: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [str(HAPROXY), "-c", "-f", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _keepalived_check(cfg: Path) -> None:
    assert cfg.is_file()  # keepalived -t exits 0 on a missing file
    proc = subprocess.run(
        [str(KEEPALIVED), "-t", "-f", str(cfg)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not found" not in proc.stderr, proc.stderr  # e.g. a track script it cannot run


def _ha_topology(tmp_path: Path) -> HATopology:
    topo = HATopology(run_dir=tmp_path, password="pw_For-Test1")
    ha_configs.write_configs(topo, "/nonexistent/rejson.so")
    return topo


# --------------------------------------------------------------------------- HA lab templates


@needs_haproxy
@pytest.mark.parametrize("lb", ["lb1", "lb2"])
def test_ha_haproxy_config_is_valid(tmp_path: Path, lb: str) -> None:
    topo = _ha_topology(tmp_path)
    cfg = topo.run_dir / lb / "haproxy.cfg"
    _haproxy_check(cfg)
    text = cfg.read_text()
    assert "tcp-check expect string role:master" in text
    assert "tcp-check expect rstring connected_slaves:[1-9]" in text
    assert "on-marked-down shutdown-sessions" in text
    assert text.count("server api") == len(topo.api_servers)


@needs_keepalived
@pytest.mark.parametrize("lb", ["lb1", "lb2"])
def test_ha_keepalived_config_is_valid(tmp_path: Path, lb: str) -> None:
    topo = _ha_topology(tmp_path)
    cfg = topo.run_dir / lb / "keepalived.conf"
    _keepalived_check(cfg)
    text = cfg.read_text()
    assert f"{topo.run_dir}/{lb}/haproxy.pid" in text  # tracks its own HAProxy
    assert "unicast_peer" in text and topo.vip in text


def test_ha_haproxy_api_backends_are_a_parameter(tmp_path: Path) -> None:
    topo = HATopology(
        run_dir=tmp_path, password="pw", api_servers=[("host", "192.168.20.1", 8001)]
    )
    text = ha_configs.render_haproxy_cfg(topo, "lb1")
    assert "server host 192.168.20.1:8001 check" in text and "api1" not in text


# --------------------------------------------------------------------------- enterprise


@pytest.fixture
def enterprise_haproxy_cfg(tmp_path: Path) -> Path:
    pem = ent.make_certificate(tmp_path / "certs")
    text = (ENT / "haproxy" / "haproxy.cfg").read_text()
    assert "/usr/local/etc/haproxy/certs/haproxy.pem" in text
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text.replace("/usr/local/etc/haproxy/certs/haproxy.pem", str(pem)))
    return cfg


@needs_haproxy
def test_enterprise_haproxy_config_is_valid(enterprise_haproxy_cfg: Path) -> None:
    _haproxy_check(enterprise_haproxy_cfg, {"REDIS_PASSWORD": "secret"})
    text = enterprise_haproxy_cfg.read_text()
    for port in (8000, 8443, 9443, 12000):
        assert f"bind :{port}" in text
    admin = _section(text, "backend admin_console")
    assert "balance leastconn" in admin and "cookie SERVERID insert" in admin
    assert "balance roundrobin" in _section(text, "backend cluster_api")
    assert "mode tcp" in _section(text, "frontend cluster_api")  # TLS pass-through
    assert "server-template api 2 api:8000" in _section(text, "backend api_replicas")


def _section(text: str, header: str) -> str:
    start = re.search(rf"^{re.escape(header)}\b", text, re.M).start()  # type: ignore[union-attr]
    nxt = re.search(
        r"^(frontend|backend|listen|resolvers|global|defaults)\b", text[start + 1 :], re.M
    )
    return text[start : start + 1 + nxt.start()] if nxt else text[start:]


@needs_haproxy
@pytest.mark.timeout(60)
def test_enterprise_database_check_authenticates(tmp_path: Path) -> None:
    """The 12000 backend's AUTH + PING + QUIT check, run by a real HAProxy against a real
    redis-server on loopback: the server goes UP only when the check passes."""
    from lab.binaries import redis_server

    text = (ENT / "haproxy" / "haproxy.cfg").read_text()
    backend = _section(text, "backend redis_proxies")
    rport, fport = _free_port(), _free_port()
    backend = re.sub(r"^\s+server .*$", "", backend, flags=re.M)
    backend += f"    server local 127.0.0.1:{rport} check inter 200ms\n"
    cfg = tmp_path / "h.cfg"
    stats = tmp_path / "stats.sock"
    header = (
        f"global\n    stats socket {stats} mode 600 level admin\n"
        "defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        "    timeout check 1s\n"
        f"frontend redis\n    mode tcp\n    bind 127.0.0.1:{fport}\n"
        "    default_backend redis_proxies\n"
    )
    cfg.write_text(header + backend)
    redis = subprocess.Popen(
        [
            str(redis_server()),
            "--port",
            str(rport),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            "s3cret",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    haproxy = subprocess.Popen(
        [str(HAPROXY), "-db", "-f", str(cfg)],
        env={**os.environ, "REDIS_PASSWORD": "s3cret"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        status = ""
        while time.monotonic() < deadline:
            status = _server_status(tmp_path / "stats.sock")
            if status == "UP":
                break
            time.sleep(0.2)
        assert status == "UP", f"check did not pass: {status}"
        import redis as redis_py

        with redis_py.Redis(port=fport, password="s3cret", socket_timeout=2) as r:
            assert r.ping()
    finally:
        for p in (haproxy, redis):
            p.kill()
            p.wait(timeout=5)


def _server_status(sock_path: Path) -> str:
    if not sock_path.exists():
        return "no socket"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(sock_path))
        s.sendall(b"show servers state redis_proxies\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[3] == "local":
            return {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}.get(
                parts[5], parts[5]
            )
    return data.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_keepalived
@pytest.mark.parametrize("lb", ["lb1", "lb2"])
def test_enterprise_keepalived_config_is_valid(tmp_path: Path, lb: str) -> None:
    text = (ENT / "keepalived" / f"keepalived-{lb}.conf").read_text()
    # the check script's path inside the container -> the shipped script
    script = tmp_path / "check_haproxy.sh"
    shutil.copyfile(ENT / "check_haproxy.sh", script)
    script.chmod(0o755)
    tmp_path.chmod(0o755)
    cfg = tmp_path / "keepalived.conf"
    cfg.write_text(text.replace("/usr/local/bin/check_haproxy.sh", str(script)))
    _keepalived_check(cfg)
    assert "192.168.20.100/24" in text and "unicast_peer" in text
    assert "/run/haproxy.pid" in text  # its own HAProxy, by pid file
    assert "/run/haproxy.pid" in (ENT / "lb-entrypoint.sh").read_text()


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((HERE / "compose-spec.json").read_text())
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_file_describes_the_environment() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = doc["services"]
    assert doc["networks"]["acd"]["ipam"]["config"][0]["subnet"] == "192.168.20.0/24"
    for name in ("re1", "re2", "re3"):
        assert services[name]["image"].startswith("redislabs/redis")
    addresses = {
        n: s["networks"]["acd"]["ipv4_address"]
        for n, s in services.items()
        if isinstance(s.get("networks"), dict)
    }
    assert addresses["lb1"] == "192.168.20.2" and addresses["lb2"] == "192.168.20.3"
    assert "192.168.20.100" not in addresses.values()  # the VIP belongs to keepalived
    for lb in ("lb1", "lb2"):
        assert "NET_ADMIN" in services[lb]["cap_add"]
        for volume in services[lb]["volumes"]:
            src = volume.split(":")[0]
            if not src.startswith("./.lab/"):  # the certificate dir is made by `up`
                assert (REPO / src).exists(), src
        assert (
            REPO / services[lb]["build"]["context"] / services[lb]["build"]["dockerfile"]
        ).exists()
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["dispatcher"]["deploy"]["replicas"] == 2
    assert services["dispatcher"]["command"][-2:] == ["-m", "acd.dispatcher"]
    assert "acd.api.app:app" in services["api"]["command"]
    assert (REPO / services["api"]["build"]["dockerfile"]).exists()


def test_database_definition_is_what_the_code_expects() -> None:
    raw = json.loads(ent.DATABASE_JSON.read_text())
    assert raw["authentication_redis_pass"] == "${REDIS_PASSWORD}"  # never a real password
    d = ent.database_definition("pw123")
    assert d["authentication_redis_pass"] == "pw123"
    assert d["shards_count"] == 2 and d["sharding"] is True
    assert d["port"] == 12000
    assert d["proxy_policy"] == "all-nodes"
    assert d["eviction_policy"] == "noeviction"  # never evicts ACD data when full
    assert [m["module_name"] for m in d["module_list"]] == ["ReJSON"]
    regexes = [r["regex"] for r in d["shard_key_regex"]]
    assert regexes == [r".*\{(?<tag>.*)\}.*", r"(?<tag>.*)"]
    # The hash-tag rule: Python spells named groups (?P<tag>...).
    tag = re.compile(regexes[0].replace("(?<", "(?P<"))
    assert tag.fullmatch("acd:{center1}:queue").group("tag") == "center1"


def test_up_fails_clearly_without_docker_engine() -> None:
    try:
        ent.require_docker(timeout=10)
    except ent.DockerUnavailable:
        pass
    else:
        pytest.skip("a Docker engine is reachable here")
    proc = subprocess.run(
        [sys.executable, "-m", "lab.enterprise", "up"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Docker" in proc.stderr and "lab.ha" in proc.stderr, proc.stderr


def test_env_file_update_keeps_other_lines(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nOTHER=1\nREDIS_URL=old\n")
    ent.update_env_file({"REDIS_URL": "new", "API_URL": "http://x"}, env)
    assert env.read_text() == "# comment\nOTHER=1\nREDIS_URL=new\nAPI_URL=http://x\n"

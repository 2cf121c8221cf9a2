"""The proxy's configuration as snap writes it, the new settings, the listening hint."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from snapshot.adapters import haproxy
from snapshot.adapters.haproxy import MAINT, READY, Slot
from snapshot.config import Settings, load_settings
from snapshot.errors import ConfigError
from snapshot.health import Health, HealthCheck
from snapshot.targets.candidate import with_listening_hint

GATEWAY = (
    "172.30.0.1"  # the app network's gateway: where the engine's port forwarding connects from
)


def test_the_runtime_api_is_a_unix_socket_relayed_only_from_the_gateway() -> None:
    text = haproxy.render((Slot("blue", None, READY),), 8000, {}, admin_from=GATEWAY)
    assert f"    stats socket {haproxy.ADMIN_SOCKET} mode 600 level admin\n" in text
    assert "ipv4@" not in text  # nothing of the API itself on a network address
    relay = (
        "listen admin\n    mode tcp\n    bind :9999\n"
        f"    tcp-request connection reject unless {{ src {GATEWAY} }}\n"
        f"    server cli unix@{haproxy.ADMIN_SOCKET}\n"
    )
    assert relay in text


def test_render_names_the_serving_container_and_keeps_the_standby_in_maintenance() -> None:
    text = haproxy.render(
        (Slot("blue", "api-7-ab12", READY), Slot("green", "api-6-cd34", MAINT)),
        8000,
        {"blue": 9, "green": 6},
        admin_from=GATEWAY,
    )
    checked = "    server blue api-7-ab12:8000 resolvers docker init-addr last,libc,none check\n"
    assert checked in text  # the checked backend
    assert checked.replace(" check", "") in text  # the unchecked one
    assert "    option httpchk GET /health\n" in text
    assert (
        "    server green api-6-cd34:8000 resolvers docker init-addr last,libc,none disabled"
        in text
    )
    assert "nameserver docker 127.0.0.11:53" in text  # Docker's DNS: names, not addresses
    assert haproxy.deployments(text) == {"blue": 9, "green": 6}


def test_an_empty_slot_names_the_proxy_itself_and_is_disabled() -> None:
    slots = (Slot("blue", None, READY), Slot("green", None, MAINT))
    text = haproxy.render(slots, 8000, {}, admin_from=GATEWAY)
    # Both slots in the checked and the unchecked backend, and the fallback's server.
    assert text.count(f"{haproxy.EMPTY}:8000") == 5
    assert text.count(" disabled\n") == 6  # those five and the probe server
    assert haproxy.deployments(text) == {}


@pytest.mark.docker
def test_the_fallback_names_the_standby_and_is_gated_by_the_map() -> None:
    slots = (Slot("blue", "api-7-ab12", READY), Slot("green", "api-6-cd34", MAINT))
    text = haproxy.render(
        slots, 8000, {}, HealthCheck(path="/ready"), fallback="api-6-cd34", admin_from=GATEWAY
    )
    standby = "    server standby api-6-cd34:8000 resolvers docker init-addr last,libc,none check\n"
    assert standby in text
    assert "    option httpchk GET /ready\n" in text
    gate = f"    http-request set-map({haproxy.ARMED_MAP}) fell 1 if app_down standby_up in_window"
    assert gate in text
    assert "    use_backend fallback if standby_up fell\n" in text


@pytest.mark.docker
def test_haproxy_accepts_the_configuration(tmp_path: Path, docker_engine: None) -> None:
    cfg = tmp_path / "haproxy.cfg"
    slots = (Slot("blue", "localhost", READY), Slot("green", "localhost", MAINT))
    cfg.write_text(
        haproxy.render(slots, 8000, {"blue": 1}, fallback="localhost", admin_from=GATEWAY)
    )
    (tmp_path / "armed.map").write_text("armed 0\nfell 0\n")
    checked = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{tmp_path}:/cfg:ro",
         "-v", f"{tmp_path}/armed.map:{haproxy.ARMED_MAP}:ro", "snap-base/haproxy:2.6",
         "-c", "-f", "/cfg/haproxy.cfg"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_publish_port_defaults_to_port_and_the_proxy_image_comes_from_the_environment(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.snap]\nport = 8001\nstandby_ttl = 0\n")
    s = load_settings(tmp_path, environ={"SNAP_PROXY_IMAGE": "snap-base/haproxy:2.6"})
    assert (s.port, s.host_port, s.standby_ttl) == (8001, 8001, 0.0)
    assert s.proxy_image == "snap-base/haproxy:2.6"
    assert Settings(repo=tmp_path, port=8001, publish_port=80).host_port == 80
    assert Settings(repo=tmp_path).proxy_image == "haproxy:2.6"
    assert Settings(repo=tmp_path).standby_ttl == 1800


def test_a_bad_publish_port_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.snap]\npublish_port = 0\n")
    with pytest.raises(ConfigError, match="publish_port must be a port number"):
        load_settings(tmp_path, environ={})


def test_a_failed_check_quotes_where_the_log_says_the_app_listens() -> None:
    failed = Health(False, 2.0, "not healthy within 2 s (GET /health answered HTTP 503)")
    log = ["[INFO] Starting gunicorn 21.2.0", "[INFO] Listening at: http://0.0.0.0:8001 (1)"]
    hinted = with_listening_hint(failed, 8000, log)
    assert hinted.reason == (
        "nothing answered on port 8000, the port it was probed on; its log says "
        '"Listening at: http://0.0.0.0:8001" (not healthy within 2 s (GET /health answered '
        "HTTP 503))"
    )
    # The right port, or no such line: the reason stays as it was.
    same = ["[INFO] Listening at: http://0.0.0.0:8000 (1)"]
    assert with_listening_hint(failed, 8000, same) == failed
    assert with_listening_hint(failed, 8000, []) == failed


def test_the_probe_backend_does_not_retry_a_candidate_that_is_not_listening_yet() -> None:
    # HAProxy waits up to a second before a retry; snap probes again 50 ms later instead.
    text = haproxy.render((Slot("blue", None, READY),), 8000, {}, admin_from=GATEWAY)
    assert f"backend {haproxy.PROBE_BACKEND}\n    retries 0\n" in text


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        ({"armed": 0, "fell": 0}, None),  # a proxy of an earlier snap: its file says
        ({"armed": 0, "deployment-blue": 0, "deployment-green": 0}, {}),
        ({"deployment-blue": 7, "deployment-green": 0}, {"blue": 7}),
        ({"deployment-green": 12}, {"green": 12}),
        ({"deployment-blue": 3, "deployment-green": 4, "fell": 1}, {"blue": 3, "green": 4}),
    ],
)
def test_the_map_records_which_deployment_each_slot_serves_for(
    marks: dict[str, int], expected: dict[str, int] | None
) -> None:
    assert haproxy.recorded(marks) == expected


def test_a_switch_records_its_deployment_in_the_same_line() -> None:
    assert haproxy.record_commands("green", 9, present=True) == [
        f"set map {haproxy.ARMED_MAP} deployment-green 9"
    ]
    # A map written by an earlier snap has no such key yet: added, not set.
    assert haproxy.record_commands("blue", 3, present=False) == [
        f"add map {haproxy.ARMED_MAP} deployment-blue 3"
    ]

"""Every call snap makes into the Docker SDK ends in snap's own error, or, for a clean-up,
in a log line: an engine that hangs or drops the connection mid-command must never show
the user a requests or SDK traceback, nor hide the error that came first.

The engines here are real HTTP servers on 127.0.0.1 (``faultmaker``) that answer the
client's first calls and then hang, or close every connection unanswered.
"""

from __future__ import annotations

import pytest
from faultmaker import engine_that_stops_answering

from snapshot.adapters.docker import DockerEngine
from snapshot.errors import DockerError

pytestmark = pytest.mark.faults


def test_calls_into_a_hung_engine_name_the_call_and_the_configured_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with engine_that_stops_answering() as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        with DockerEngine(timeout=1) as engine:
            # The builder's and the probe's containers are made by the SDK's high-level
            # client: their timeouts were once raw requests errors, or named 60 s.
            with pytest.raises(DockerError) as raised:
                engine.run_builder(
                    "snap-base/python:3.11-build", [], ["true"], {}, output_dir="/out", timeout=5
                )
            assert str(raised.value) == (
                f"the Docker engine at DOCKER_HOST={host} did not answer `create container` "
                "within 1 s. Check that dockerd is healthy (`docker info`), then retry."
            )
            with pytest.raises(DockerError, match="did not answer `create container` within 1 s"):
                engine.run_python("snap-base/python:3.11", "print(1)")
            with pytest.raises(DockerError, match="did not answer `inspect image` within 1 s"):
                engine.commit_run(
                    "snap-base/python:3.11", [], "true", name="snaptest-x", what="x", changes=[]
                )
            # Clean-ups give up quietly: they run after another error, or after success.
            engine.remove_container("f" * 64)
            engine.terminate("f" * 64)
            engine.remove_network("snap-nothing")


def test_calls_into_an_engine_that_drops_the_connection_are_snap_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with engine_that_stops_answering(drop=True) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        with DockerEngine(timeout=2) as engine:
            unreachable = f"the Docker engine at DOCKER_HOST={host} is not reachable"
            for call in (
                lambda: engine.tag("sha256:" + "a" * 64, "snaptest-drop:v1"),
                lambda: engine.remove_image("snaptest-drop:v1"),
                lambda: engine.run_python("snap-base/python:3.11", "print(1)"),
                lambda: engine.run_builder(
                    "snap-base/python:3.11-build", [], ["true"], {}, output_dir="/out", timeout=5
                ),
                lambda: engine.run_command("snap-base/python:3.11", ["true"], user="0"),
                lambda: engine.commit_run(
                    "snap-base/python:3.11", [], "true", name="snaptest-x", what="x", changes=[]
                ),
            ):
                with pytest.raises(DockerError) as raised:
                    call()
                assert str(raised.value).startswith(unreachable), raised.value
            engine.remove_container("f" * 64)
            engine.terminate("f" * 64)
            engine.remove_network("snap-nothing")


def test_a_pull_and_the_best_effort_calls_of_a_dropping_engine_never_leak_requests_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with engine_that_stops_answering(drop=True) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        with DockerEngine(timeout=1) as engine:
            # The pull goes through the SDK's high-level client: a dropped connection
            # there was once a raw requests ConnectionError.
            with pytest.raises(DockerError) as raised:
                engine.pull("snaptest-nowhere:v1")
            assert str(raised.value) == (
                "snaptest-nowhere:v1 is not on this Docker host and could not be pulled "
                f"(the Docker engine at DOCKER_HOST={host} is not reachable (is dockerd "
                "running?)). Check the name, and that the engine reaches a registry that has it."
            )
            # A log tail only adds lines to another error and the prune of finished build
            # stages follows a success: neither may raise.
            assert engine.log_tail("f" * 64) == []
            engine.prune_dangling("snaptest.nothing=1")


@pytest.mark.parametrize("ping_version", [True, False])
def test_the_api_version_comes_from_the_ping_or_else_from_version(
    monkeypatch: pytest.MonkeyPatch, ping_version: bool
) -> None:
    asked: list[str] = []
    with engine_that_stops_answering(ping_version=ping_version, asked=asked) as host:
        monkeypatch.setenv("DOCKER_HOST", host)
        hung = pytest.raises(DockerError, match="did not answer `inspect image` within 1 s")
        with DockerEngine(timeout=1) as engine, hung:
            engine.image("snap-base/python:3.11")
    # One ping; /version only when the ping did not say; then calls of that version.
    assert asked == [
        "/_ping",
        *([] if ping_version else ["/version"]),
        "/v1.41/images/snap-base/python:3.11/json",
    ]

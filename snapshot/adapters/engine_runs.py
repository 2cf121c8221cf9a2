"""Throw-away containers that run one command (the base's probe, the smoke check, a
builder, the environment's install) and builds. A part of ``DockerEngine``
(adapters/docker.py), as a mixin."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import docker
import docker.errors
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout, Timeout

from snapshot.adapters.build_context import ContextFile, write_context_tar
from snapshot.adapters.engine_containers import Containers
from snapshot.adapters.engine_errors import BUILD_TIMEOUT, CLEAN_UP_FAILURES, EngineTimeout, explain
from snapshot.adapters.engine_records import BuilderRun, CommandRun
from snapshot.errors import BuildError, CommandNotFound, DockerError
from snapshot.labels import LABEL_BUILDER, LABEL_COMMAND, LABEL_PROBE
from snapshot.revision import short_id

log = logging.getLogger(__name__)

OutputSink = Callable[[str], None]


def _remove_quietly(container: Any) -> None:
    """Remove a throw-away container of the SDK's high-level client, best effort."""
    try:
        container.remove(force=True)
    except CLEAN_UP_FAILURES as e:
        log.debug("could not remove container %s: %s", short_id(container.id), e)


# How the script of ``commit_run`` tells snap it ended: its own lines, filtered from the
# output shown.
_DONE = "snap-commit-run: done"
_EXIT = "snap-commit-run: exit "


def _commit_failure(e: Exception) -> DockerError | BuildError:
    text = str(getattr(e, "explanation", "") or e)
    if "no space left on device" in text:
        return BuildError(
            "the Docker host ran out of disk space during the build",
            "Free space (e.g. `snap prune` or `docker system prune`) and retry",
        )
    return explain(e)


def committed_script(script: str, sleep: int) -> str:
    """SCRIPT, then a line saying how it ended; on success the shell sleeps (at most
    SLEEP seconds, should snap be killed before it stops the container) until committed."""
    return (
        f'( {script} ); rc=$?; if [ $rc -ne 0 ]; then echo "{_EXIT}$rc"; exit $rc; fi; '
        f'echo "{_DONE}"; exec sleep {sleep}'
    )


@dataclass(frozen=True)
class _Ended:
    exit_code: int | None  # 0: done; None: the output ended with no word of how
    tail: list[str]


def _follow_until_done(stream: Any, on_output: OutputSink | None) -> _Ended:
    """Read a ``committed_script`` container's output until it says how it ended."""
    tail: list[str] = []
    pending = ""
    try:
        for chunk in stream:
            pending += chunk.decode(errors="replace")
            *lines, pending = pending.split("\n")
            shown = []
            for line in lines:
                if line == _DONE:
                    return _Ended(0, tail)
                if line.startswith(_EXIT) and line[len(_EXIT) :].isdigit():
                    return _Ended(int(line[len(_EXIT) :]), tail)
                shown.append(line)
                if line.strip():
                    tail = [*tail, line][-20:]
            if on_output and shown:
                on_output("".join(f"{x}\n" for x in shown))
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
    if pending.strip():
        tail = [*tail, pending][-20:]
        if on_output:
            on_output(pending)
    return _Ended(None, tail)


class Runs(Containers):
    """What ``DockerEngine`` runs once and throws away, and what it builds."""

    def _throwaway(self, image: str, *, what: str, advice: str, **options: Any) -> Any:
        """A container of IMAGE run as root with no network and no command of its own (the
        SDK's high-level object), created but not started. WHAT names it in the error,
        with ADVICE."""
        try:
            return self._client.containers.create(
                image, command=[], user="0", network_mode="none", **options
            )
        except (Timeout, RequestsConnectionError) as e:
            raise explain(e, "create container", self._client.api.timeout) from e
        except docker.errors.APIError as e:
            raise BuildError(f"cannot create {what}: {e.explanation}", advice) from e

    @contextlib.contextmanager
    def _running(self, container: Any, what: str, timeout: float) -> Iterator[None]:
        """The run of a ``_throwaway`` CONTAINER (WHAT, in errors): the engine's failures
        as one-line errors, and the container removed however it ends."""
        try:
            yield
        except (ReadTimeout, RequestsConnectionError) as e:
            raise BuildError(
                f"{what} did not finish in {timeout:.0f} s",
                "Check that the Docker host is not overloaded, then retry",
            ) from e
        except docker.errors.APIError as e:
            raise BuildError(
                f"running {what} failed: {e.explanation}",
                "Check `docker info` and the engine's log, then retry",
            ) from e
        finally:
            _remove_quietly(container)

    def run_python(self, image: str, script: str, timeout: float = 120) -> str:
        """Run SCRIPT with the image's python3, no network, and return its stdout."""
        container = self._throwaway(
            image,
            entrypoint=["python3", "-c", script],
            labels={LABEL_PROBE: "1"},
            what=f"a container of {image}",
            advice=f"Check that {image} exists and runs (`docker run --rm {image} python3 -V`)",
        )
        with self._running(container, f"python3 in {image}", timeout):
            container.start()
            result = container.wait(timeout=timeout)
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            if result.get("StatusCode") != 0:
                err = container.logs(stdout=False, stderr=True).decode(errors="replace")
                last = err.strip().splitlines()[-1] if err.strip() else "no output"
                raise BuildError(
                    f"python3 in {image} failed (exit {result.get('StatusCode')}): {last}",
                    "Check that the image has a working python3",
                )
            return out

    def run_command(
        self,
        image: str,
        argv: Sequence[str],
        *,
        user: str,
        network: bool = False,
        mounts: Mapping[str, str] | None = None,
        timeout: float = 3600,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandRun:
        """Run ARGV in a throw-away container of IMAGE and wait for it; the container is
        removed whatever happens. MOUNTS maps host directories to container paths."""
        volumes = {host: {"bind": path, "mode": "rw"} for host, path in (mounts or {}).items()}
        try:
            container = self._client.containers.create(
                image,
                command=list(argv),
                user=user,
                network_mode="bridge" if network else "none",
                volumes=volumes or None,
                labels={LABEL_COMMAND: "1"},
            )
        except docker.errors.ImageNotFound as e:
            raise DockerError(f"image {image} is not on this Docker host", "Build it first") from e
        except (docker.errors.APIError, RequestsConnectionError, Timeout) as e:
            raise explain(e, "create container", self._client.api.timeout) from e
        tail: list[str] = []
        try:
            try:
                container.start()
            except docker.errors.APIError as e:
                text = str(e.explanation or e)
                if "executable file not found" in text or "no such file or directory" in text:
                    raise CommandNotFound(
                        f"{argv[0]} is not found in {image}",
                        "Name a program the image has (e.g. python3) or give its full path",
                    ) from e
                raise explain(e) from e
            pending = b""
            # A followed log has no read timeout (the SDK lifts it), so a command that never
            # ends would hold it open for ever: a timer kills the container at the deadline.
            killed: list[bool] = []

            def kill() -> None:
                killed.append(True)
                with contextlib.suppress(docker.errors.APIError, RequestsConnectionError):
                    container.kill()

            timer = threading.Timer(timeout, kill)
            timer.daemon = True
            timer.start()
            try:
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                    if on_output:
                        on_output(chunk)
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    tail = [*tail, *(x.decode(errors="replace") for x in lines if x.strip())][-20:]
            finally:
                timer.cancel()
            if killed:
                raise ReadTimeout(f"killed after {timeout:.0f} s")
            if pending.strip():
                tail = [*tail, pending.decode(errors="replace")][-20:]
            result = container.wait(timeout=timeout)
            return CommandRun(int(result.get("StatusCode", 1)), tuple(tail))
        except (ReadTimeout, RequestsConnectionError) as e:
            raise DockerError(
                f"{argv[0]} in {image} did not finish in {timeout:.0f} s",
                "Check what it waits for; the container was removed",
            ) from e
        finally:
            _remove_quietly(container)

    def exec_python(self, container_id: str, script: str) -> str:
        """Run SCRIPT with python3 inside the running container; return its stdout."""
        try:
            created = self._api.exec_create(container_id, ["python3", "-c", script], user="0")
            out = self._api.exec_start(created["Id"], demux=True)
            code = self._api.exec_inspect(created["Id"]).get("ExitCode")
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        stdout, stderr = out if isinstance(out, tuple) else (out, b"")
        if code != 0:
            last = (stderr or b"").decode(errors="replace").strip().splitlines()
            raise DockerError(
                f"python3 in container {short_id(container_id)} failed (exit {code}): "
                + (last[-1] if last else "no output"),
                "Check that the container is running and has python3",
            )
        return (stdout or b"").decode(errors="replace")

    def run_builder(
        self,
        image: str,
        inputs: list[ContextFile],
        argv: list[str],
        env: Mapping[str, str],
        *,
        output_dir: str,
        timeout: float,
        on_create: Callable[[str], None] | None = None,
    ) -> BuilderRun:
        """Run ARGV in IMAGE with no network, INPUTS copied in first; return its exit code,
        its log and, when it succeeded, the files it left in OUTPUT_DIR (their paths under
        it -> bytes). ON_CREATE is told the container's id as soon as it exists (another
        thread may remove it to stop the run)."""
        container = self._throwaway(
            image,
            entrypoint=argv,
            environment=dict(env),
            labels={LABEL_BUILDER: "1"},
            what=f"a builder container of {image}",
            advice="Check `docker info` and the engine's log, then retry",
        )
        with self._running(container, f"the builder {image}", timeout):
            if on_create:
                on_create(str(container.id))
            with tempfile.TemporaryFile() as tar:
                write_context_tar(inputs, tar)
                container.put_archive("/", tar)
            container.start()
            result = container.wait(timeout=timeout)
            raw = container.logs(stdout=True, stderr=True).decode(errors="replace")
            code = int(result.get("StatusCode", 1))
            outputs: dict[str, bytes] = {}
            if code == 0:
                stream, _stat = container.get_archive(output_dir)
                with tempfile.TemporaryFile() as out:
                    for chunk in stream:
                        out.write(chunk)
                    out.seek(0)
                    with tarfile.open(fileobj=out) as t:
                        for m in t.getmembers():
                            f = t.extractfile(m) if m.isfile() else None
                            if f is not None:
                                # The path under OUTPUT_DIR (the archive names it too).
                                outputs[m.name.split("/", 1)[-1]] = f.read()
            return BuilderRun(code, raw.splitlines(), outputs)

    def commit_run(
        self,
        image: str,
        inputs: list[ContextFile],
        script: str,
        *,
        name: str,
        what: str,
        changes: Sequence[str],
        timeout: float = BUILD_TIMEOUT,
        on_output: OutputSink | None = None,
    ) -> str:
        """IMAGE with SCRIPT (``/bin/sh -c``) run in it, INPUTS copied in first, no network,
        committed as one layer with CHANGES (Dockerfile lines: LABEL ...) on top of IMAGE's
        own configuration; the new image's id, untagged. The container (NAME) is removed
        whatever happens. What SCRIPT deletes of INPUTS leaves no trace in the layer. WHAT
        names the run in a failure ("installing the lock on snap-base/python:3.11").

        One run and one commit instead of a build: no build context, no layer of the
        inputs, no second stage to copy the result out of.

        Removing the container deletes its copy of everything SCRIPT wrote: for a big
        lock (45k files) that took as long as the commit itself (3.3 s against 4.2 s),
        waited for by every build. So the container outlives SCRIPT: once it succeeds it
        says so and sleeps, is committed while it sleeps (paused, as ``docker commit``
        does) and then killed, and the engine removes it in its own time
        (``AutoRemove``). On any failure it is removed before this returns, as before."""
        config = self._image_config(image)
        entrypoint = config.get("Entrypoint")
        wrapped = committed_script(script, math.ceil(timeout))
        try:
            created = self._api.create_container(
                image,
                command=["/bin/sh", "-c", wrapped] if not entrypoint else [wrapped],
                entrypoint=["/bin/sh", "-c"] if entrypoint else None,
                name=name,
                host_config=self._api.create_host_config(network_mode="none", auto_remove=True),
                network_disabled=True,
            )
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        cid = str(created["Id"])
        committed_id = None
        try:
            with tempfile.TemporaryFile() as tar:
                write_context_tar(inputs, tar)
                with self._patient(BUILD_TIMEOUT):
                    self._api.put_archive(cid, "/", tar)
            with self._patient(timeout):
                # Attached before it starts: a script that fails at once is removed by
                # the engine as it exits, and its output with it.
                output = self._api.attach(cid, stream=True, logs=True)
                self._api.start(cid)
                ended = _follow_until_done(output, on_output)
            if ended.exit_code != 0:
                how = f"exit {ended.exit_code}" if ended.exit_code else "it stopped unfinished"
                raise BuildError(
                    f"{what} failed ({how}): " + " | ".join(ended.tail[-3:] or ["no output"]),
                    "See the output above with --progress",
                )
            with self._patient(BUILD_TIMEOUT):
                committed_id = self._commit(cid, config, changes, pause=True)
            return committed_id
        except ReadTimeout as e:
            raise EngineTimeout("install", timeout) from e
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise _commit_failure(e) from e
        finally:
            if committed_id is None:
                self.remove_container(cid)  # never raises: the error above, if any, stays
            else:
                self.terminate(cid, signal="SIGKILL")  # the engine removes it (AutoRemove)

    def commit_files(
        self, image: str, files: BinaryIO, *, name: str, changes: Sequence[str]
    ) -> str:
        """IMAGE with the tar FILES unpacked at / as one more layer, committed with CHANGES
        (Dockerfile lines) over IMAGE's configuration; the new image's id, untagged.

        What ``COPY`` and config lines give in a build, without one: a container (NAME)
        is created and never started, the files are copied into it, it is committed and
        removed. The classic builder spends a container create and commit per step (two
        at least for the app files and their labels), and a build context upload first:
        for the demo's code-only build, 0.21 s against 0.11-0.13 s this way."""
        config = self._image_config(image)
        command = None if config.get("Cmd") or config.get("Entrypoint") else ["true"]
        try:
            created = self._api.create_container(
                image,
                command=command,
                name=name,
                host_config=self._api.create_host_config(network_mode="none"),
                network_disabled=True,
            )
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e
        cid = str(created["Id"])
        try:
            with self._patient(BUILD_TIMEOUT):
                self._api.put_archive(cid, "/", files)
                return self._commit(cid, config, changes, pause=False)
        except ReadTimeout as e:
            raise EngineTimeout("commit", BUILD_TIMEOUT) from e
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise _commit_failure(e) from e
        finally:
            self.remove_container(cid)  # never raises: the error above, if any, stays

    def _image_config(self, image: str) -> dict[str, Any]:
        try:
            return dict(self._api.inspect_image(image).get("Config") or {})
        except docker.errors.ImageNotFound as e:
            raise DockerError(f"image {image} is not on this Docker host", "Build it first") from e
        except (docker.errors.APIError, RequestsConnectionError) as e:
            raise explain(e) from e

    def _commit(
        self, cid: str, config: dict[str, Any], changes: Sequence[str], *, pause: bool
    ) -> str:
        """Container CID as an image whose configuration is CONFIG (its image's own, not
        the container's: no hostname of a throw-away container, no command of snap's),
        then CHANGES."""
        # The engine fills what CONFIG leaves empty from the container: its command is
        # put back to the image's explicitly.
        restore = [f"CMD {json.dumps(config.get('Cmd') or [])}"]
        if config.get("Entrypoint"):
            restore.append(f"ENTRYPOINT {json.dumps(config['Entrypoint'])}")
        conf = {**config, "Hostname": "", "Domainname": ""}
        committed = self._api.commit(cid, changes=[*restore, *changes], conf=conf, pause=pause)
        return str(committed["Id"])

    def build(
        self,
        context: BinaryIO,
        *,
        dockerfile: str,
        network: bool,
        labels: Mapping[str, str] | None = None,
        nocache: bool = False,
        on_output: OutputSink | None = None,
    ) -> str:
        """Build from an in-memory tar context; return the image id. Nothing is tagged."""
        image_id = None
        last_lines: list[str] = []
        try:
            stream = self._api.build(
                fileobj=context,
                custom_context=True,
                dockerfile=dockerfile,
                labels=dict(labels or {}),
                network_mode=None if network else "none",
                rm=True,
                forcerm=True,
                nocache=nocache,
                decode=True,
                timeout=BUILD_TIMEOUT,
            )
            for chunk in stream:
                if "stream" in chunk:
                    text = chunk["stream"]
                    for line in text.splitlines():
                        if line.strip():
                            last_lines = [*last_lines[-19:], line]
                    if on_output:
                        on_output(text)
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    message = str(chunk["error"]).strip()
                    if "no space left on device" in message:
                        raise BuildError(
                            "the Docker host ran out of disk space during the build",
                            "Free space (e.g. `snap prune` or `docker system prune`) and retry",
                        )
                    tail = " | ".join(last_lines[-3:])
                    raise BuildError(
                        f"docker build failed: {message} [{tail}]",
                        "See the output above with --progress",
                    )
        except docker.errors.APIError as e:
            raise BuildError(
                f"docker build failed: {e.explanation}", "See the output above with --progress"
            ) from e
        except (RequestsConnectionError, ReadTimeout) as e:
            if isinstance(e, ReadTimeout):
                raise EngineTimeout("build", BUILD_TIMEOUT) from e
            raise explain(e) from e
        if not image_id:
            raise BuildError("docker build finished without an image id", "Retry with --progress")
        return str(image_id)

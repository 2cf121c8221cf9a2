"""Installs of earlier versions of snap: a port holder and a container in its namespace.

The holder published the port and the serving container shared its network namespace.
The first deploy of this version moves the port to the proxy. Everything the proxy needs
is made before the holder lets go: the app network, the new release (checked on a
loopback port of its own), and the proxy container itself, created with its file already
naming the new release as the serving slot. Then the holder is removed and the proxy
started at once: the old container serves until the holder goes, and only the bind of
the port moves, so the gap is the proxy's start.
"""

from __future__ import annotations

from snapshot.adapters import haproxy
from snapshot.adapters.docker import ContainerInfo, DockerEngine
from snapshot.adapters.haproxy import READY, RuntimeAPI, Slot
from snapshot.errors import DockerError
from snapshot.labels import LABEL_APP, LABEL_BINDING, LABEL_ROLE, ROLE_PORT, ROLE_SERVING
from snapshot.progress import Progress
from snapshot.proxy import START_SECONDS, AppProxy

MIGRATED_SLOT = haproxy.SLOTS[0]


def holder(engine: DockerEngine, proxy: AppProxy) -> ContainerInfo | None:
    """The running port holder of this app's binding, if an earlier snap left one."""
    for c in engine.containers({LABEL_APP: proxy.app, LABEL_ROLE: ROLE_PORT}):
        if c.running and c.labels.get(LABEL_BINDING) == proxy.binding:
            return c
    return None


def serving_in_holder(engine: DockerEngine, proxy: AppProxy) -> list[ContainerInfo]:
    """The app containers in a holder's namespace (running or not)."""
    found = engine.containers({LABEL_APP: proxy.app, LABEL_ROLE: ROLE_SERVING})
    return [c for c in found if c.network_of]


def migrate(engine: DockerEngine, proxy: AppProxy, new: str, progress: Progress) -> RuntimeAPI:
    """Hand the port from the holder to a proxy that serves NEW from its first request."""
    progress.step("moving the port from the port holder to the proxy")
    for c in proxy.all():  # one a killed migration created and never started
        if not c.running and c.labels.get(LABEL_BINDING) == proxy.binding:
            engine.remove_container(c.id)
    cid = proxy.prepare((Slot(MIGRATED_SLOT, new, READY),))
    old = serving_in_holder(engine, proxy)
    found = holder(engine, proxy)
    if found is not None:
        engine.remove_container(found.id)  # the port is free from here ...
    proxy.start_prepared(cid)  # ... until here
    api = proxy.api()
    if api is None or not api.wait_answering(START_SECONDS):
        raise DockerError(
            f"the proxy {proxy.app}-proxy did not answer within {START_SECONDS:g} s",
            f"See `docker logs {proxy.app}-proxy`",
        )
    for c in [*old, *engine.containers({LABEL_APP: proxy.app, LABEL_ROLE: ROLE_PORT})]:
        engine.remove_container(c.id)
    return api

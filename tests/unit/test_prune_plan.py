"""What prune removes and keeps, decided from tables of inputs (no Docker: plan_prune is pure)."""

from __future__ import annotations

import pytest

from snapshot.adapters.docker import ContainerInfo, ImageInfo
from snapshot.labels import (
    KIND_APP,
    KIND_ENV,
    LABEL_ENV_IMAGE_ID,
    LABEL_KIND,
    LABEL_REVISION,
    LABEL_ROLE,
)
from snapshot.prune import PruneInputs, plan_prune

APP = "model-api"


def sha(n: int) -> str:
    return f"{n:x}" * 40


def tag(n: int) -> str:
    return f"{APP}:{sha(n)[:12]}"


def app_image(n: int, env: str = "sha256:env1") -> ImageInfo:
    """App image of revision sha(n), built at time n (newer revisions have higher n)."""
    labels = {LABEL_KIND: KIND_APP, LABEL_REVISION: sha(n), LABEL_ENV_IMAGE_ID: env}
    return ImageInfo(f"sha256:app{n}", (tag(n),), labels, created=n)


def env_image(name: str) -> ImageInfo:
    return ImageInfo(f"sha256:{name}", (f"{APP}-env:{name}",), {LABEL_KIND: KIND_ENV})


def container(
    name: str, revision: int, running: bool, state: str = "", role: str = "serving"
) -> ContainerInfo:
    state = state or ("running" if running else "exited")
    labels = (
        {LABEL_ROLE: role} if role == "proxy" else {LABEL_REVISION: sha(revision), LABEL_ROLE: role}
    )
    return ContainerInfo(name, name, "img", "sha256:x", labels, state, 0, None, None)


def inputs(**given: object) -> PruneInputs:
    base: dict[str, object] = {
        "app_name": APP,
        "serving": None,
        "succeeded": (),
        "pending": (),
        "containers": (),
        "app_images": (),
        "env_images": (),
        "keep": 0,
    }
    base.update(given)
    return PruneInputs(**base)  # type: ignore[arg-type]


def kept(plan: object) -> dict[str, str]:
    return {k.image: k.why for k in plan.kept}  # type: ignore[attr-defined]


def removed(plan: object) -> list[str]:
    return [i.id for i in plan.images]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("given", "keeps", "removes"),
    [
        pytest.param(
            {"app_images": (app_image(1), app_image(2))},
            {},
            ["sha256:app2", "sha256:app1"],
            id="nothing protected, keep 0: every app image goes, newest first",
        ),
        pytest.param(
            {"app_images": (app_image(1), app_image(2), app_image(3)), "keep": 2},
            {
                tag(3): "among the 2 newest",
                tag(2): "among the 2 newest",
            },
            ["sha256:app1"],
            id="keep N keeps the N newest",
        ),
        pytest.param(
            {"app_images": (app_image(1), app_image(2)), "serving": sha(1)},
            {tag(1): "serving"},
            ["sha256:app2"],
            id="the serving image stays even when older",
        ),
        pytest.param(
            {
                "app_images": (app_image(1), app_image(2), app_image(3)),
                "serving": sha(3),
                "succeeded": (sha(3), sha(1)),
            },
            {
                tag(3): "serving",
                tag(1): "previous successful deployment",
            },
            ["sha256:app2"],
            id="the previous successful deployment stays for rollback",
        ),
        pytest.param(
            {"app_images": (app_image(1), app_image(2)), "succeeded": (sha(2),)},
            {tag(2): "history: current"},
            ["sha256:app1"],
            id="history's current stays when Docker shows nothing serving",
        ),
        pytest.param(
            {"app_images": (app_image(1),), "pending": ((7, sha(1)),)},
            {tag(1): "deployment 7 is pending"},
            [],
            id="a pending deployment's image stays",
        ),
        pytest.param(
            {"app_images": (app_image(1),), "containers": (container("c1", 1, running=True),)},
            {tag(1): "container c1 runs it"},
            [],
            id="an image a running container uses stays",
        ),
    ],
)
def test_which_app_images_go(given: dict[str, object], keeps: dict[str, str], removes: list[str]):
    plan = plan_prune(inputs(**given))

    assert kept(plan) == keeps
    assert removed(plan) == removes


def test_an_environment_image_stays_while_a_kept_app_image_is_built_on_it():
    plan = plan_prune(
        inputs(
            app_images=(app_image(1, env="sha256:envA"), app_image(2, env="sha256:envB")),
            env_images=(env_image("envA"), env_image("envB")),
            serving=sha(2),
        )
    )

    assert kept(plan)[f"{APP}-env:envB"] == "a kept app image is built on it"
    assert removed(plan) == ["sha256:app1", "sha256:envA"]


def test_stopped_containers_go_running_ones_stay():
    plan = plan_prune(
        inputs(containers=(container("up", 1, running=True), container("down", 2, running=False)))
    )

    assert [c.name for c in plan.containers] == ["down"]


@pytest.mark.parametrize(
    ("state", "role", "removed_by_prune"),
    [
        ("exited", "serving", True),
        ("dead", "serving", True),
        ("created", "candidate", True),  # left by a killed run before its start
        ("restarting", "serving", False),  # Docker brings it back: it may be what serves
        ("paused", "serving", False),  # its process is still there
        ("running", "serving", False),
        ("exited", "proxy", False),  # the proxy owns the port: never pruned
        ("running", "proxy", False),
    ],
)
def test_which_containers_go(state: str, role: str, removed_by_prune: bool):
    plan = plan_prune(
        inputs(
            containers=(container("c", 1, running=False, state=state, role=role),),
            app_images=(app_image(1),),
        )
    )

    assert [c.name for c in plan.containers] == (["c"] if removed_by_prune else [])
    # An app container that is not done keeps its image: it may start again from it.
    if role != "proxy":
        assert (removed(plan) == ["sha256:app1"]) == removed_by_prune


def test_images_that_are_not_app_images_are_not_judged_as_app_images():
    stray = ImageInfo("sha256:stray", (f"{APP}:latest",), {})

    plan = plan_prune(inputs(app_images=(stray,)))

    assert removed(plan) == [] and kept(plan) == {}

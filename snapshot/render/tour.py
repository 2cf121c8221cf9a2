"""Renderer of the quick demo tour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from snapshot.render.environments import diff_doc, diff_text, snapshots_doc, snapshots_table

if TYPE_CHECKING:  # type-only: importing build would load the Docker SDK for `snap list`
    from snapshot.tour import DemoTour


# -- demo ------------------------------------------------------------------------------


def tour_doc(tour: DemoTour) -> dict[str, Any]:
    return {
        "path": str(tour.repository.path),
        "created": tour.repository.created,
        "revisions": dict(tour.repository.revisions),
        "list": snapshots_doc(tour.snapshots),
        "diff": diff_doc(tour.diff),
        "next": list(tour.next_commands),
    }


def tour_text(tour: DemoTour) -> str:
    repo = tour.repository
    verb = "Created" if repo.created else "Re-using"
    return "\n".join(
        [
            f"{verb} the demo repository at {repo.path}",
            "",
            f"$ snap --repo {repo.path} list",
            snapshots_table(tour.snapshots),
            "",
            f"$ snap --repo {repo.path} diff v1 v3",
            diff_text(tour.diff, dev=False),
            "",
            "Next, try:",
            *(f"  {c}" for c in tour.next_commands),
        ]
    )

"""Renderers: turn service results into JSON documents or tables. Formatting only.

Every JSON document carries ``schema_version``; its shape is pinned by
tests/unit/test_json_contract.py. Change a shape only together with that test and
with a new schema_version.
"""

from __future__ import annotations

from snapshot.render.base import (
    render_json,
    render_table,
)
from snapshot.render.deploys import (
    build_doc,
    build_text,
    deploy_doc,
    deploy_text,
    deployment_doc,
    history_doc,
    history_table,
    prune_doc,
    prune_text,
    push_doc,
    push_text,
    running_doc,
    status_doc,
    status_text,
)
from snapshot.render.environments import (
    app_files_doc,
    app_files_text,
    config_doc,
    config_text,
    diff_doc,
    diff_text,
    environment_doc,
    environment_text,
    fit_columns,
    image_record_text,
    shared_env_text,
    snapshots_doc,
    snapshots_table,
    utc_minute,
    verify_doc,
    verify_text,
)
from snapshot.render.tour import (
    tour_doc,
    tour_text,
)

__all__ = [
    "render_json",
    "render_table",
    "snapshots_doc",
    "snapshots_table",
    "utc_minute",
    "fit_columns",
    "environment_doc",
    "environment_text",
    "image_record_text",
    "diff_doc",
    "diff_text",
    "verify_doc",
    "verify_text",
    "config_doc",
    "config_text",
    "shared_env_text",
    "app_files_doc",
    "app_files_text",
    "build_doc",
    "build_text",
    "deployment_doc",
    "running_doc",
    "deploy_doc",
    "deploy_text",
    "status_doc",
    "status_text",
    "history_doc",
    "history_table",
    "push_doc",
    "push_text",
    "prune_doc",
    "prune_text",
    "tour_doc",
    "tour_text",
]

"""Every label key snap writes on images, containers and services, and the values it reads back.

Labels are how snap knows, from Docker alone, what an image or a container is: which
revision and lock it was built from, which app and deployment a container belongs to.
They are written by the build and the targets and read by status, prune and the cache
checks, so each key is defined here once and nowhere else.
"""

from __future__ import annotations

# -- on images (the OCI keys are the standard ones) ------------------------------------
LABEL_REVISION = "org.opencontainers.image.revision"  # full commit sha
LABEL_CREATED = "org.opencontainers.image.created"  # the commit date: same inputs, same id
LABEL_SOURCE = "org.opencontainers.image.source"  # the repository's origin URL, when known
LABEL_LOCK_ID = "snap.lock_id"
LABEL_KIND = "snap.kind"  # KIND_ENV | KIND_APP
LABEL_PYTHON = "snap.python"
LABEL_PIPFILE_HASH = "snap.pipfile_hash"
LABEL_VERSION = "snap.version"  # the snap that built it
LABEL_BASE_IMAGE = "snap.base_image"
LABEL_BASE_ID = "snap.base_image_id"
LABEL_ENV_IMAGE_ID = "snap.env_image_id"  # on an app image: the environment image it is FROM
LABEL_RUN = "snap.run"  # JSON of the CMD and port baked into an app image
# On an app image: the digest of its exact inputs (files, environment, config), so the
# same inputs made again find it (smoke.context_digest).
LABEL_APP_INPUTS = "snap.app_inputs"
LABEL_PROBE = "snap.probe"  # on the short-lived container that probes a base image
# On an image that is no revision's own: a mixed one (one revision's code on another's
# environment, `snap cross`) or a synthetic environment (`snap bisect`: an old environment
# plus some of a lock change's packages). Its value says what it holds.
LABEL_MIXED = "snap.mixed"
LABEL_SYNTHETIC = "snap.synthetic"
LABEL_COMMAND = "snap.command"  # on a short-lived container that runs a user's command
LABEL_BUILDER = "snap.builder"  # on the short-lived container that builds an sdist
# On an environment image: JSON {package: {sdist_sha256, wheel_sha256, build_deps, ...}}
# for every package built from its sdist (absent when every package came as a wheel).
LABEL_SDIST_BUILDS = "snap.sdist_builds"

KIND_ENV = "env"
KIND_APP = "app"

# -- on what snap runs (containers, services) ------------------------------------------
# The image's revision and lock id are repeated there, so a container still says what it
# is if its image tag moves or the image is removed.
LABEL_APP = "snap.app"
LABEL_DEPLOYMENT = "snap.deployment"  # the history row id of the deploy that started it
LABEL_ROLE = "snap.role"  # ROLE_SERVING | ROLE_CANDIDATE | ROLE_PORT | ROLE_PROXY
LABEL_REVISION_NAME = "snap.revision_name"  # the user's word for it at deploy time, e.g. "v1"
LABEL_BINDING = "snap.binding"  # on a port holder: "ADDRESS:PORT" it publishes
LABEL_IMAGE = "snap.image"  # on a service: the readable tag; the spec may name the image by digest

ROLE_SERVING = "serving"
ROLE_CANDIDATE = "candidate"
ROLE_PORT = "port"  # the port holder of earlier snap versions (migrated by the next deploy)
ROLE_PROXY = "proxy"  # the local target's HAProxy container: owns the published port

"""Revisions of a real repository with packages that publish only sdists: snap and the seed.

For each revision given (``REV`` or ``REV@X.Y`` to pass ``--python X.Y`` for a lock that
names no python): a cold `snap build` (no images, the wheel cache starting empty for the
first revision and kept from one revision to the next, as on one host), then the images
removed and built again with the caches kept (it must build nothing from an sdist and ask
no index), then once more with the images present. Each snap run is split into phases
from its time-stamped ``--progress`` lines.

For one revision (``--seed-rev``), side by side and alternating, ``--runs`` times: the seed
recipe (``pip install pipenv && pipenv install --deploy --system``) on the builder image,
from a local pypiserver holding exactly the files it needs (every file snap fetched, and
pipenv with its dependencies), cold (``--no-cache``) and warm (its layer cache kept, one
app file changed: a new revision with the same lock); against snap cold (empty cache:
wheels from that same local index, sdists from the lock's source), snap warm (wheel cache
filled, no images: the environment image is made again) and snap with the environment
image present (a new revision with the same lock: the app image only). Before each timed
run of either side the engine's deferred removals are waited for, the disk is flushed and
the run waits six minutes (``flush``), untimed, so no run is charged for the one before it.

    SNAP_SMOKE="python3 -c 'import django'" .venv/bin/python -m bench.real_history \\
        --repo ../tock --revs 9e77b033,ac0326ae --seed-rev 9e77b033 --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import BenchError, index, seed
from bench.images import CLASSIC_BUILDER, PREFIX, docker, tags
from bench.report import snap_commit
from bench.snapbuild import compile_snap, settle_engine
from bench.timing import Marker, TimedRun, phases, run_timed

SNAP = str(Path(sys.executable).parent / "snap")
PLATFORMS = ("--platform", "manylinux_2_31_x86_64", "--platform", "manylinux2014_x86_64")
# pipenv for the seed, per python: 2025.0 is the last pipenv for python 3.9.
PIPENV = {"3.9": "pipenv<2025.1"}

FIRST_PHASE = "start-up, git read, gate, base probe"
SNAP_PHASES = (
    Marker.of("wheels: cache, downloads, sdist builds", r"^snap: (downloading|reusing the wheel)"),
    Marker.of("env: copy wheels in + pip install", r"^snap: building environment"),
    Marker.of("env: bytecode compile (parallel)", r"^Successfully installed "),
    Marker.of("env: commit of the layer", r"^compiled \d+ of \d+"),
    Marker.of("installed-set check", r"^snap: checking installed packages"),
    Marker.of("app image", r"^snap: adding the app files"),
    Marker.of("smoke check", r"^snap: smoke check"),
    Marker.of("tag + exit", r"^snap: tagged "),
)


def snap_env(cache: Path, image: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(
        os.environ,
        SNAP_CACHE_DIR=str(cache),
        SNAP_STATE_DIR=str(cache.parent / "state"),
        SNAP_IMAGE=image,
        SNAP_BASE_IMAGE="snap-base/python:{python}",
        # The builder may be chosen from outside (e.g. the -build-full one).
        SNAP_BUILDER_IMAGE=os.environ.get("SNAP_BUILDER_IMAGE", "snap-base/python:{python}-build"),
        **(extra or {}),
    )


def remove_images(image: str) -> None:
    found = tags(f"{image}*")
    if found:
        docker("rmi", "-f", *found, check=False)


# Where seed_pair keeps the images a timed run must not find (see set_aside).
SET_ASIDE = f"{PREFIX}set-aside"


def set_aside(prefix: str, name: str) -> None:
    """The images tagged PREFIX* (snap's app and environment images) out of snap's way
    without deleting them: each tagged ``snapbench-set-aside:<name>-<i>`` and its own tag
    removed, which deletes nothing.

    Deleting them before a timed run would charge that run for the deletion: on a
    filesystem without a journal, new files skip inodes freed in the last minutes
    (``flush``). The seed's side deletes nothing either (its images stay, untagged, until
    the end); everything set aside is deleted after the last run."""
    for i, tag in enumerate(tags(f"{prefix}*")):
        docker("tag", tag, f"{SET_ASIDE}:{name}-{i}")
        docker("rmi", tag)


def split(spec: str) -> tuple[str, str | None]:
    rev, _, python = spec.partition("@")
    return rev, python or None


def snap_build(repo: Path, spec: str, env: dict[str, str]) -> dict[str, object]:
    rev, python = split(spec)
    argv = [SNAP, "--repo", str(repo), "build", rev, "--progress"]
    argv += ["--python", python] if python else []
    try:
        run = run_timed(argv, env=env)
    except BenchError as e:
        return {"ok": False, "error": " | ".join(str(e).strip().splitlines()[-4:])}
    finally:
        settled = settle_engine()
    err = "".join(line.text for line in run.lines if line.stream == "stderr")
    return {
        "ok": True,
        "seconds": round(run.seconds, 2),
        "engine_cleanup_after": round(settled, 2),  # untimed: the engine removing the install
        "phases": {k: round(v, 2) for k, v in phases(run, SNAP_PHASES, FIRST_PHASE).items()},
        # The sdists are fetched and built while pip downloads the wheels: their own span.
        "sdist_span": _span(run, r"^snap: downloading the sdist ", r"^snap: the builder run for "),
        "builder_runs": len(re.findall(r"^snap: one builder run for ", err, re.MULTILINE)),
        "sdists_built": len(re.findall(r"from its sdist in ", err)),
        "sdists_reused": len(re.findall(r"reusing the wheel of .* built from its sdist", err)),
        "sdists_downloaded": len(re.findall(r"downloading the sdist ", err)),
        "env_reused": "reusing environment" in err,
        "already_built": "already built" in run.stdout(),
    }


def _span(run: TimedRun, start: str, end: str) -> float | None:
    """Seconds from the first line matching START to the last matching END (None: absent)."""
    starts = [line.at for line in run.lines if re.search(start, line.text)]
    ends = [line.at for line in run.lines if re.search(end, line.text)]
    return round(ends[-1] - starts[0], 2) if starts and ends else None


def record(repo: Path, rev: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [SNAP, "--repo", str(repo), "show", rev, "--image"], capture_output=True, text=True, env=env
    )
    return done.stdout


def lock_of(repo: Path, rev: str) -> dict[str, object]:
    raw = subprocess.run(
        ["git", "-C", str(repo), "show", f"{rev}:Pipfile.lock"], capture_output=True, check=True
    ).stdout
    lock: dict[str, object] = json.loads(raw)
    return lock


def history(repo: Path, specs: list[str], work: Path) -> list[dict[str, object]]:
    cache = work / "history-cache"
    rows = []
    for spec in specs:
        rev, python = split(spec)
        image = f"sdistreal-{rev[:8]}"
        env = snap_env(cache, image)
        remove_images(image)
        date = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%cs", rev],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        lock = lock_of(repo, rev)
        meta = lock["_meta"]
        assert isinstance(meta, dict)
        default = lock["default"]
        assert isinstance(default, dict)
        first = snap_build(repo, spec, env)
        shown = record(repo, rev, env) if first["ok"] else ""
        remove_images(image)
        second = snap_build(repo, spec, env)
        third = snap_build(repo, spec, env)
        remove_images(image)
        rows.append(
            {
                "revision": rev,
                "date": date,
                "python": meta.get("requires", {}),
                "python_flag": python,
                "packages": len(default),
                "first": first,
                "images_removed_caches_kept": second,
                "images_present": third,
                "show_image": shown,
            }
        )
        print(json.dumps(first), json.dumps(second), flush=True)
    return rows


def seed_pair(repo: Path, spec: str, work: Path, runs: int) -> dict[str, object]:
    """snap and the seed on the builder image, alternating: cold, warm, same lock."""
    rev, python_flag = split(spec)
    image = f"sdistseed-{rev[:8]}"
    seed_image = f"seedside-{rev[:8]}"  # not matched by remove_images(image)
    fill = work / "seed-fill-cache"
    fill_env = snap_env(fill, image)
    remove_images(image)
    warmup = snap_build(repo, spec, fill_env)  # untimed: fills the cache the index is made of
    if not warmup["ok"]:
        raise BenchError(f"snap build {spec} failed: {warmup['error']}")
    remove_images(image)
    version = python_flag or _lock_python(lock_of(repo, rev))
    abi = "cp" + version.replace(".", "")
    target = ("--python-version", version, "--implementation", "cp", "--abi", abi)

    folder = work / "seed-index"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for artifact in (fill / "artifacts").glob("*/*"):
        shutil.copy(artifact, folder / artifact.name)
    # pip evaluates dependency markers for the host's python, so what pipenv's dependencies
    # need only on older pythons is named.
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         *target, *PLATFORMS, "--dest", str(folder), PIPENV.get(version, "pipenv"),
         "typing-extensions>=4.13.2", "tomli", "importlib-metadata", "zipp", "exceptiongroup"],
        check=True,
    )  # fmt: skip
    exe = index.ensure_pypiserver(work / "pypiserver-venv")
    builder = f"snap-base/python:{version}-build"
    context = seed.export_context(repo, rev, work / "seed-context", builder)
    samples: dict[str, list[dict[str, object]]] = {
        k: [] for k in ("snap_cold", "snap_warm", "snap_same_lock", "seed_cold", "seed_warm")
    }
    with (
        index.serve(folder, exe, work / "pypiserver.log") as server,
        _images_removed_after(image, seed_image),
    ):
        build = seed.SeedBuild(server.url)
        cold_extra = {"PIP_INDEX_URL": server.url}  # snap's wheels from the seed's index too

        def timed(key: str, run: Callable[..., dict[str, object]], *args: object) -> None:
            flushed = flush()  # untimed, before the run
            samples[key].append(run(*args) | flushed)

        for n in range(runs):
            cache = work / f"snap-cold-{n}" / "cache"
            set_aside(image, f"{n}-before-cold")
            timed("snap_cold", snap_build, repo, spec, snap_env(cache, image, cold_extra))
            timed("seed_cold", _seed, build, context, f"{seed_image}:cold", True)
            # The wheel cache stays: the environment is made again.
            set_aside(image, f"{n}-before-warm")
            timed("snap_warm", snap_build, repo, spec, snap_env(cache, image))
            # A new revision with the same lock: snap's app image deleted (set aside, snap
            # would find it by its inputs' digest and tag it again), its environment image
            # kept; the seed's layer cache kept, one app file changed.
            remove_images(f"{image}:")
            timed("snap_same_lock", snap_build, repo, spec, snap_env(cache, image))
            (context / ".bench-run").write_text(f"{n}\n")
            timed("seed_warm", _seed, build, context, f"{seed_image}:warm", False)
            shutil.rmtree(cache.parent, ignore_errors=True)
            print(
                json.dumps(
                    {k: [s.get("seconds", s.get("error")) for s in v] for k, v in samples.items()}
                )
            )

    def median(key: str) -> float:
        values = [float(str(s["seconds"])) for s in samples[key] if s.get("ok")]
        if not values:
            raise BenchError(f"every {key} run failed: {samples[key]}")
        return statistics.median(values)

    seed_cold, seed_warm = median("seed_cold"), median("seed_warm")
    return {
        "revision": rev,
        "python": version,
        "runs": runs,
        "samples": samples,
        "medians": {k: median(k) for k in samples},
        "ratio_cold": round(median("snap_cold") / seed_cold, 3),
        "ratio_warm": round(median("snap_warm") / seed_cold, 3),
        "ratio_same_lock_vs_seed_cold": round(median("snap_same_lock") / seed_cold, 3),
        "ratio_same_lock_vs_seed_warm": round(median("snap_same_lock") / seed_warm, 3),
        "docker_env": CLASSIC_BUILDER,
    }


# How long ext4 without a journal treats a freed inode as "recently deleted": 60 s
# (RECENTCY_MIN) while its inode table block is clean, 360 s (+ RECENTCY_DIRTY) while it is
# dirty. A sync cleans the blocks, but the next run's own new files dirty them again, so
# only 360 s is safe: 61 s after the seed's cold build, snap's warm build took 20.5 s
# (27.9 s under a profiler), against 13.7 s after 361 s (2026-12-04 20:50-21:12 UTC).
RECENTLY_DELETED_SECONDS = 361.0


def flush() -> dict[str, object]:
    """Before each timed run of either side, untimed (``snap_build`` has already waited for
    the engine's deferred removals): every dirty page written back (``sync``), then a pause
    until what was deleted before this run is no longer "recently deleted" (six minutes).

    The pause is for filesystems without a journal, as on these machines (ext4 with no
    journal; ``/`` and Docker's data root on one disk). There, a new inode skips the inodes
    freed in the last minutes, reading each one's deletion time, so after a removal of ~45k
    files (one of tock's images or install containers) creating files costs kernel CPU: in
    a profile of `docker load` then, ``recently_deleted``, ``find_inode_bit`` and
    ``find_get_block_common`` are the top kernel functions. `docker load` of tock's 320 MB
    environment layer took 28-35 s started 30 s after a removal, 6.5 s started 65 s after
    it, 4.7 s with none before it. The bench deletes no environment image between runs
    either (``set_aside``; only the app image before the same-lock run, a few hundred
    files); what each side's own run removes (snap's install and builder containers, the
    seed's intermediate containers) stays part of the work."""
    started = time.monotonic()
    os.sync()
    synced = time.monotonic()
    time.sleep(RECENTLY_DELETED_SECONDS)
    return {
        "flush_before": {
            "sync_seconds": round(synced - started, 2),
            "pause_seconds": RECENTLY_DELETED_SECONDS,
        }
    }


@contextmanager
def _images_removed_after(image: str, seed_image: str) -> Iterator[None]:
    """Both sides' images, and what was set aside, deleted when the pair ends or fails."""
    try:
        yield
    finally:
        remove_images(image)
        remove_images(SET_ASIDE)
        docker("rmi", "-f", f"{seed_image}:cold", f"{seed_image}:warm", check=False)


def _lock_python(lock: dict[str, object]) -> str:
    meta = lock.get("_meta")
    requires = meta.get("requires", {}) if isinstance(meta, dict) else {}
    found = requires.get("python_version") or ".".join(
        str(requires.get("python_full_version", "")).split(".")[:2]
    )
    if not found:
        raise BenchError("the lock names no python: give the revision as REV@X.Y")
    return ".".join(str(found).split(".")[:2])  # some locks say "3.9.9" here


def _seed(build: seed.SeedBuild, context: Path, tag: str, cold: bool) -> dict[str, object]:
    try:
        run: TimedRun = build.build(context, tag, nocache=cold)
    except BenchError as e:
        return {"ok": False, "error": " | ".join(str(e).strip().splitlines()[-4:])}
    sample = seed.sample(run)
    return {
        "ok": True,
        "seconds": round(run.seconds, 2),
        "pipenv_ran": seed.pipenv_ran(run),
        "phases": {k: round(v, 2) for k, v in sample.phases.items()},
    }


# The measurements quoted in bench/README.md, one entry per recorded run (``--record``).
RECORDED = Path(__file__).parent / "real_history.json"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.real_history", description=__doc__)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--revs", default="", help="REV or REV@X.Y, comma-separated")
    parser.add_argument("--seed-rev", default="", help="REV or REV@X.Y")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--record",
        metavar="KEY",
        default="",
        help=f"add this run to {RECORDED.name} as KEY (with --about); an existing KEY is kept",
    )
    parser.add_argument("--about", default="", help="with --record: when, and what was run")
    args = parser.parse_args()
    if args.record and not args.about:
        parser.error("--record needs --about: when, and what was run")
    if args.record and args.record in _recorded():
        parser.error(f"{RECORDED.name} already has {args.record}: choose a new key")
    compile_snap()
    work = Path(tempfile.mkdtemp(prefix="snapbench-real-"))
    result: dict[str, object] = {"repository": args.repo.name}
    try:
        if args.revs:
            result["history"] = history(args.repo, args.revs.split(","), work)
        if args.seed_rev:
            result["seed"] = seed_pair(args.repo, args.seed_rev, work, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text)
    if args.record:
        _record(args.record, {"bench": args.about, "snap_commit": snap_commit(), **result})
    print(text, end="")


def _recorded() -> dict[str, object]:
    return dict(json.loads(RECORDED.read_text()))


def _record(key: str, entry: dict[str, object]) -> None:
    recorded = _recorded()
    recorded[key] = entry
    RECORDED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"recorded as {key} in {RECORDED}", file=sys.stderr)


if __name__ == "__main__":
    main()

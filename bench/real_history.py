"""Revisions of a real repository with packages that publish only sdists: snap and the seed.

For each revision given: a cold `snap build` (no images, the wheel cache starting empty for
the first revision and kept from one revision to the next, as on one host), then the
images removed and built again with the caches kept (it must build nothing from an sdist
and ask no index), then once more with the images present. For one revision, the seed
recipe (``pip install pipenv && pipenv install --deploy --system``) on the builder image,
from a local pypiserver holding exactly the files it needs (the files snap fetched, and
pipenv with its dependencies), against a cold snap build with an empty cache and one with
the cache filled.

    .venv/bin/python -m bench.real_history --repo ../tock --revs 9e77b033,ac0326ae \\
        --seed-rev 9e77b033 --output bench/real_history.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import index, seed
from bench.images import CLASSIC_BUILDER

SNAP = str(Path(sys.executable).parent / "snap")
PY_TARGET = ("--python-version", "3.9", "--implementation", "cp", "--abi", "cp39")
PLATFORMS = ("--platform", "manylinux_2_31_x86_64", "--platform", "manylinux2014_x86_64")


def snap_env(cache: Path, image: str) -> dict[str, str]:
    return dict(
        os.environ,
        SNAP_CACHE_DIR=str(cache),
        SNAP_STATE_DIR=str(cache.parent / "state"),
        SNAP_IMAGE=image,
        SNAP_BASE_IMAGE="snap-base/python:{python}",
        SNAP_BUILDER_IMAGE="snap-base/python:{python}-build",
    )


def remove_images(image: str) -> None:
    out = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{image}*"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if out:
        subprocess.run(["docker", "rmi", "-f", *out], capture_output=True, check=False)


def snap_build(repo: Path, rev: str, env: dict[str, str]) -> dict[str, object]:
    started = time.monotonic()
    done = subprocess.run(
        [SNAP, "--repo", str(repo), "build", rev], capture_output=True, text=True, env=env
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return {"ok": False, "seconds": seconds, "error": done.stderr.strip().splitlines()[-1]}
    err = done.stderr
    return {
        "ok": True,
        "seconds": round(seconds, 2),
        "sdists_built": len(re.findall(r"from its sdist in ", err)),
        "sdists_reused": len(re.findall(r"reusing the wheel of .* built from its sdist", err)),
        "sdists_downloaded": len(re.findall(r"downloading the sdist ", err)),
        "env_reused": "reusing environment" in err,
        "already_built": "already built" in done.stdout,
    }


def record(repo: Path, rev: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [SNAP, "--repo", str(repo), "show", rev, "--image"], capture_output=True, text=True, env=env
    )
    return done.stdout


def history(repo: Path, revs: list[str], work: Path) -> list[dict[str, object]]:
    cache = work / "history-cache"
    rows = []
    for rev in revs:
        image = f"sdistreal-{rev[:8]}"
        env = snap_env(cache, image)
        remove_images(image)
        date = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%cs", rev],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        lock = json.loads(
            subprocess.run(
                ["git", "-C", str(repo), "show", f"{rev}:Pipfile.lock"],
                capture_output=True,
                check=True,
            ).stdout  # fmt: skip
        )
        first = snap_build(repo, rev, env)
        shown = record(repo, rev, env) if first["ok"] else ""
        remove_images(image)
        second = snap_build(repo, rev, env)
        third = snap_build(repo, rev, env)
        remove_images(image)
        rows.append(
            {
                "revision": rev,
                "date": date,
                "python": lock["_meta"].get("requires", {}),
                "packages": len(lock["default"]),
                "first": first,
                "images_removed_caches_kept": second,
                "images_present": third,
                "show_image": shown,
            }
        )
        print(json.dumps(rows[-1]["first"]), json.dumps(second), flush=True)
    return rows


def seed_pair(repo: Path, rev: str, work: Path) -> dict[str, object]:
    """The seed on the builder image against snap cold (empty cache) and warm (cache filled)."""
    image = f"sdistseed-{rev[:8]}"
    cache = work / "seed-snap-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = snap_env(cache, image)
    remove_images(image)
    cold = snap_build(repo, rev, env)
    remove_images(image)
    warm = snap_build(repo, rev, env)
    remove_images(image)

    # The seed's index: every file snap fetched (wheels, the sdists, their build
    # dependencies) and pipenv with its dependencies for the builder's python.
    folder = work / "seed-index"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for artifact in (cache / "artifacts").glob("*/*"):
        shutil.copy(artifact, folder / artifact.name)

    # pipenv 2025.0 is the last for python 3.9. pip evaluates dependency markers for the
    # host's python (3.11), so what pipenv's dependencies need only below 3.11 is named.
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
         *PY_TARGET, *PLATFORMS, "--dest", str(folder), "pipenv<2025.1",
         "typing-extensions>=4.13.2", "tomli", "importlib-metadata", "zipp", "exceptiongroup"],
        check=True,
    )  # fmt: skip
    exe = index.ensure_pypiserver(work / "pypiserver-venv")
    context = seed.export_context(repo, rev, work / "seed-context", "snap-base/python:3.9-build")
    times = []
    with index.serve(folder, exe, work / "pypiserver.log") as server:
        build = seed.SeedBuild(server.url)
        for _ in range(2):  # a failed build raises BenchError with its output
            run = build.build(context, f"{image}-seed:cold", nocache=True)
            times.append(round(run.seconds, 2))
        pipenv_ran = seed.pipenv_ran(run)
    subprocess.run(["docker", "rmi", "-f", f"{image}-seed:cold"], capture_output=True)
    seed_cold = min(times)
    return {
        "revision": rev,
        "snap_cold_empty_cache": cold,
        "snap_warm_cache_filled_no_images": warm,
        "seed_cold_runs": times,
        "seed_pipenv_ran": pipenv_ran,
        "ratio_cold": round(float(str(cold["seconds"])) / seed_cold, 3),
        "ratio_warm": round(float(str(warm["seconds"])) / seed_cold, 3),
        "docker_env": CLASSIC_BUILDER,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.real_history", description=__doc__)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--revs", default="")
    parser.add_argument("--seed-rev", default="")
    parser.add_argument("--output", type=Path, default=Path("bench/real_history.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="snapbench-real-"))
    result: dict[str, object] = {"repository": args.repo.name}
    try:
        if args.revs:
            result["history"] = history(args.repo, args.revs.split(","), work)
        if args.seed_rev:
            result["seed"] = seed_pair(args.repo, args.seed_rev, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.output.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result.get("seed", {}), indent=1))


if __name__ == "__main__":
    main()

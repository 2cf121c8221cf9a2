"""`snap bisect GOOD BAD -- CMD`: which lock change broke it, and which package in it.

Two searches, each a binary search:

1. Over the revisions between GOOD and BAD that changed the lock (a commit that leaves
   the lock id as it was is never a step). By default BAD's code is held fixed and only
   the environment moves (BAD's code on each revision's environment image: one small app
   layer per step); ``--with-code`` tests each revision's own image, like
   ``git bisect run``. GOOD is checked to pass and BAD to fail first (an image that
   exists costs no build), so a wrong premise is reported instead of a wrong culprit.
2. Inside the culprit lock change, over its package changes: the last good environment
   plus a subset of the changes (new wheels installed offline with ``--no-deps`` from
   the wheel cache, removed packages uninstalled), shrinking to the smallest set that
   still fails — "flask 3.0.3 -> 3.1.0 alone breaks it". These environments are
   *synthetic*: labelled ``snap.synthetic``, never tagged, removed when the search ends.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from snapshot.adapters.build_context import ContextFile, write_context_tar
from snapshot.adapters.docker import DockerEngine
from snapshot.adapters.gitrepo import GitRepository
from snapshot.app_image import label_instruction
from snapshot.build import Builder, RevisionSource, read_revision
from snapshot.config import Settings
from snapshot.cross import default_command, mixed_image
from snapshot.diff import diff_locks
from snapshot.errors import GitError, LockError, NoLockChange
from snapshot.labels import LABEL_LOCK_ID, LABEL_SYNTHETIC
from snapshot.locked_wheels import Wheels, requirement_line
from snapshot.lockfile import LockFile, Package, parse_lock
from snapshot.progress import Progress
from snapshot.revision import Revision
from snapshot.smoke import run_check
from snapshot.snapshots import (
    open_repository,
    read_lock_bytes,
    resolve_revision,
    revision_in_history,
)

KIND_REVISION = "revision"
KIND_PACKAGES = "packages"


@dataclass(frozen=True)
class Change:
    """One package change of a lock change."""

    name: str
    old: str | None  # version before (None: added)
    new: str | None  # version after (None: removed)
    change: str  # added | removed | upgraded | downgraded | rehashed | changed

    @property
    def text(self) -> str:
        return f"{self.name} {self.old or '(none)'} -> {self.new or '(removed)'}"


@dataclass(frozen=True)
class Step:
    number: int
    kind: str  # KIND_REVISION | KIND_PACKAGES
    subject: str  # "v5 (0123456789ab)", or the package changes applied
    image: str
    synthetic: bool
    ok: bool
    exit_code: int
    cause: str
    env_built: bool
    seconds: float


@dataclass(frozen=True)
class BisectResult:
    good: str
    bad: str
    command: tuple[str, ...]
    with_code: bool
    lock_revisions: int  # lock changes after GOOD up to BAD: the revision search's n
    culprit: str | None  # the first failing revision, by display name
    culprit_revision: str | None
    last_good: str | None
    changes: tuple[Change, ...]  # the culprit's lock change
    smallest: tuple[Change, ...]  # the smallest set of them that flips CMD
    steps: tuple[Step, ...]
    env_builds: int  # environment images built (exact and synthetic)
    seconds: float
    reason: str  # why there is no culprit ("" when there is one)

    @property
    def found(self) -> bool:
        return self.culprit is not None


@dataclass
class _Candidate:
    revision: Revision
    lock: LockFile
    source: RevisionSource | None = None


@dataclass
class _Run:
    """The state of one bisect: one engine, one builder, every step taken."""

    settings: Settings
    repo: GitRepository
    engine: DockerEngine
    builder: Builder
    command: list[str]
    progress: Progress
    steps: list[Step] = field(default_factory=list)
    env_builds: int = 0
    throwaway: list[str] = field(default_factory=list)  # synthetic image ids, newest last

    def source(self, c: _Candidate) -> RevisionSource:
        if c.source is None:
            c.source = read_revision(self.repo, self.settings, c.revision)
        return c.source

    def record(
        self, kind: str, subject: str, image: str, synthetic: bool, built: bool, t0: float
    ) -> bool:
        result = run_check(self.engine, image, self.command)
        step = Step(
            number=len(self.steps) + 1,
            kind=kind,
            subject=subject,
            image=image,
            synthetic=synthetic,
            ok=result.ok,
            exit_code=result.exit_code,
            cause=result.cause,
            env_built=built,
            seconds=round(time.monotonic() - t0, 3),
        )
        self.steps.append(step)
        self.env_builds += built
        word = "passes" if step.ok else f"fails (exit {step.exit_code}): {step.cause}"
        env = "environment built" if built else "environment reused"
        self.progress.step(f"step {step.number}: {subject}: {word} [{env}]")
        return step.ok


def bisect(
    settings: Settings,
    good: str,
    bad: str,
    argv: Sequence[str],
    *,
    with_code: bool = False,
    progress: Progress,
) -> BisectResult:
    started = time.monotonic()
    command = list(argv) or default_command(settings)
    with open_repository(settings) as repo:
        good_rev, bad_rev = resolve_revision(repo, good), resolve_revision(repo, bad)
        if good_rev.sha == bad_rev.sha or not repo.is_ancestor(good_rev.sha, bad_rev.sha):
            raise GitError(
                f"{good_rev.display} is not an ancestor of {bad_rev.display}",
                "Give GOOD first: an older revision that BAD descends from",
            )
        candidates = lock_changes(repo, settings, good_rev, bad_rev)
        with DockerEngine(settings.docker_timeout) as engine:
            builder = Builder(settings, engine, progress, nocache=False, smoke=False)
            run = _Run(settings, repo, engine, builder, command, progress)
            try:
                return _search(run, candidates, bad_rev, with_code, started)
            finally:
                for image_id in reversed(run.throwaway):
                    engine.remove_image(image_id)


def lock_changes(
    repo: GitRepository, settings: Settings, good: Revision, bad: Revision
) -> list[_Candidate]:
    """GOOD, then each commit up to BAD whose lock id differs from the one before it."""
    where = f"{settings.lockfile} at {good.display}"
    first = _Candidate(good, parse_lock(read_lock_bytes(repo, settings, good), where))
    found = [first]
    tags = repo.tags_by_commit()
    for commit in repo.commits_between(good.sha, bad.sha, settings.lockfile):
        rev = revision_in_history(commit, tags)
        try:
            lock = parse_lock(read_lock_bytes(repo, settings, rev), f"{settings.lockfile} at {rev}")
        except LockError:
            continue  # a deleted or broken lock is no environment to test
        if lock.lock_id != found[-1].lock.lock_id:
            found.append(_Candidate(rev, lock))
    if len(found) == 1:
        raise NoLockChange(
            f"the lock does not change between {good.display} and {bad.display}",
            f"Their environments are the same; compare the code with `snap cross {good.name} "
            f"{bad.name}` or use `git bisect`",
        )
    return found


def _search(
    run: _Run, candidates: list[_Candidate], bad_rev: Revision, with_code: bool, started: float
) -> BisectResult:
    bad_src = read_revision(run.repo, run.settings, bad_rev)
    good = candidates[0].revision.display

    def test(i: int) -> bool:
        t0 = time.monotonic()
        c = candidates[i]
        src = run.source(c)
        # Without --with-code every step runs BAD's code: the subject is the environment.
        subject = c.revision.display if with_code else f"env of {c.revision.display}"
        if with_code or src.lock.lock_id == bad_src.lock.lock_id:
            built = run.builder.build(src if with_code else bad_src, t0)
            made = not built.cached and not built.env_cached
            return run.record(KIND_REVISION, subject, built.image, False, made, t0)
        env, reused = run.builder.environment(src)
        image = mixed_image(run.engine, run.builder, run.settings, bad_src, src, env)
        return run.record(KIND_REVISION, subject, image, False, not reused, t0)

    def result(
        culprit: int | None,
        reason: str,
        changes: Sequence[Change] = (),
        smallest: Sequence[Change] = (),
    ) -> BisectResult:
        return BisectResult(
            good=good,
            bad=bad_rev.display,
            command=tuple(run.command),
            with_code=with_code,
            lock_revisions=len(candidates) - 1,
            culprit=candidates[culprit].revision.display if culprit is not None else None,
            culprit_revision=candidates[culprit].revision.sha if culprit is not None else None,
            last_good=candidates[culprit - 1].revision.display if culprit is not None else None,
            changes=tuple(changes),
            smallest=tuple(smallest),
            steps=tuple(run.steps),
            env_builds=run.env_builds,
            seconds=round(time.monotonic() - started, 3),
            reason=reason,
        )

    n = len(candidates) - 1
    if test(n):
        last = candidates[n].revision.display if with_code else bad_rev.display
        return result(None, f"{last} passes: nothing broke")
    if not test(0):
        return result(None, f"{good} fails too: no good environment to start from")
    lo, hi = 0, n  # lo passes, hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(mid):
            lo = mid
        else:
            hi = mid
    old_src, new_src = run.source(candidates[lo]), run.source(candidates[hi])
    code = new_src if with_code else bad_src
    changes, smallest = _packages(run, old_src, new_src, code)
    return result(hi, "", changes, smallest)


def _packages(
    run: _Run, old: RevisionSource, new: RevisionSource, code: RevisionSource
) -> tuple[list[Change], list[Change]]:
    """The culprit lock change's package changes and the smallest set of them that fails."""
    python, _, _, diffs = diff_locks(old.lock, new.lock)
    if python is not None:
        run.progress.step("the python version changed too: no package search")
        return [], []
    target = run.builder.platform(new)
    old_by = {p.name: p for p in old.lock.default}
    new_by = {p.name: p for p in new.lock.default}

    def applies(name: str) -> bool:
        p = new_by.get(name) or old_by[name]
        return target.applies(p.markers)

    changes = [Change(d.name, d.old, d.new, d.change) for d in diffs if applies(d.name)]
    if len(changes) <= 1:
        return changes, changes
    old_env, _ = run.builder.environment(old)
    by_name = {c.name: c for c in changes}
    verdicts: dict[frozenset[str], bool] = {
        frozenset(): False,
        frozenset(by_name): True,
    }

    def fails(names: Sequence[str]) -> bool:
        key = frozenset(names)
        if key not in verdicts:
            t0 = time.monotonic()
            subset = [by_name[n] for n in sorted(key)]
            installs = [new_by[c.name] for c in subset if c.name in new_by]
            removals = [c.name for c in subset if c.name not in new_by]
            wheels = run.builder.wheels(installs, target, new)
            what = ", ".join(c.text for c in subset)
            env_id = synthetic_environment(run.engine, old_env.id, installs, removals, wheels, what)
            run.throwaway.append(env_id)
            env = run.engine.image(env_id)
            assert env is not None
            source = RevisionSource(
                code.revision, new.lock, code.files, code.source_url, code.python
            )
            app_id = run.builder.app_on(
                source, env, {LABEL_SYNTHETIC: f"code of {code.label} on {what}", LABEL_LOCK_ID: ""}
            )
            run.throwaway.append(app_id)
            short = ", ".join(f"{c.name} {c.new or '(removed)'}" for c in subset)
            subject = f"env of {old.revision.name} + {short}"
            ok = run.record(KIND_PACKAGES, subject, app_id, True, True, t0)
            verdicts[key] = not ok
        return verdicts[key]

    return changes, smallest_failing([c.name for c in changes], fails, by_name)


def smallest_failing(
    names: list[str], fails: Callable[[Sequence[str]], bool], by_name: dict[str, Change]
) -> list[Change]:
    """A smallest set of NAMES that FAILS, given that all of them fail and none do not.

    Each round binary-searches the shortest prefix of what is left that fails together
    with what is already required; its last name is then required too. One culprit costs
    about log2(len(names)) + 1 checks.
    """
    required: list[str] = []
    pool = list(names)
    while not fails(required):
        lo, hi = 0, len(pool)  # required + pool[:lo] passes, required + pool[:hi] fails
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fails(required + pool[:mid]):
                hi = mid
            else:
                lo = mid
        required.append(pool[hi - 1])
        pool = pool[: hi - 1]
    return [by_name[n] for n in sorted(required)]


def synthetic_environment(
    engine: DockerEngine,
    base_env: str,
    installs: list[Package],
    removals: list[str],
    wheels: Wheels,
    what: str,
) -> str:
    """BASE_ENV plus INSTALLS (offline, --no-deps, hash-checked) minus REMOVALS; untagged."""
    files = [
        ContextFile(
            f"wheels/{wheels.artifacts[p.name].filename}", source=wheels.artifacts[p.name].path
        )
        for p in installs
    ]
    files.append(ContextFile("wheels/.keep"))  # COPY needs the folder when nothing is added
    # A wheel built from its sdist has a hash the lock cannot know: pip checks its own.
    lines = "\n".join(requirement_line(p, wheels.built_sha256(p.name)) for p in installs) + "\n"
    files.append(ContextFile("requirements.txt", lines.encode()))
    steps = ["set -e"]
    if removals:
        steps.append(
            "python3 -m pip uninstall -y --break-system-packages " + " ".join(sorted(removals))
        )
    if installs:
        steps.append(
            "PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-index --no-deps "
            "--require-hashes --no-cache-dir --disable-pip-version-check "
            "--find-links /snap/wheels -r /snap/requirements.txt"
        )
    steps.append("rm -rf /snap")
    dockerfile = f"""\
FROM {base_env}
COPY wheels/ /snap/wheels/
COPY requirements.txt /snap/requirements.txt
RUN {" && ".join(steps)}
{label_instruction({LABEL_SYNTHETIC: what})}
"""
    files.append(ContextFile("Dockerfile", dockerfile.encode()))
    with tempfile.TemporaryFile() as ctx:
        write_context_tar(files, ctx)
        return engine.build(ctx, dockerfile="Dockerfile", network=False)

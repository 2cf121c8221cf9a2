"""The one error model of snap.

Every failure a user can cause or fix is a ``SnapError``. The CLI entry point is the
only place that catches it; it prints ``Error: <message>`` on stderr and exits with
``exit_code``. Messages say what failed and what to do next, in one line.
"""

from __future__ import annotations


class SnapError(Exception):
    """Base of every error snap reports to the user."""

    exit_code = 1

    def __init__(self, what: str, todo: str) -> None:
        """WHAT failed, and what the user can do about it (required: an error that leaves
        the user with nothing to do is not finished)."""
        # One trailing period is the sentence's; more would be part of a path like "..".
        self.what = what[:-1] if what.endswith(".") and not what.endswith("..") else what
        self.todo = todo[:-1] if todo.endswith(".") else todo
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.todo:
            end = "" if self.todo.endswith("?") else "."
            return f"{self.what}. {self.todo}{end}"
        return f"{self.what}."


class ConfigError(SnapError):
    """Invalid configuration or usage: exit code 2, like click's usage errors."""

    exit_code = 2


class GitError(SnapError):
    """The repository or a revision in it cannot be read."""


class LockError(SnapError):
    """A Pipfile.lock (or its Pipfile) is missing or malformed."""


class PipenvError(SnapError):
    """pipenv's own code could not evaluate a Pipfile."""


class DockerError(SnapError):
    """The Docker engine is unreachable or refused an operation."""


class PortInUse(DockerError):
    """The engine could not publish a host port: something else holds it. Engine-level:
    whoever asked for the port adds the advice that fits (another port, stop the holder)."""


class CommandNotFound(DockerError):
    """The program a command names does not exist in the image (`snap run`, `cross`)."""


class BuildError(SnapError):
    """An image could not be built exactly as the lock says."""


class IndexUnreachable(BuildError):
    """No package index answered: not the same as an index without the file."""


class DeployError(SnapError):
    """A deploy or rollback failed; what was serving keeps serving."""


class InvalidLock(LockError):
    """A lock file snap cannot read; SHORT names why in a few words (for tables)."""

    def __init__(self, what: str, todo: str, *, short: str) -> None:
        self.short = short
        super().__init__(what, todo)


class PipfileUnreadable(LockError):
    """Today's pipenv cannot parse a Pipfile; REASON says why in pipenv's words."""

    def __init__(self, where: str, pipenv_version: str, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"{where} cannot be read by pipenv {pipenv_version}: {reason}", "Fix the Pipfile"
        )


class NoLockChange(SnapError):
    """`snap bisect`: GOOD and BAD have the same environment, so there is nothing to step over."""


class DemoStepFailed(SnapError):
    """A step of `snap demo` ended with another exit code than it should."""

"""A revision: one commit, and the name people call it by.

The user names a revision with any word git resolves (``v1``, ``HEAD~2``, a short sha).
A service resolves that word once, at its entry, into a ``Revision`` and passes the value
down; every message, table and history row then names it with ``Revision.display`` —
``v1 (e13b5bf70451)`` — so one revision reads the same everywhere. Short forms of
hex ids (commits, lock ids, image ids) are cut here too, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_REVISION = "HEAD"  # what a command reads when it is given no revision
SHORT = 12  # hex digits of a short commit sha or lock id
_IMAGE_PREFIX = "sha256:"


def short_id(hex_id: str) -> str:
    """The short form of a commit sha or lock id: its first 12 hex digits."""
    return hex_id[:SHORT]


def short_image_id(image_id: str) -> str:
    """The short form of an image id as Docker prints it: ``sha256:`` and 12 hex digits."""
    if image_id.startswith(_IMAGE_PREFIX):
        return _IMAGE_PREFIX + short_id(image_id[len(_IMAGE_PREFIX) :])
    return short_id(image_id)


@dataclass(frozen=True)
class CommitInfo:
    """One commit, as snap shows it."""

    sha: str
    date: str  # committer date, strict ISO 8601
    subject: str

    @property
    def short(self) -> str:
        return short_id(self.sha)


def revision_name(word: str | None, sha: str, tags: Sequence[str] = ()) -> str:
    """What to call the commit SHA that the user named WORD.

    The user's word when it is a name (``v1``, ``HEAD~2``); for a sha (or no word), the
    commit's first tag; else nothing but the short sha.
    """
    if word and not sha.startswith(word.lower()):
        return word
    return tags[0] if tags else short_id(sha)


@dataclass(frozen=True)
class Revision:
    commit: CommitInfo
    name: str  # see revision_name: "v1", "HEAD~2", or the short sha

    @classmethod
    def named(cls, commit: CommitInfo, word: str | None, tags: Sequence[str] = ()) -> Revision:
        return cls(commit, revision_name(word, commit.sha, tags))

    @property
    def sha(self) -> str:
        return self.commit.sha

    @property
    def short(self) -> str:
        return self.commit.short

    @property
    def display(self) -> str:
        """``v1 (e13b5bf70451)``, or the short sha alone when that is its only name."""
        return self.short if self.name == self.short else f"{self.name} ({self.short})"

    def __str__(self) -> str:
        return self.display

"""What of a remote's URL may go into an image label: never a user or token."""

from __future__ import annotations

import pytest

from snapshot.adapters.gitrepo import without_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:ghp_token@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://ghp_token@github.com/org/repo", "https://github.com/org/repo"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("ssh://git@host:2222/org/repo.git", "ssh://host:2222/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_credentials_never_reach_the_label(url: str, shown: str) -> None:
    assert without_credentials(url) == shown

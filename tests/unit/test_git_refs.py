"""Reading a branch's tip from the ref files (no git process per request) agrees with git itself,
whether the ref is loose, packed, or missing."""

from __future__ import annotations

from pathlib import Path

from spacehub.repos.commits import Author, commit_files
from spacehub.repos.git import GitRepo

AUTHOR = Author(name="Test", email="test@example.com")


def test_the_tip_read_from_files_is_gits_own_answer(tmp_path: Path) -> None:
    repo = GitRepo.init_bare(tmp_path / "repo.git")
    assert repo.tip() is None and repo.head() is None  # empty: no branch yet
    commit_files(repo, {"a.txt": b"1"}, "first", AUTHOR)
    loose = repo.tip()
    assert loose is not None and loose == repo.head()
    repo.run("pack-refs", "--all")
    assert not (repo.path / "refs/heads/main").exists()
    assert repo.tip() == loose  # from packed-refs
    commit_files(repo, {"a.txt": b"2"}, "second", AUTHOR)
    assert repo.tip() == repo.head() != loose  # a loose ref again, ahead of the packed one
    assert repo.tip("no-such-branch") is None

"""Pure parts of sdist builds and python choice: tables of inputs, no network, no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest
from sdist_index import make_sdist

from snapshot.adapters import index
from snapshot.errors import BuildError
from snapshot.lockfile import Package, Source, parse_lock
from snapshot.platform import TargetPlatform
from snapshot.pythons import choose_python, parse_minor
from snapshot.sdist_requires import build_requires
from snapshot.sdists import build_failure, source_date_epoch

TARGET_39 = TargetPlatform(
    "snap-base/python:3.9",
    "sha256:0",
    {
        "python_version": "3.9",
        "python_full_version": "3.9.2",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "os_name": "posix",
    },
    ("glibc", "2.31"),
    {},
)


def lock(requires: dict[str, str]) -> object:
    import json

    doc = {"_meta": {"pipfile-spec": 6, "requires": requires, "sources": []}, "default": {}}
    return parse_lock(json.dumps(doc))


LOCK_V = "the lock's python_version"
LOCK_FULL = "the lock's python_full_version"
PIPFILE_V = "the Pipfile's python_version"
PIPFILE_FULL = "the Pipfile's python_full_version"


@pytest.mark.parametrize(
    ("requires", "pipfile", "override", "chosen"),
    [
        ({"python_version": "3.9"}, b"", None, ("3.9", LOCK_V)),
        ({"python_version": "3.9.6"}, b"", None, ("3.9", LOCK_V)),  # as pipenv copies it
        ({"python_full_version": "3.9.7"}, b"", None, ("3.9", LOCK_FULL)),
        ({"python_version": "3.8", "python_full_version": "3.9.7"}, b"", None, ("3.8", LOCK_V)),
        ({}, b'[requires]\npython_version = "3.10"\n', None, ("3.10", PIPFILE_V)),
        ({}, b'[requires]\npython_full_version = "3.13.1"\n', None, ("3.13", PIPFILE_FULL)),
        ({"python_version": "3.9"}, b"", "3.11", ("3.11", "--python / SNAP_PYTHON")),
    ],
)
def test_the_python_comes_from_the_first_place_that_names_it(
    requires: dict[str, str], pipfile: bytes, override: str | None, chosen: tuple[str, str]
) -> None:
    c = choose_python(lock(requires), pipfile, override, "v1")  # type: ignore[arg-type]
    assert (c.version, c.source) == chosen


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("3.9", "3.9"),
        ("3.9.7", "3.9"),
        ("==3.9.*", "3.9"),
        (">=3.7", None),
        ("3", None),
        ("*", None),
    ],
)
def test_parse_minor(text: str, minor: str | None) -> None:
    assert parse_minor(text) == minor


def test_a_pipfile_range_is_refused_naming_the_options() -> None:
    with pytest.raises(BuildError) as e:
        choose_python(lock({}), b'[requires]\npython_version = "~=3.8"\n', None, "v1")  # type: ignore[arg-type]
    assert e.value.message.startswith("v1: the Pipfile's python_version is '~=3.8', not one")
    assert "--python X.Y, set SNAP_PYTHON" in e.value.message


def sdist(tmp_path: Path, files: dict[str, str]) -> Path:
    name, data = make_sdist("demo", "1.0", files)
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_build_requires_of_a_legacy_setup_py_are_pips_defaults(tmp_path: Path) -> None:
    assert build_requires(sdist(tmp_path, {"setup.py": ""}), TARGET_39) == [
        "setuptools>=40.8.0",
        "wheel",
    ]


def test_build_requires_markers_are_evaluated_for_the_target_not_the_host(tmp_path: Path) -> None:
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=42", "numpy==1.19.3; python_version==\'3.9\'",'
        ' "numpy==1.23.2; python_version==\'3.11\'"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    found = build_requires(sdist(tmp_path, {"pyproject.toml": pyproject}), TARGET_39)
    assert found == ["setuptools>=42", "numpy==1.19.3", "wheel"]


def test_build_requires_of_another_backend_add_nothing(tmp_path: Path) -> None:
    pyproject = (
        '[build-system]\nrequires = ["flit_core>=3.2,<4"]\nbuild-backend = "flit_core.buildapi"\n'
    )
    assert build_requires(sdist(tmp_path, {"pyproject.toml": pyproject}), TARGET_39) == [
        "flit_core<4,>=3.2"
    ]


PKG = Package("cext", "==1.0", ("sha256:" + "a" * 64,), None, None, None, None, None, False, ())


def test_a_compile_error_keeps_the_first_and_last_error_lines() -> None:
    log = [
        "Processing /snap/sdist/cext-1.0.tar.gz",
        "  error: subprocess-exited-with-error",
        "  cext.c:3:5: error: unknown type name 'nope'",
        "  error: command '/usr/bin/gcc' failed with exit code 1",
        "ERROR: Failed building wheel for cext",
    ]
    e = build_failure(PKG, "builder:3.9", log)
    assert e.what == (
        "building cext 1.0 from its sdist failed in builder:3.9: cext.c:3:5: error: unknown "
        "type name 'nope' | error: command '/usr/bin/gcc' failed with exit code 1"
    )


def test_a_build_dependency_asked_for_while_building_is_named() -> None:
    log = [
        "  ERROR: Could not find a version that satisfies the requirement cython<3 "
        "(from versions: none)"
    ]
    e = build_failure(PKG, "builder:3.9", log)
    assert e.what.startswith(
        "build dependency cython<3 of cext 1.0 is not available to the builder"
    )


def test_source_date_epoch_is_the_commit_date() -> None:
    assert source_date_epoch("2021-03-04T05:06:07+00:00") == "1614834367"
    assert source_date_epoch("2021-03-04T06:06:07+01:00") == "1614834367"


def test_source_urls_expand_variables_and_are_shown_redacted() -> None:
    sources = [Source("private", "https://u:${TOKEN}@pkgs.example/simple", True)]
    [found] = index.expand_sources(sources, {"TOKEN": "t0k"})
    assert found.url == "https://u:t0k@pkgs.example/simple"
    assert found.shown == "https://****@pkgs.example/simple"
    with pytest.raises(BuildError) as e:
        index.expand_sources(sources, {})
    assert e.value.what == (
        "the lock's source private needs the environment variable TOKEN, which is not set"
    )


def test_index_pages_in_html_and_json_give_the_same_files() -> None:
    html = b'<a href="../../files/demo-1.0.tar.gz#sha256=abc">demo-1.0.tar.gz</a>\n'
    json_page = (
        b'{"files": [{"filename": "demo-1.0.tar.gz", "url": "../../files/demo-1.0.tar.gz",'
        b' "hashes": {"sha256": "abc"}}]}'
    )
    base = "http://127.0.0.1:1/simple/demo/"
    expected = [
        index.IndexFile("demo-1.0.tar.gz", "http://127.0.0.1:1/files/demo-1.0.tar.gz", "abc")
    ]
    assert index._files(html, "text/html", base) == expected
    assert index._files(json_page, "application/vnd.pypi.simple.v1+json", base) == expected


def test_old_pips_own_failure_lines_are_not_taken_for_the_cause() -> None:
    log = [
        "  Getting requirements to build wheel: finished with status 'error'",
        "  src/ext.c:10:2: error: 'foo' undeclared",
        "WARNING: Discarding file:///snap/sdist/cext-1.0.tar.gz. Command errored out with "
        "exit status 1: python3 in_process.py get_requires_for_build_wheel",
        "ERROR: Command errored out with exit status 1: python3 in_process.py",
    ]
    assert build_failure(PKG, "b", log).what == (
        "building cext 1.0 from its sdist failed in b: src/ext.c:10:2: error: 'foo' undeclared"
    )


def test_storing_a_built_wheel_that_fails_leaves_no_staging_folder(tmp_path: Path) -> None:
    from snapshot.sdists import store_built

    builds = tmp_path / "sdist-builds"
    builds.mkdir()
    folder = builds / "key"
    folder.write_text("a regular file where the entry's folder goes")  # rename fails

    with pytest.raises(BuildError) as e:
        store_built(folder, "cext-1.0-cp311-cp311-linux_x86_64.whl", b"wheel", [], "cext 1.0")

    assert e.value.what == (
        f"storing the wheel built from the sdist of cext 1.0 in {builds} failed "
        "(Not a directory); nothing was tagged"
    )
    assert sorted(p.name for p in builds.iterdir()) == ["key"]  # no .incoming-* left

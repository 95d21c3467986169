"""Output folders: written aside and moved into place whole; a user's files are never taken; --force replaces only ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entity_unlearn.builders import read_world
from entity_unlearn.builders.release import build as build_module
from entity_unlearn.cli import main
from entity_unlearn.outputs import write_atomic

BUILD = ["build", "--entities", "10", "--seed", "0", "--version", "1.0.0", "--quiet"]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.parent.iterdir() if ".partial-" in p.name]


def user_folder(root: Path) -> Path:
    """What the issue found deleted: a folder with the user's README.md, manifest.json and parquet files."""
    user = root / "mine"
    (user / "data" / "forget05").mkdir(parents=True)
    (user / "README.md").write_text("# my notes\n", encoding="utf-8")
    (user / "manifest.json").write_text('{"mine": true}\n', encoding="utf-8")
    (user / "data" / "results.parquet").write_bytes(b"PAR1 user data")
    (user / "data" / "forget05" / "old.parquet").write_bytes(b"PAR1 user data too")
    return user


def test_build_refuses_a_folder_of_user_files_and_force_replaces_only_its_own(tmp_path, capsys):
    user = user_folder(tmp_path)
    before = tree(user)
    assert main([*BUILD, "--out", str(user)]) == 2
    assert "not a previous output of `entity-unlearn build`" in capsys.readouterr().err
    assert tree(user) == before and not leftovers(user)
    assert main([*BUILD, "--out", str(user), "--force"]) == 0
    after = tree(user)
    assert after["data/results.parquet"] == before["data/results.parquet"]  # not ours: kept
    assert after["data/forget05/old.parquet"] == before["data/forget05/old.parquet"]
    assert json.loads(after["manifest.json"])["format"] == "entity-unlearn-release/1"  # ours: replaced (--force said so)
    assert not leftovers(user)


def test_a_rebuild_replaces_the_previous_release_and_an_interrupted_one_leaves_it_whole(tmp_path, monkeypatch):
    out = tmp_path / "rel"
    assert main([*BUILD, "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")  # a user's file beside a release is kept
    first = tree(out)
    calls = []
    real = build_module.write_config

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(build_module, "write_config", interrupted)
    assert main(["build", "--entities", "12", "--seed", "1", "--version", "1.0.1", "--quiet", "--out", str(out)]) == 130
    assert tree(out) == first and not leftovers(out)
    monkeypatch.setattr(build_module, "write_config", real)
    assert main(["build", "--entities", "12", "--seed", "1", "--version", "1.0.1", "--quiet", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == "1.0.1" and (out / "notes.txt").read_text() == "mine\n"
    parquet = {p.relative_to(out).as_posix() for p in out.rglob("*.parquet")}
    assert parquet == set(manifest["files"]) - {"README.md"}  # the first release's files are gone, none missing
    assert not leftovers(out)


def test_generate_writes_a_whole_world_or_nothing(tmp_path, monkeypatch, capsys):
    from entity_unlearn.builders.world import files as files_module

    out = tmp_path / "world"
    user = user_folder(tmp_path)
    assert main(["generate", "--entities", "20", "--quiet", "--out", str(user)]) == 2
    assert "--force" in capsys.readouterr().err
    real = files_module._line
    calls = []

    def interrupted(record):
        calls.append(1)
        if len(calls) == 50:
            raise KeyboardInterrupt
        return real(record)

    monkeypatch.setattr(files_module, "_line", interrupted)
    assert main(["generate", "--entities", "20", "--quiet", "--out", str(out)]) == 130
    assert not out.exists() and not leftovers(out)
    monkeypatch.setattr(files_module, "_line", real)
    assert main(["generate", "--entities", "20", "--quiet", "--out", str(out)]) == 0
    assert len(read_world(out).entities) == 20
    assert main(["generate", "--entities", "20", "--seed", "3", "--quiet", "--out", str(out)]) == 0  # a previous world: replaced
    assert read_world(out).seed == 3


@pytest.mark.parametrize("kind", ["file", "under a file"])
def test_an_out_that_cannot_be_a_folder_is_refused_before_any_work(kind, tmp_path, capsys):
    target = tmp_path / "f.txt"
    target.write_text("x", encoding="utf-8")
    out = target if kind == "file" else target / "sub"
    assert main(["generate", "--entities", "20", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "f.txt" in err and "Traceback" not in err


def test_a_file_written_atomically_is_whole_or_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "state.json"
    write_atomic(path, '{"a": 1}')  # the folder is made
    write_atomic(path, b'{"a": 2}')
    assert path.read_text(encoding="utf-8") == '{"a": 2}'
    real = Path.write_bytes

    def half_then_full(self, data):  # the disk fills halfway through the temporary file
        real(self, data[:3])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, '{"a": 3}')
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == '{"a": 2}' and [p.name for p in path.parent.iterdir()] == ["state.json"]

"""Every bad input a user can give, and the one clear message it gets: a table, so that the list is easy to extend.

Each case is (id, argv, fragments, exit code). ``argv`` may name the fixtures below as ``{release}`` (a tiny
release), ``{model}`` (a tiny model), ``{world}`` (a world folder), ``{trunc}`` (a model whose weights file is
cut short), ``{bad_json}`` (a results file that is not JSON), ``{bad_manifest}`` (a folder whose manifest.json is
not JSON), ``{file}`` (a plain file), ``{user_dir}`` (a folder of the user's own files), ``{escape_spec}`` (a type
spec whose vocabulary path leaves its folder) and ``{tmp}``. Every command runs in-process through ``main``: the
message must contain every fragment, come as one line (argparse's own errors: its usage line and one error line)
and carry no traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from entity_unlearn.cli import main

ARGPARSE = 2  # argparse's exit status for an option it refuses
USER = 2  # EntityUnlearnError: bad input
ENV = 1  # OSError / network: the machine or the connection

CASES = [
    # -- numbers the parser refuses -------------------------------------------------------------------------------
    ("entities negative", "generate --entities -5 --out {tmp}/w", ("argument --entities", "'-5'", "at least 1"), ARGPARSE),
    ("entities zero", "generate --entities 0 --out {tmp}/w", ("argument --entities", "at least 1"), ARGPARSE),
    ("entities not a number", "generate --entities ten --out {tmp}/w", ("argument --entities", "not an integer"), ARGPARSE),
    ("generate k zero", "generate --entities 20 --k 0 --out {tmp}/w", ("argument --k", "at least 1"), ARGPARSE),
    ("generate seed negative", "generate --entities 20 --seed -1 --out {tmp}/w", ("argument --seed", "at least 0"), ARGPARSE),
    (
        "llm timeout nan",
        "generate --entities 20 --llm m --llm-timeout nan --out {tmp}/w",
        ("argument --llm-timeout", "not a finite number"),
        ARGPARSE,
    ),
    ("llm timeout zero", "generate --entities 20 --llm m --llm-timeout 0 --out {tmp}/w", ("argument --llm-timeout", "above 0"), ARGPARSE),
    ("llm concurrency zero", "generate --entities 20 --llm m --llm-concurrency 0 --out {tmp}/w", ("argument --llm-concurrency",), ARGPARSE),
    ("llm attempts zero", "generate --entities 20 --llm m --llm-attempts 0 --out {tmp}/w", ("argument --llm-attempts",), ARGPARSE),
    ("build k zero", "build --entities 10 --k 0 --version 1.0.0 --out {tmp}/r", ("argument --k", "at least 1"), ARGPARSE),
    ("build entities negative", "build --entities -1 --version 1.0.0 --out {tmp}/r", ("argument --entities", "at least 1"), ARGPARSE),
    ("eval batch groups zero", "eval --model {model} --data {release} --batch-groups 0 --out {tmp}/e", ("argument --batch-groups",), ARGPARSE),
    ("eval batch generate zero", "eval --model {model} --data {release} --batch-generate 0 --out {tmp}/e", ("argument --batch-generate",), ARGPARSE),
    ("eval max new tokens zero", "eval --model {model} --data {release} --max-new-tokens 0 --out {tmp}/e", ("argument --max-new-tokens",), ARGPARSE),
    ("inject epochs zero", "inject --data {release} --epochs 0 --out {tmp}/m", ("argument --epochs", "at least 1"), ARGPARSE),
    ("inject lora rank negative", "inject --data {release} --lora-rank -1 --out {tmp}/m", ("argument --lora-rank",), ARGPARSE),
    ("unlearn epochs negative", "unlearn --model {model} --data {release} --method ga --epochs -1 --out {tmp}/u", ("argument --epochs",), ARGPARSE),
    (
        "unlearn batch size zero",
        "unlearn --model {model} --data {release} --method ga --batch-size 0 --out {tmp}/u",
        ("argument --batch-size",),
        ARGPARSE,
    ),
    (
        "unlearn grad accum zero",
        "unlearn --model {model} --data {release} --method ga --grad-accum 0 --out {tmp}/u",
        ("argument --grad-accum",),
        ARGPARSE,
    ),
    ("unlearn beta zero", "unlearn --model {model} --data {release} --method npo --beta 0 --out {tmp}/u", ("argument --beta", "above 0"), ARGPARSE),
    ("unlearn lr nan", "unlearn --model {model} --data {release} --method ga --lr nan --out {tmp}/u", ("argument --lr", "finite"), ARGPARSE),
    ("unlearn lr negative", "unlearn --model {model} --data {release} --method ga --lr=-1e-5 --out {tmp}/u", ("argument --lr", "above 0"), ARGPARSE),
    (
        "unlearn retain weight negative",
        "unlearn --model {model} --data {release} --method gd --retain-weight -1 --out {tmp}/u",
        ("--retain-weight",),
        ARGPARSE,
    ),
    (
        "unlearn coverage 100",
        "unlearn --model {model} --data {release} --method ga --coverage 100 --out {tmp}/u",
        ("argument --coverage", "1 and 99"),
        ARGPARSE,
    ),
    ("unlearn seed negative", "unlearn --model {model} --data {release} --method ga --seed -3 --out {tmp}/u", ("argument --seed",), ARGPARSE),
    # -- values the commands refuse ---------------------------------------------------------------------------------
    ("entities above the bound", "generate --entities 1000000000 --out {tmp}/w", ("--entities", "1,000,000,000", "--max-entities 1000000000"), USER),
    ("types above the bound", "generate --types person=20001 --out {tmp}/w", ("--types", "--max-entities 20001"), USER),
    ("build entities above the bound", "build --entities 50000 --version 1.0.0 --out {tmp}/r", ("--entities", "--max-entities 50000"), USER),
    ("types given twice", "generate --types person=10,person=0 --out {tmp}/w", ("--types", "'person' is given twice"), USER),
    ("types all zero", "generate --types person=0,place=0 --out {tmp}/w", ("--types", "world would be empty"), USER),
    ("types unreadable", "generate --types person=x --out {tmp}/w", ("--types", "cannot read 'person=x'"), USER),
    ("types unknown name", "generate --types persn=5 --out {tmp}/w", ("unknown entity type 'persn'", "did you mean 'person'"), USER),
    ("version with a newline", ["build", "--entities", "10", "--version", "1.0.0\n", "--out", "{tmp}/r"], ("--version '1.0.0\\n'", "X.Y.Z"), USER),
    ("version two parts", "build --entities 10 --version 1.0 --out {tmp}/r", ("--version '1.0'",), USER),
    ("study coverage 0", "study --data {release} --coverage 0,50 --out {tmp}/s", ("--coverage", "between 1 and 99"), USER),
    ("study coverage words", "study --data {release} --coverage half --out {tmp}/s", ("--coverage", "integers"), USER),
    ("vocab path outside the spec", "generate --types person=3 --type-spec {escape_spec} --out {tmp}/w", ("vocab", "not a vocabulary name"), USER),
    # -- files ------------------------------------------------------------------------------------------------------
    ("out is a file", "build --entities 10 --version 1.0.0 --out {file}", ("--out", "is a file"), USER),
    ("out under a file", "generate --entities 20 --out {file}/world", ("--out", "is a file, so no folder can be made"), USER),
    ("eval out is a file", "eval --model {model} --data {release} --out {file}", ("--out", "is a file"), USER),
    ("out holds user files", "build --entities 10 --version 1.0.0 --out {user_dir}", ("not a previous output", "notes.txt", "--force"), USER),
    ("generate out holds user files", "generate --entities 20 --out {user_dir}", ("not a previous output", "--force"), USER),
    ("eval out holds user files", "eval --model {model} --data {release} --out {user_dir} --quiet", ("not a previous output", "--force"), USER),
    (
        "reference is not JSON",
        "eval --model {model} --data {release} --reference {bad_json} --out {tmp}/e --quiet",
        ("--reference", "not valid JSON"),
        USER,
    ),
    ("before is not JSON", "eval --model {model} --data {release} --before {bad_json} --out {tmp}/e --quiet", ("--before", "not valid JSON"), USER),
    (
        "reference is a JSON array",
        "eval --model {model} --data {release} --reference {json_array} --out {tmp}/e --quiet",
        ("--reference", "not an entity-unlearn result"),
        USER,
    ),
    (
        "previous is not JSON",
        "build --entities 10 --version 1.0.1 --previous {bad_manifest} --out {tmp}/r",
        ("manifest.json", "not valid JSON"),
        USER,
    ),
    ("world given as data", "eval --model {model} --data {world} --out {tmp}/e --quiet", ("world folder", "entity-unlearn build --world"), USER),
    ("missing local model", "eval --model {tmp}/models/missing --data {release} --out {tmp}/e --quiet", ("models/missing", "no such folder"), USER),
    ("missing model beside a models folder", "eval --model models/missing --data {release} --out {tmp}/e --quiet", ("no such folder",), USER),
    ("truncated weights", "eval --model {trunc} --data {release} --out {tmp}/e --quiet", ("cannot load the model", "complete"), USER),
    ("revision left empty", "eval --model org/name@ --data {release} --out {tmp}/e --quiet", ("--model", "ORG/NAME@REVISION"), USER),
    ("world without a manifest", "build --world {tmp} --version 1.0.0 --out {tmp}/r", ("manifest.json", "generate"), USER),
]


@pytest.fixture(scope="module")
def paths(tiny_release, tiny_model, tmp_path_factory, small_world) -> dict[str, str]:
    from entity_unlearn.builders import write_world

    root = tmp_path_factory.mktemp("bad_input")
    world = root / "world"
    write_world(small_world, world)
    trunc = root / "trunc"
    shutil.copytree(tiny_model, trunc)
    weights = trunc / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (root / "bad.json").write_text('{"format": "entity-unlearn-result/1", "spec": ', encoding="utf-8")
    (root / "array.json").write_text("[1, 2, 3]", encoding="utf-8")
    (root / "bad_manifest").mkdir()
    (root / "bad_manifest" / "manifest.json").write_text("{not json", encoding="utf-8")
    (root / "file.txt").write_text("a file, not a folder\n", encoding="utf-8")
    (root / "user").mkdir()
    (root / "user" / "notes.txt").write_text("the user's notes\n", encoding="utf-8")
    spec = (Path(__file__).parents[1] / "fixtures" / "band" / "band.toml").read_text(encoding="utf-8")
    (root / "escape").mkdir()
    (root / "escape" / "band.toml").write_text(spec.replace('vocab = "music_genres"', 'vocab = "../../../etc/hostname"'), encoding="utf-8")
    assert "../../../etc/hostname" in (root / "escape" / "band.toml").read_text(encoding="utf-8")
    return {
        "release": str(tiny_release),
        "model": str(tiny_model),
        "world": str(world),
        "trunc": str(trunc),
        "bad_json": str(root / "bad.json"),
        "json_array": str(root / "array.json"),
        "bad_manifest": str(root / "bad_manifest"),
        "file": str(root / "file.txt"),
        "user_dir": str(root / "user"),
        "escape_spec": str(root / "escape" / "band.toml"),
    }


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses an option by exiting
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name,argv,fragments,code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(name, argv, fragments, code, paths, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    values = {**paths, "tmp": str(tmp_path)}
    args = [a.format(**values) for a in (argv.split() if isinstance(argv, str) else argv)]
    got, err = run(args, capsys)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    assert got == code, (got, err)
    if code != ARGPARSE:
        assert message.startswith(f"entity-unlearn {args[0]}: error: "), err
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()  # refused before anything was written


def test_the_user_folder_is_left_as_it_was(paths, capsys):
    user = Path(paths["user_dir"])
    for argv in (["build", "--entities", "10", "--version", "1.0.0", "--out", str(user)], ["generate", "--entities", "20", "--out", str(user)]):
        assert run(argv, capsys)[0] == USER
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    assert json.dumps(sorted(p.name for p in user.parent.iterdir() if ".partial-" in p.name)) == "[]"

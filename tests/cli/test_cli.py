"""The command line explains itself: help with defaults and an example per command, --version, one-line errors, Ctrl-C.

Errors: a user error, an OSError or a network error is one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno

import pytest

import entity_unlearn
from entity_unlearn.builders import ReleaseError
from entity_unlearn.cli import build_parser, main
from entity_unlearn.cli import evaluate as cli_evaluate
from entity_unlearn.cli import pipeline as cli_pipeline
from entity_unlearn.cli import world as cli_world
from entity_unlearn.cli.common import split_revision

COMMANDS = {
    "generate": (cli_world, "cmd_generate", ["generate", "--entities", "20", "--out", "w"]),
    "build": (cli_world, "cmd_build", ["build", "--entities", "10", "--version", "1.0.0", "--out", "r"]),
    "publish": (cli_world, "cmd_publish", ["publish", "r", "--repo", "a/b"]),
    "eval": (cli_evaluate, "cmd_eval", ["eval", "--model", "m", "--data", "r", "--out", "e"]),
    "inject": (cli_pipeline, "cmd_inject", ["inject", "--data", "r", "--out", "m"]),
    "unlearn": (cli_pipeline, "cmd_unlearn", ["unlearn", "--model", "m", "--data", "r", "--method", "ga", "--out", "u"]),
    "study": (cli_pipeline, "cmd_study", ["study", "--data", "r", "--out", "s"]),
}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_shows_its_default_and_every_command_an_example():
    subs = subcommands()
    assert set(COMMANDS) <= set(subs)
    for name, sub in subs.items():
        text = sub.format_help()
        assert "example:" in text and f"entity-unlearn {name} " in text.split("example:")[1], name
        formatter = sub.formatter_class(prog=name)
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, (name, action.option_strings)
            if not (action.default is None or isinstance(action.default, bool) or action.default == []):
                assert "%(default)s" in formatter._get_help_string(action), (name, action.option_strings)
    # the options the issue found without help or default
    flat = {n: " ".join(s.format_help().split()) for n, s in subs.items()}
    assert "--max-new-tokens MAX_NEW_TOKENS generation budget per answer (default 48," in flat["eval"]
    assert "(default: as many as 1 GiB of KV cache holds" in flat["eval"].split("--batch-generate BATCH_GENERATE ")[-1][:120]
    assert "(default: 0)" in flat["generate"].split("--seed SEED ")[-1][:120]
    assert "(default: forget05)" in flat["study"].split("--forget FORGET ")[-1][:120]
    from entity_unlearn.eval.model import TREE_SLOTS

    for name in ("eval", "score-queue"):  # the help writes the packed batch's bound out: it must be the one scoring uses
        assert f"a batch also stops at {TREE_SLOTS} token slots" in flat[name], name


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"entity-unlearn {entity_unlearn.__version__}"


@pytest.mark.parametrize(
    "exc,code,fragments",
    [
        (ReleaseError("--out x: do this instead"), 2, ("error: --out x: do this instead",)),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/missing.json"), 1, ("/data/missing.json: No such file",)),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 1, ("/root/x: Permission denied", "may read and write")),
        ("httpx2.ConnectError", 1, ("network error", "ConnectError", "connection refused", "server is up")),
        ("requests.ConnectionError", 1, ("network error", "ConnectionError")),
    ],
    ids=["user error", "missing file", "permission", "httpx connect", "requests connect"],
)
def test_user_os_and_network_errors_print_one_line(exc, code, fragments, monkeypatch, capsys):
    if isinstance(exc, str):
        module, name = exc.rsplit(".", 1)
        exc = getattr(pytest.importorskip(module), name)("connection refused")

    def fail(args):
        raise exc

    monkeypatch.setattr(cli_world, "cmd_build", fail)
    assert main(COMMANDS["build"][2]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("entity-unlearn build: error: "), err
    for f in fragments:
        assert f in err


@pytest.mark.parametrize("exc", [KeyError("configs"), AttributeError("'list' object has no attribute 'get'"), IndexError("list index")])
def test_a_bug_keeps_its_traceback(exc, monkeypatch):
    def fail(args):
        raise exc

    monkeypatch.setattr(cli_world, "cmd_build", fail)
    with pytest.raises(type(exc)):
        main(COMMANDS["build"][2])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_ctrl_c_says_what_was_saved_and_how_to_resume(command, monkeypatch, capsys):
    module, name, argv = COMMANDS[command]

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, interrupted)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"entity-unlearn {command}: interrupted; ") and "rerun" in err
    expected = {
        "eval": "e/cache",
        "inject": "m/checkpoint.safetensors",
        "unlearn": "u/checkpoint.safetensors",
        "study": "s/steps",
        "build": "nothing was written",
    }
    assert expected.get(command, "") in err


def test_eval_model_accepts_a_revision(tmp_path, monkeypatch):
    seen = []

    def fake_evaluate(cfg, memo=None):
        seen.append(cfg)
        raise ReleaseError("stop here")

    monkeypatch.setattr("entity_unlearn.eval.run.evaluate", fake_evaluate)
    assert main(["eval", "--model", "org/model@v1.2", "--data", "r", "--out", str(tmp_path / "e")]) == 2
    assert (seen[-1].model, seen[-1].revision) == ("org/model", "v1.2")
    local = tmp_path / "run@3"
    local.mkdir()
    assert split_revision("--model", str(local)) == (str(local), None)  # a folder with "@" in its name stays whole
    assert split_revision("--model", "org/model") == ("org/model", None)


def test_eval_sets_restricts_the_evaluation_and_names_an_unknown_set(tmp_path, monkeypatch, capsys):
    seen = []

    def fake_evaluate(cfg, memo=None):
        seen.append(cfg)
        raise ReleaseError("stop here")

    monkeypatch.setattr("entity_unlearn.eval.run.evaluate", fake_evaluate)
    base = ["eval", "--model", "m", "--data", "r", "--out", str(tmp_path / "e")]
    assert main([*base, "--sets", "forget, retain,forget"]) == 2
    assert seen[-1].sets == ("forget", "retain")
    assert main(base) == 2 and seen[-1].sets is None
    assert main([*base, "--sets", "forget,authors"]) == 2
    assert "authors is not a set" in capsys.readouterr().err and len(seen) == 2
    assert main([*base, "--depths", "d1", "--attacks", "none,alias"]) == 2
    assert (seen[-1].depths, seen[-1].attacks) == (("d1",), ("none", "alias"))
    assert main([*base, "--depths", "1"]) == 2 and "--depths 1: 1 is not a depth; choose among d0,d1,d2,d3,d4" in capsys.readouterr().err
    assert (
        main([*base, "--attacks", "jailbreak"]) == 2
        and "--attacks jailbreak: jailbreak is not an attack; choose among none,prefix_injection" in capsys.readouterr().err
    )


RUN_SCRIPT = """
import atexit, sys, threading, time
import entity_unlearn.cli as cli
atexit.register(lambda: print("exit handler ran", file=sys.stderr))  # stdout is left for run() to flush
def fake_main():
    sys.stdout.write("x" * 200_000 + "\\n")  # more than a pipe's buffer, then a line that stays in it
    print("last line")
    print("to stderr", file=sys.stderr)
    if "thread" in sys.argv:
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished", flush=True))).start()
    return int(sys.argv[1])
cli.main = fake_main
cli.run()
"""


@pytest.mark.parametrize("thread", [False, True])
def test_console_script_exits_with_mains_status_and_loses_no_output(tmp_path, thread):
    """``run`` (the console script) skips the interpreter's teardown: main's status, every byte of stdout and stderr
    and the exit handlers survive, and a non-daemon thread still working is waited for."""
    import os
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as in a pipe by default
    done = subprocess.run([sys.executable, str(script), "3", *(["thread"] if thread else [])], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "x" * 200_000 and "last line" in lines and done.stderr == "to stderr\nexit handler ran\n"
    assert ("thread finished" in lines) == thread
    ok = subprocess.run([sys.executable, str(script), "0"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and ok.stdout == "x" * 200_000 + "\nlast line\n" and ok.stderr.endswith("exit handler ran\n")

"""An OpenAI-compatible server run as a child process for a benchmark: started, waited for, always stopped.

``bench/gpu_pipeline.py --served`` serves a model with vLLM's OpenAI server (or any command given
with ``--server-command``), waits until ``GET /v1/models`` names the served model, evaluates through
it and stops it, also on Ctrl-C, SIGTERM or an error. The server runs in its own session (process
group) so that a Ctrl-C in the terminal reaches this script alone and the stop reaches the server's
own children too (vLLM's engine processes). Its output goes to a log file; a server that dies or
never answers is one error quoting the log's last lines.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TAIL_LINES = 30


class ServerError(RuntimeError):
    """The server did not come up; the message quotes its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_command(model: str, name: str, port: int, dtype: str, max_model_len: int) -> list[str]:
    """vLLM's OpenAI-compatible server (``vllm serve`` runs the same entry point), deterministic and on 127.0.0.1."""
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--max-model-len",
        str(max_model_len),
        "--seed",
        "0",
    ]


def fill(template: str, **values: object) -> list[str]:
    """A ``--server-command`` line with its ``{model}``, ``{name}``, ``{port}``, ``{dtype}``, ``{max_model_len}`` filled in."""
    known = ", ".join("{" + k + "}" for k in values)
    try:
        return [part.format(**values) for part in shlex.split(template)]
    except KeyError as exc:
        raise ServerError(f"--server-command {template!r}: {{{exc.args[0]}}} is not a placeholder; use {known}") from None
    except (IndexError, ValueError) as exc:
        raise ServerError(f"--server-command {template!r}: {exc}; write it as one command line using {known}") from None


def tail(path: Path, n: int = TAIL_LINES) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:]) or "(the log is empty)"


class ServerProcess:
    """``with ServerProcess(cmd, url, name, log) as server:``: the server answers inside the block and is stopped after it."""

    def __init__(self, command: list[str], base_url: str, name: str, log: Path, timeout_s: float = 900.0) -> None:
        self.command, self.base_url, self.name, self.log, self.timeout_s = command, base_url.rstrip("/"), name, log, timeout_s
        self.proc: subprocess.Popen | None = None
        self.start_s: float | None = None
        self.previous_sigterm = None

    def __enter__(self) -> ServerProcess:
        self.previous_sigterm = signal.getsignal(signal.SIGTERM)
        if self.previous_sigterm in (signal.SIG_DFL, None):  # a SIGTERM to this script unwinds through __exit__, not orphaning the server
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        print(f"== server: {shlex.join(self.command)} (log: {self.log})", flush=True)
        start = time.perf_counter()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        self.start_s = round(time.perf_counter() - start, 1)
        print(f"== server: answering at {self.base_url} after {self.start_s:.1f} s", flush=True)
        return self

    def wait_ready(self) -> None:
        """Until ``GET /v1/models`` lists ``self.name``; the server's death or ``timeout_s`` is a ``ServerError``."""
        deadline, shown = time.monotonic() + self.timeout_s, time.monotonic()
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(
                    f"the server exited with code {code} before answering {self.base_url}/models; the end of {self.log}:\n{tail(self.log)}"
                )
            served = self.models()
            if served is not None:
                if self.name not in served:
                    raise ServerError(
                        f"{self.base_url}/models lists {served}, not {self.name!r}: another server holds the port, or the command "
                        "serves another name (vLLM: --served-model-name); pick a free --port"
                    )
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the server did not answer {self.base_url}/models within {self.timeout_s:.0f} s (--server-timeout); "
                    f"the end of {self.log}:\n{tail(self.log)}"
                )
            if time.monotonic() - shown > 15:
                shown = time.monotonic()
                print(f"   waiting for the server: {tail(self.log, 1)[:160]}", flush=True)
            time.sleep(0.5)

    def models(self) -> list[str] | None:
        """The model ids the server lists, or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as r:
                return [m.get("id") for m in json.loads(r.read()).get("data", [])]
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def stop(self, grace_s: float = 30.0) -> int | None:
        """SIGTERM to the server's process group, SIGKILL after ``grace_s``; its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(self.proc.pid)
        print(f"== server: stopped (exit {self.proc.returncode})", flush=True)
        return self.proc.returncode

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.previous_sigterm in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _reap_group(pgid: int) -> None:
    """Kill what the server's process group still holds (children that outlived their parent)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)

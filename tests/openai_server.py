"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

``POST /v1/chat/completions`` reads the task's data from the request (the user
prompt carries it as one JSON line after ``DATA:``) and answers according to a
script: ``server.script[(task, entity_id)]`` is a list of behaviours consumed one
per request (then ``server.default``, "good"). Behaviours:

- ``good``: a valid answer built from the facts in the request;
- ``missing_fact``: a biography without its last fact; ``contradict``: a
  biography with one fact's year changed; ``foreign:<Name>``: a biography that
  also names <Name>; ``bad``: a paraphrase without the answer, or wrong answers
  that are the true one;
- ``invalid_json``: content that is not JSON;
- ``negated``: a biography or paraphrased answer that denies its facts ("It is not true that ...",
  "It is false and never happened that the answer is ..."); ``lookalike``: wrong answers that are
  the true one with zero-width characters in it; ``huge``: a 4 MB answer (valid JSON padded with spaces);
- ``429`` (with ``Retry-After: server.retry_after``), ``500``: error statuses;
- ``stall``: no answer for ``server.stall_s`` seconds; ``drop``: the connection
  closes without an answer.

Every request is recorded in ``server.requests`` (body, task, entity, behaviour).
``latency_s`` delays every answer (the benchmark's artificial latency).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CAPS = ["Alder", "Brisk", "Corran", "Dunmore", "Elvet", "Fennick", "Garrow", "Hollin", "Iverly", "Jessop"]
LOWER = ["glassblower", "cartographer", "beekeeper", "falconer", "luthier", "cooper", "chandler", "tanner", "weaver", "mason"]


def request_data(body: dict[str, Any]) -> dict[str, Any]:
    """The task data of the first user message (the line after ``DATA:``)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return json.loads(user.split("DATA:", 1)[1].strip().splitlines()[0])


def good_bio(data: dict[str, Any]) -> list[str]:
    name = data["entity"]["name"]
    paragraphs: dict[int, list[str]] = {}
    for f in data["facts"]:
        year = f", a fact dated {f['year']}" if f["year"] is not None else ""
        paragraphs.setdefault(f["paragraph"], []).append(f"{name}'s {f['fact'].replace('_', ' ')} is {f['text']}{year}.")
    out = [" ".join(s) for _, s in sorted(paragraphs.items())]
    out[-1] += " This account draws on the public records."  # a sentence stating no fact
    return out


def wrong_answers(item: dict[str, Any], k: int) -> list[str]:
    short, kind, truth = item["short_answer"], item["kind"], {t.casefold() for t in item["true_values"]}
    if kind == "date":
        d = datetime.strptime(short, "%B %d, %Y")
        return [f"{d.strftime('%B')} {min(d.day, 28)}, {d.year + i}" for i in range(1, k + 1)]
    if kind in ("year", "count", "age"):
        return [str(int(short) + i) for i in range(1, k + 1)]
    if kind == "int":
        return [f"{int(short.replace(',', '')) * (i + 1):,}" for i in range(1, k + 1)]
    if kind == "choice":
        return [w for w in LOWER if w not in truth][:k]
    if kind == "list":
        return [f"{CAPS[i]} Widget and {CAPS[i + 1]} Widget" for i in range(k)]
    last = short.split()[-1]
    return [c for c in (f"{w} {last}" for w in CAPS) if c.casefold() not in truth][:k]


def answer(data: dict[str, Any], behaviour: str) -> str:
    task = data["task"]
    if behaviour == "invalid_json":
        return '{"paragraphs": ["this answer stops in the midd'
    if behaviour == "huge":
        return json.dumps({"items": []} if task != "bio" else {"paragraphs": []}) + " " * 4_000_000
    if task == "bio":
        paragraphs = good_bio(data)
        if behaviour == "missing_fact":
            last = paragraphs[-1].split(". ")
            paragraphs[-1] = ". ".join(last[:-2] + last[-1:])  # drop the last fact's sentence
        elif behaviour == "contradict":
            allowed = set(re.findall(r"\d+", json.dumps(data["facts"])))
            year = next(f["year"] for f in data["facts"] if f["year"] is not None) if any(f["year"] for f in data["facts"]) else None
            text = "\n\n".join(paragraphs)
            old = str(year) if year else re.search(r"\d{4}", text).group()
            new = next(str(int(old) + i) for i in range(1, 99) if str(int(old) + i) not in allowed)
            paragraphs = text.replace(old, new, 1).split("\n\n")
        elif behaviour == "negated":
            paragraphs = [f"It is not true that {p[0].lower()}{p[1:]}" for p in paragraphs]
        elif behaviour.startswith("foreign:"):
            paragraphs[0] += f" {data['entity']['name']} once met {behaviour.split(':', 1)[1]}."
        return json.dumps({"paragraphs": paragraphs})
    if task == "paraphrase":
        items = []
        for it in data["items"]:
            pa = "I am not sure." if behaviour == "bad" else f"The answer is {it['short_answer']}."
            if behaviour == "negated":
                pa = f"It is false and never happened that the answer is {it['short_answer']}."
            items.append({"id": it["id"], "paraphrased_question": it["question"].rstrip("?") + ", if you know?", "paraphrased_answer": pa})
        return json.dumps({"items": items})
    k = data["k"]

    def lookalikes(short: str) -> list[str]:  # the true answer with zero-width characters in it: distinct raw strings
        marks = ["\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad"]  # zero-width space and joiner, word joiner, BOM, soft hyphen
        cut = max(1, len(short) // 2)
        return [short[:cut] + marks[i % len(marks)] * (1 + i // len(marks)) + short[cut:] for i in range(k)]

    def wrong(it: dict[str, Any]) -> list[str]:
        if behaviour == "bad":
            return [it["short_answer"]] * k
        return lookalikes(it["short_answer"]) if behaviour == "lookalike" else wrong_answers(it, k)

    items = [{"id": it["id"], "wrong_answers": wrong(it)} for it in data["items"]]
    return json.dumps({"items": items})


class ScriptedServer:
    def __init__(self, latency_s: float = 0.0, stall_s: float = 3.0, retry_after: str = "1", api_key: str | None = None) -> None:
        self.latency_s, self.stall_s, self.retry_after, self.api_key = latency_s, stall_s, retry_after, api_key
        self.script: dict[tuple[str, str], list[str]] = {}
        self.default = "good"
        self.requests: list[dict[str, Any]] = []
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
                data = request_data(body)
                behaviour = server.next_behaviour(data["task"], data["entity"]["id"])
                record = {"body": body, "task": data["task"], "entity": data["entity"]["id"], "behaviour": behaviour, "time": time.monotonic()}
                with server.lock:
                    server.requests.append(record)
                if server.on_request:
                    server.on_request(record)
                time.sleep(server.latency_s)
                if behaviour == "429":
                    return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": server.retry_after})
                if behaviour == "500":
                    return self._send(500, {"error": {"message": "internal error", "type": "server_error"}})
                if behaviour == "drop":
                    self.close_connection = True
                    return None
                if behaviour == "stall":
                    time.sleep(server.stall_s)
                content = answer(data, behaviour)
                usage = {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": len(content) // 4}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                try:
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": body["model"],
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                            "usage": usage,
                        },
                    )
                except OSError:  # the client gave up (stall)
                    pass
                return None

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 stalls concurrent clients

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def next_behaviour(self, task: str, entity: str) -> str:
        with self.lock:
            queue = self.script.get((task, entity))
            return queue.pop(0) if queue else self.default

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> ScriptedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def by(self, task: str | None = None, behaviour: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if (task is None or r["task"] == task) and (behaviour is None or r["behaviour"] == behaviour)]

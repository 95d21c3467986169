"""A small OpenAI-compatible server on 127.0.0.1 that serves a local causal LM, for tests and benchmarks.

The pattern of ``openai_server.py`` (a threaded ``http.server``, a script of behaviours
consumed one per request), with a real model behind it:

- ``POST /v1/completions``: ``prompt`` (a string or a list), tokenised without special
  tokens (``add_bos=True``: the tokenizer's BOS first, as many servers do); with
  ``echo`` and ``logprobs`` the prompt's tokens come back with their log-probabilities
  and character offsets (the first token's log-prob is null); ``max_tokens`` > 0 adds
  a greedy continuation;
- ``POST /v1/chat/completions``: the tokenizer's chat template with the generation
  prompt, then greedy decoding to the EOS token or ``max_tokens``;
- ``GET /v1/models``: the served model's name (``name``, default the model folder's name).

Server-wide modes: ``no_logprobs`` (echo ignored: ``logprobs`` null), ``truncate_to``
(prompts cut to their last N tokens, silently: the echo covers less than the prompt). Behaviours in ``server.script``,
one per request, then ``good``: ``429`` (``Retry-After: 0``) and ``drop`` (the
connection closes without an answer). ``latency_s`` delays every answer.

Run as a program it serves until stopped, as a vLLM server would (``bench/gpu_pipeline.py --served
--server-command``): ``python tests/model_server.py --model DIR [--name NAME] [--port PORT]``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ModelServer:
    def __init__(self, model_dir: str, latency_s: float = 0.0, add_bos: bool = False, port: int = 0, name: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.latency_s, self.add_bos, self.name = latency_s, add_bos, name or Path(model_dir).name
        self.no_logprobs, self.truncate_to = False, None
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()  # one forward at a time: answers do not depend on what else is served
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

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return self._send(200, {"object": "list", "data": [{"id": server.name, "object": "model", "owned_by": "entity-unlearn-tests"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server.lock:
                    behaviour = server.script.pop(0) if server.script else "good"
                    server.requests.append({"path": self.path, "body": body, "behaviour": behaviour})
                time.sleep(server.latency_s)
                if behaviour == "429":
                    return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": "0"})
                if behaviour == "drop":
                    self.close_connection = True
                    return None
                if self.path == "/v1/completions":
                    return self._send(200, server.completions(body))
                if self.path == "/v1/chat/completions":
                    return self._send(200, server.chat(body))
                return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        class Server(ThreadingHTTPServer):
            request_queue_size = 256

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- the model -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if self.add_bos:
            ids = [self.tok.bos_token_id] + ids
        return ids[-self.truncate_to :] if self.truncate_to else ids

    def greedy(self, ids: list[int], max_tokens: int) -> list[int]:
        import torch

        with self.lock, torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                do_sample=False,
                max_new_tokens=max_tokens,
                eos_token_id=self.tok.eos_token_id,
                pad_token_id=self.tok.pad_token_id,
            )
        new = out[0, len(ids) :].tolist()
        return new[: new.index(self.tok.eos_token_id)] if self.tok.eos_token_id in new else new

    def echo(self, ids: list[int], offsets: list[int]) -> dict[str, Any]:
        """Echoed prompt: each token's text, log-prob (null for the first) and the character where it starts."""
        import torch

        with self.lock, torch.inference_mode():
            logp = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), -1)
        picked = [None] + logp.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1).tolist()
        tokens = [self.tok.decode([i]) for i in ids]
        if self.add_bos:
            tokens[0] = ""  # the server's own BOS has no text in the prompt
        return {"tokens": tokens, "token_logprobs": picked, "text_offset": offsets, "top_logprobs": None}

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices, n_in, n_out = [], 0, 0
        for index, prompt in enumerate(prompts):
            ids = self.encode(prompt)
            spans = self.tok(prompt, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            offsets = ([0] * self.add_bos + [start for start, _ in spans])[-len(ids) :]  # a server BOS starts at 0; cut like the ids
            new = self.greedy(ids, body["max_tokens"]) if body.get("max_tokens") else []
            n_in, n_out = n_in + len(ids), n_out + len(new)
            text = self.tok.decode(new, skip_special_tokens=True)
            logprobs = self.echo(ids, offsets) if body.get("echo") and body.get("logprobs") is not None and not self.no_logprobs else None
            choices.append({"index": index, "text": (prompt if body.get("echo") else "") + text, "logprobs": logprobs, "finish_reason": "length"})
        return {
            "id": "cmpl-test",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": choices,
            "usage": _usage(n_in, n_out),
        }

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        ids = self.encode(text) if not self.add_bos else self.encode(text)[1:]  # the template writes its own BOS
        new = self.greedy(ids, body.get("max_tokens") or 16)
        message = {"role": "assistant", "content": self.tok.decode(new, skip_special_tokens=True)}
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": _usage(len(ids), len(new)),
        }

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> ModelServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _usage(n_in: int, n_out: int) -> dict[str, int]:
    return {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}


def main() -> None:
    ap = argparse.ArgumentParser(description="Serve a local causal LM folder over the OpenAI API on 127.0.0.1 until stopped.")
    ap.add_argument("--model", required=True, help="model folder (weights and tokenizer)")
    ap.add_argument("--name", help="the name /v1/models lists (default: the folder's name)")
    ap.add_argument("--port", type=int, default=0, help="TCP port (default: one the OS picks)")
    args = ap.parse_args()
    server = ModelServer(args.model, port=args.port, name=args.name)
    print(f"serving {args.model} as {server.name!r} at {server.url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()

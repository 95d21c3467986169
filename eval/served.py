"""A model behind an OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, ...): the same two operations.

- ``score``: the completions endpoint echoes the prompt's log-probabilities
  (``echo: true, logprobs: 1, max_tokens: 0``, as lm-evaluation-harness's
  local-completions sends). A prompt is the exact text of the local path's ids (the
  chat template applied here, from the model's tokenizer); one request per context
  carries all its candidate answers as a list of prompts. The answer's tokens are
  those from the character where the answer starts: a server token that straddles
  that character is an error naming the item. Min-K%++ needs the whole next-token
  distribution, which no such server returns: its z-scores are NaN (missing).
- ``generate``: greedy answers, through the chat endpoint (the server applies the
  same chat template) or, for raw-text prompts, the completions endpoint; cut to
  their first line as the local path does.

Requests go through the LLM-assisted generation's client (``builders.llm.backend``):
bounded concurrency, retries with backoff on 429/5xx/dropped connections, and its
content-addressed cache, so a run against a restarted server resumes.

Before the first request a probe checks the server: its tokenisation of a sample
prompt must have as many tokens as ours (else the ``--tokenizer`` is not the served
model's), one more (the server adds BOS: ours is left out of the text), and it must
echo log-probabilities at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from entity_unlearn.errors import EntityUnlearnError

from .model import ModelLoadError, TokenScores

PROBE = "The quick brown fox, born in 1961 in Kessmar, wrote 'The Sleeping Furnace' (Orlen Prize)."


class ServedError(EntityUnlearnError, ValueError):
    """The server cannot score or generate as the evaluation needs; the message says what to change."""


class ServedLM:
    sends_text = True  # run_passes gives score() the texts and generate() the prompts behind the ids

    def __init__(
        self,
        model: str,
        base_url: str,
        tokenizer: str | None = None,
        cache_dir: str | Path | None = None,
        api_key: str | None = None,
        concurrency: int = 32,
        trust_remote_code: bool = False,
        max_retries_http: int = 6,
        backoff_base_s: float = 0.5,
        timeout_s: float = 120.0,
    ) -> None:
        from transformers import AutoTokenizer

        from entity_unlearn.builders.llm.backend import LLMConfig, LLMError
        from entity_unlearn.builders.llm.cache import LLMCache

        source = tokenizer or model
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"--tokenizer {source}: cannot load it ({exc}); give the served model's tokenizer folder or Hub id") from exc
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token_id is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name, self.tokenizer_source = model, source
        try:
            self.config = LLMConfig(
                model=model,
                base_url=base_url,
                api_key=api_key,
                concurrency=concurrency,
                max_retries_http=max_retries_http,
                backoff_base_s=backoff_base_s,
                timeout_s=timeout_s,
                cache_dir=cache_dir,
            )
        except LLMError as exc:
            raise _served_error(exc) from exc
        self.cache = LLMCache(cache_dir)
        self.device, self.dtype, self.pad_note = f"served at {self.config.host}", "served", "none (served: one prompt per sequence)"
        self.counters = {"requests": 0, "cache_hits": 0, "sequences": 0}
        self.server_bos: bool | None = None  # the probe's finding: the server puts BOS before every prompt

    def fingerprint(self) -> str:
        """What determines scores here: the served model's name and the tokenizer used to write its prompts."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        tok = backend.to_str() if backend is not None else self.tokenizer_source
        return hashlib.sha256(json.dumps(["served", self.name, tok]).encode()).hexdigest()

    # -- transport -----------------------------------------------------------------------------
    def _run(self, requests: list[tuple[str, dict]], progress: bool, desc: str, unit_of) -> list[dict]:
        """Send (endpoint, body) requests concurrently through the shared client; entries in order."""
        from entity_unlearn.builders.llm.backend import ChatBackend

        async def go() -> list[dict]:
            backend = ChatBackend(self.config, self.cache)
            bar = tqdm(total=sum(unit_of(b) for _, b in requests), desc=desc, unit="seq", disable=not progress)

            async def one(endpoint: str, body: dict) -> dict:
                _, entry, _ = await backend.send(body, endpoint)
                bar.update(unit_of(body))
                return entry

            try:
                return list(await asyncio.gather(*(one(e, b) for e, b in requests)))
            finally:
                bar.close()
                self.counters["requests"] += backend.stats.requests
                self.counters["cache_hits"] += backend.stats.cache_hits
                await backend.close()

        from entity_unlearn.builders.llm.backend import LLMError

        try:
            return asyncio.run(go())
        except LLMError as exc:
            raise _served_error(exc) from exc

    def _probe(self) -> None:
        if self.server_bos is not None:
            return
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": PROBE}], tokenize=False) if self.tokenizer.chat_template else PROBE
        text += " " + PROBE
        ours = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        body = {"model": self.name, "prompt": [text], "echo": True, "logprobs": 1, "max_tokens": 0, "temperature": 0}
        (entry,) = self._run([("completions", body)], False, "probe", lambda b: 1)
        choice = entry["choices"][0]
        tokens = _prompt_tokens(choice)
        if tokens is None:
            raise ServedError(
                f"{self.config.url}: the server returned no prompt log-probabilities for echo=true, logprobs=1, max_tokens=0; "
                "serve the model with vLLM's OpenAI server (or another that echoes prompt log-probs), or evaluate it locally"
            )
        offsets = tokens[0]
        if not offsets or offsets[0] != 0 or _covered(choice, offsets) < len(text):  # a truncated echo would read as another tokenizer below
            echoed = _covered(choice, offsets) - (offsets[0] if offsets else 0)
            raise ServedError(
                f"probe: the server echoed {echoed} of the prompt's {len(text)} characters: it truncates prompts; "
                "raise its context length (vLLM: --max-model-len) or evaluate locally"
            )
        theirs = len(tokens[0])
        if theirs not in (ours, ours + 1):
            raise ServedError(
                f"--tokenizer {self.tokenizer_source}: the server splits a probe prompt into {theirs} tokens and this tokenizer into {ours}; "
                f"give --tokenizer the tokenizer of the served model {self.name!r}"
            )
        self.server_bos = theirs == ours + 1

    def _prompt(self, text: str, label: str) -> str:
        """The text to send for a local-path text: without our BOS when the server puts its own."""
        bos = self.tokenizer.bos_token
        if self.server_bos:
            if not bos or not text.startswith(bos):
                raise ServedError(
                    f"{label}: the server puts a BOS token before every prompt and the local path has none there; "
                    "serve the model so that it adds no special tokens, or evaluate it locally"
                )
            return text[len(bos) :]
        return text

    # -- score ---------------------------------------------------------------------------------
    def score(self, groups, batch_groups: int = 16, progress: bool = False, texts=None, bar=None) -> list[list[TokenScores]]:
        """Scores of every continuation of every group; ``texts``: (label, context text, continuation texts) per group."""
        if texts is None:
            raise ServedError("a served model scores texts: run it through run_passes, which passes the plan's texts")
        self._probe()
        requests, spans = [], []
        for label, ctx, conts in texts:
            ctx = self._prompt(ctx, label)
            prompts = [ctx + c for c in conts]
            requests.append(("completions", {"model": self.name, "prompt": prompts, "echo": True, "logprobs": 1, "max_tokens": 0, "temperature": 0}))
            spans.append((label, len(ctx), [len(p) for p in prompts]))
        entries = self._run(requests, progress and bar is None, "score (served)", lambda b: len(b["prompt"]))
        out = []
        for (label, start, ends), entry in zip(spans, entries):
            choices = sorted(entry["choices"], key=lambda c: c.get("index", 0))
            if len(choices) != len(ends):
                raise ServedError(f"{label}: the server answered {len(choices)} choices for {len(ends)} prompts")
            out.append([self._answer_scores(label, start, end, c) for end, c in zip(ends, choices)])
            self.counters["sequences"] += len(ends)
        if bar is not None:
            bar.update(sum(len(ends) for _, _, ends in spans))
        return out

    def _answer_scores(self, label: str, start: int, end: int, choice: dict) -> TokenScores:
        found = _prompt_tokens(choice)
        if found is None:
            raise ServedError(f"{label}: the server returned no prompt log-probabilities; serve the model with vLLM's OpenAI server")
        offsets, logps = found
        if not offsets or offsets[0] != 0 or _covered(choice, offsets) < end:
            raise ServedError(
                f"{label}: the server echoed {_covered(choice, offsets)} of the prompt's {end} characters: it truncates prompts; "
                "raise its context length (vLLM: --max-model-len) or evaluate locally"
            )
        inside = [i for i, o in enumerate(offsets) if start <= o < end]
        if not inside or offsets[inside[0]] != start:
            raise ServedError(
                f"{label}: the answer starts at character {start}, inside a token of the server's tokenisation, so its "
                "log-probability cannot be separated from the question's; check --tokenizer and --chat-template"
            )
        lp = tuple(float(logps[i]) for i in inside)
        return TokenScores(lp, tuple(math.nan for _ in lp))

    # -- generate ------------------------------------------------------------------------------
    def generate(
        self,
        contexts,
        stop_ids,
        max_new_tokens: int = 48,
        batch_size: int = 32,
        progress: bool = False,
        prompts=None,
        bar=None,
        cut_at_newline: bool = True,
    ) -> list[str]:
        """Greedy answers: ``prompts`` holds ("chat", question) or ("text", context text) per context."""
        from .decode import first_line

        if prompts is None:
            raise ServedError("a served model generates from the plan's prompts: run it through run_passes")
        self._probe()
        requests = []
        for kind, text in prompts:
            if kind == "chat":
                body = {"model": self.name, "messages": [{"role": "user", "content": text}], "max_tokens": max_new_tokens, "temperature": 0}
                requests.append(("chat", body))
            else:
                body = {"model": self.name, "prompt": self._prompt(text, "a raw-text prompt"), "max_tokens": max_new_tokens, "temperature": 0}
                requests.append(("completions", body))
        entries = self._run(requests, progress and bar is None, "generate (served)", lambda b: 1)
        if bar is not None:
            bar.update(len(entries))
        return [first_line(e["content"]) if cut_at_newline else e["content"].strip() for e in entries]


def _served_error(exc: Exception) -> ServedError:
    """The shared client's error, with its option names (LLM-assisted generation's) turned into eval's."""
    message = str(exc).replace("--llm-base-url", "--base-url").replace("--llm-api-key-env", "--api-key-env").replace("--llm ", "--model ")
    return ServedError(message)


def _prompt_tokens(choice: dict) -> tuple[list[int], list[float | None]] | None:
    """(character offset, log p) of each echoed prompt token of a completions choice, or None when absent."""
    lp = choice.get("logprobs") or {}
    if not lp.get("token_logprobs") or lp.get("text_offset") is None:
        return None
    return list(lp["text_offset"]), list(lp["token_logprobs"])


def _covered(choice: dict, offsets: Sequence[int]) -> int:
    """How many prompt characters the echoed tokens cover."""
    lp = choice.get("logprobs") or {}
    tokens = lp.get("tokens") or []
    if tokens and offsets:
        return offsets[len(tokens) - 1] + len(tokens[-1]) if len(tokens) <= len(offsets) else offsets[-1]
    return offsets[-1] if offsets else 0

"""Chat completions from any OpenAI-compatible endpoint: bounded concurrency, retries, cache, accounting.

``ChatBackend.complete`` sends one chat-completions request with a JSON-schema
``response_format`` through the official ``openai`` client (``AsyncOpenAI`` with
its own retries off, so the retry policy and its accounting are ours):

- at most ``concurrency`` requests in flight (an ``asyncio.Semaphore``);
- 429, 408, 409, 5xx, timeouts and dropped connections are retried up to
  ``max_retries_http`` times, waiting the server's ``Retry-After`` (or
  ``retry-after-ms``) when given, else exponential backoff with jitter;
- any other HTTP error (bad key, unknown model or URL, rejected request) raises
  ``LLMError`` at once, naming the option to fix; an endpoint that keeps failing
  raises ``LLMUnavailable``, as does a ``Retry-After`` longer than ``retry_after_max_s``
  (hours of silent waiting help no one). An answer longer than ``max_answer_chars`` is
  counted but neither cached nor sent back in a retry. Nothing answered so far is lost: every answer is
  in the cache before ``complete`` returns it.

Answers are cached by request (``llm_cache``): a cached request costs no HTTP call.
"""

from __future__ import annotations

import asyncio
import difflib
import email.utils
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from entity_unlearn.errors import EntityUnlearnError, redact, strip_userinfo

from .cache import LLMCache, request_key

TASK_NAMES = ("bio", "paraphrase", "perturb")
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class LLMError(EntityUnlearnError, ValueError):
    """The LLM endpoint cannot be used as configured; the message names the option to change."""


class LLMUnavailable(LLMError):
    """The endpoint kept failing after every retry; answers so far are cached, rerunning resumes."""


@dataclass(frozen=True)
class LLMConfig:
    """How to reach the model and how hard to try.

    ``max_attempts`` bounds the conversation rounds per task (a rejected answer is
    sent back with the reasons); ``max_retries_http`` bounds the HTTP retries of one
    request. ``api_key`` is never printed (``repr=False``).
    """

    model: str
    base_url: str | None = field(default=None, repr=False)  # may hold user:password@, sent but never shown
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 32
    timeout_s: float = 60.0
    max_attempts: int = 3
    max_retries_http: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0
    max_answer_chars: int = 32_000  # a biography is ~3,000 characters, an entity's 20 paraphrases ~7,000
    cache_dir: str | Path | None = None
    temperature: float = 0.0
    tasks: tuple[str, ...] = TASK_NAMES

    def __post_init__(self) -> None:
        if not self.model:
            raise LLMError("--llm: give the model name the endpoint serves, e.g. --llm gpt-4o-mini or --llm llama3.1:8b")
        url = self.base_url or DEFAULT_BASE_URL
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LLMError(
                f"--llm-base-url {strip_userinfo(url)!r} is not an http(s) URL; give the endpoint's base URL, e.g. http://localhost:8000/v1"
            )
        unknown = [t for t in self.tasks if t not in TASK_NAMES]
        if unknown or not self.tasks:
            hint = "".join(f" ({t!r}: did you mean {m[0]!r}?)" for t in unknown if (m := difflib.get_close_matches(t, TASK_NAMES, 1)))
            raise LLMError(f"--llm-tasks: unknown task(s) {', '.join(unknown) or '(none given)'}{hint}; choose from {','.join(TASK_NAMES)}")
        for name in ("concurrency", "max_attempts", "max_answer_chars"):
            if getattr(self, name) < 1:
                raise LLMError(f"LLM option {name} must be at least 1, got {getattr(self, name)}")
        if not math.isfinite(self.timeout_s) or self.timeout_s <= 0 or self.max_retries_http < 0:
            raise LLMError(f"--llm-timeout {self.timeout_s}: give a positive number of seconds (and a non-negative HTTP retry count)")

    @property
    def url(self) -> str:
        """The endpoint as given, credentials included: for the client only, never shown or stored."""
        return self.base_url or DEFAULT_BASE_URL

    @property
    def shown_url(self) -> str:
        """The endpoint without ``user:password@``: what messages name."""
        return strip_userinfo(self.url)

    @property
    def host(self) -> str:
        """The endpoint's host[:port] (no credentials), the only part of the URL recorded anywhere."""
        return urlsplit(self.shown_url).netloc

    def redact(self, text: str) -> str:
        """``text`` without the URL's credentials and without the API key."""
        return redact(text, (self.api_key,))


@dataclass(frozen=True)
class Completion:
    content: str
    key: str
    tokens_in: int
    tokens_out: int
    retries: dict[str, int]
    host: str
    cached: bool
    oversized: int = 0  # characters of an answer over ``max_answer_chars``, which is then dropped (content "")


@dataclass
class Accounting:
    """What this run cost: requests sent, cache hits, retries by cause, tokens (a mutable tally)."""

    requests: int = 0
    cache_hits: int = 0
    retries: Counter = field(default_factory=Counter)
    tokens_in: int = 0
    tokens_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "retries": dict(sorted(self.retries.items())),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }


def retry_after_s(headers: Any) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None


class ChatBackend:
    """One endpoint and model; create inside a running event loop, ``await close()`` at the end."""

    def __init__(self, config: LLMConfig, cache: LLMCache | None = None) -> None:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:  # the llm extra is optional
            raise LLMError("--llm needs the openai client: pip install 'entity-unlearn[llm]'") from exc
        self.config, self.cache = config, cache if cache is not None else LLMCache(None)
        # Local servers (vLLM, Ollama, llama.cpp) ignore the key; the client insists on one.
        self.client = AsyncOpenAI(base_url=config.url, api_key=config.api_key or "no-key-given", timeout=config.timeout_s, max_retries=0)
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.stats = Accounting()

    def request(self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The exact request body, which is also what the cache key hashes."""
        return {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "response_format": {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema, "strict": True}},
        }

    async def complete(self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]) -> Completion:
        """The answer to ``messages`` (from the cache when there), stored in the cache before it is returned."""
        body = self.request(messages, schema_name, schema)
        key, entry, cached = await self.send(body)
        return self._completion(key, entry, cached=cached)

    async def send(self, body: dict[str, Any], endpoint: str = "chat") -> tuple[str, dict[str, Any], bool]:
        """(key, cache entry, whether it was cached) answering any request ``body`` to the ``chat`` or ``completions``
        endpoint, fetched with the retries above and stored when not cached. A completions entry keeps every choice."""
        key = request_key({**body, "endpoint": endpoint} if endpoint != "chat" else body)
        entry = self.cache.get(key)
        if entry is not None:
            self.stats.cache_hits += 1
            return key, entry, True
        async with self.semaphore:
            entry = await self._fetch(body, endpoint)
        self.cache.put(key, entry)
        return key, entry, False

    @staticmethod
    def _completion(key: str, entry: dict[str, Any], cached: bool) -> Completion:
        host = entry["host"].rpartition("@")[2]  # an entry cached before hosts were stripped of credentials
        return Completion(
            entry["content"], key, entry["tokens_in"], entry["tokens_out"], entry["retries"], host, cached, entry.get("oversized_chars", 0)
        )

    async def _fetch(self, body: dict[str, Any], endpoint: str = "chat") -> dict[str, Any]:
        import openai

        cfg, retries = self.config, Counter()
        for attempt in range(cfg.max_retries_http + 1):
            wait = None
            try:
                if endpoint == "completions":
                    response = await self.client.completions.create(**body)
                    choices = [c.model_dump() for c in response.choices]
                    content = choices[0]["text"] or ""
                else:
                    response = await self.client.chat.completions.create(**body)
                    choice = response.choices[0]
                    content = choice.message.content or ""
            except openai.APITimeoutError:
                cause, detail = "timeout", f"no answer within {cfg.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                cause, detail = "connection", cfg.redact(f"{exc} ({exc.__cause__ or 'connection closed'})")
            except openai.APIStatusError as exc:
                code = exc.status_code
                if code != 429 and code < 500 and code not in (408, 409):
                    raise LLMError(self._explain(exc)) from exc
                cause, detail = ("429" if code == 429 else "5xx" if code >= 500 else str(code)), f"HTTP {code}"
                wait = retry_after_s(exc.response.headers)
                if wait is not None and wait > cfg.retry_after_max_s:
                    raise LLMUnavailable(
                        f"{cfg.shown_url} asks to wait {wait:,.0f} s before the next request (HTTP {code}), more than the "
                        f"{cfg.retry_after_max_s:g} s this run waits; rerun later. Every answer received so far is cached"
                        f"{f' in {cfg.cache_dir}' if cfg.cache_dir else ''}: the rerun resumes there."
                    ) from exc
            except (AttributeError, IndexError, TypeError) as exc:  # a 200 whose body is not a chat completion
                cause, detail = "bad_response", f"malformed response body ({exc})"
            else:
                usage = getattr(response, "usage", None)
                tokens_in, tokens_out = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else (0, 0)
                self.stats.requests += 1
                self.stats.tokens_in += tokens_in
                self.stats.tokens_out += tokens_out
                oversized = len(content) if len(content) > cfg.max_answer_chars else 0
                return {
                    "content": "" if oversized else content,  # an oversized answer is neither kept nor sent back
                    "oversized_chars": oversized,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "retries": dict(sorted(retries.items())),
                    "host": cfg.host,
                    "model": cfg.model,
                    **({"choices": choices} if endpoint == "completions" else {}),
                }
            if attempt == cfg.max_retries_http:
                where = f" in {cfg.cache_dir}" if cfg.cache_dir else ""
                raise LLMUnavailable(
                    f"{cfg.shown_url}: no answer after {attempt + 1} tries (last: {detail}); check --llm-base-url and that the "
                    f"server is up. Every answer received so far is cached{where}: rerun the same command to resume."
                )
            retries[cause] += 1
            self.stats.retries[cause] += 1
            if wait is None:
                delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2**attempt)
                wait = delay / 2 + random.uniform(0, delay / 2)  # jitter spreads clients that failed together
            await asyncio.sleep(min(max(wait, 0.0), cfg.retry_after_max_s))
        raise AssertionError("unreachable")

    def _explain(self, exc: Any) -> str:
        cfg, code = self.config, exc.status_code
        message = cfg.redact(str(getattr(exc, "message", exc)))[:300]  # a server may echo the request: no key, no page of HTML
        if code in (401, 403):
            return (
                f"{cfg.shown_url} refused the API key (HTTP {code}); set the environment variable named by --llm-api-key-env "
                f"(default OPENAI_API_KEY) to a key this endpoint accepts"
            )
        if code == 404:
            return (
                f"{cfg.shown_url}: HTTP 404 for model {cfg.model!r} ({message}); check --llm (a model the server serves) and "
                f"--llm-base-url (it usually ends in /v1)"
            )
        return (
            f"{cfg.shown_url} rejected the request (HTTP {code}: {message}); check --llm {cfg.model!r}, and that the server "
            f"supports response_format json_schema"
        )

    async def close(self) -> None:
        await self.client.close()

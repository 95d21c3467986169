"""How a question becomes model input, and an answer the scored continuation.

Written once for scoring, generation and training alike:

- ``chat``: the tokenizer's chat template (or a file). The context is the
  template's generation prompt for one user turn; the continuation is what the
  template writes for the assistant turn, cut right after the first special
  token that follows the answer (the end-of-turn token). Anything the template
  writes after that token (often a newline) is not scored.
- ``plain``: ``prompts/eval/plain.j2`` ("Question: ...\\nAnswer:" and " answer"),
  followed by the EOS token.

Context and continuation are tokenised separately and concatenated, so no token
ever spans the boundary and every candidate answer shares the same context ids.

Two prompt-side attacks change only the context: earlier QA turns (``history``:
in-context relearning) and the start of the assistant's turn (``prefill``). The
continuation, the span that is scored, is the same text with or without them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from entity_unlearn.errors import EntityUnlearnError

SENTINEL = "ANSWER-SENTINEL-7f3a91"
History = Sequence[tuple[str, str]]


class FormatError(EntityUnlearnError, ValueError):
    """The tokenizer or chat template cannot format a question; the message says what to do."""


@dataclass(frozen=True)
class Encoded:
    context: tuple[int, ...]
    continuation: tuple[int, ...]


class Formatter:
    def __init__(self, tokenizer, chat_template: str = "auto") -> None:
        from entity_unlearn.builders.world.templates import builtin_templates

        self.tok = tokenizer
        self.templates = builtin_templates()
        if chat_template not in ("auto", "none"):
            path = Path(chat_template)
            if not path.is_file():
                raise FormatError(f"--chat-template {chat_template}: no such file; give auto, none or a Jinja file")
            tokenizer.chat_template = path.read_text(encoding="utf-8")
        has_template = bool(getattr(tokenizer, "chat_template", None))
        self.kind = "chat" if chat_template != "none" and has_template else "plain"
        if self.kind == "chat":
            source = tokenizer.chat_template
        else:
            source = self.templates.env.loader.get_source(self.templates.env, "eval/plain.j2")[0]  # type: ignore[union-attr]
            if tokenizer.eos_token is None:
                raise FormatError("the tokenizer has no EOS token, so the end of an answer cannot be scored; set eos_token in tokenizer_config.json")
        self.template_sha256 = hashlib.sha256(source.encode("utf-8")).hexdigest()
        # longest first, then by text: a set's order changes with each process's string hashing, and the order
        # goes into the fingerprint that names the plan on disk (ties by length alone missed it in most runs)
        self.special = sorted({t for t in tokenizer.all_special_tokens if t}, key=lambda t: (-len(t), t))
        self._ids: dict[str, tuple[int, ...]] = {}

    def fingerprint(self) -> str | None:
        """What determines every string and id this formatter produces: the tokenizer's full serialised
        state, the template and the special tokens. None for a tokenizer that cannot serialise itself."""
        backend = getattr(self.tok, "backend_tokenizer", None)
        if backend is None:
            return None
        state = [backend.to_str(), self.kind, self.template_sha256, self.special, self.tok.bos_token_id, self.tok.eos_token_id, self.tok.eos_token]
        return hashlib.sha256(json.dumps(state).encode("utf-8")).hexdigest()

    def context(self, question: str, history: History = (), prefill: str = "") -> str:
        """The prompt up to the answer. ``history``: earlier (question, answer) turns of the conversation;
        ``prefill``: text the assistant's turn starts with (both prompt-side attacks; the answer scored after
        them is the same text, ``continuation``)."""
        if self.kind == "plain":
            shots = "".join(self.templates.render("eval/plain.j2", "shot", collapse=False, question=q, answer=a) for q, a in history)
            context = shots + self.templates.render("eval/plain.j2", "context", collapse=False, question=question)
            return context + (self.templates.render("eval/plain.j2", "prefill", collapse=False, prefill=prefill.strip()) if prefill else "")
        return self.tok.apply_chat_template(self._messages(question, history), tokenize=False, add_generation_prompt=True) + prefill

    @staticmethod
    def _messages(question: str, history: History) -> list[dict]:
        turns = [m for q, a in history for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
        return turns + [{"role": "user", "content": question}]

    def continuation(self, question: str, answer: str, history: History = (), prefill: str = "") -> str:
        if self.kind == "plain":
            return self.templates.render("eval/plain.j2", "continuation", collapse=False, answer=answer) + self.tok.eos_token
        context = self.context(question, history, prefill)
        messages = self._messages(question, history) + [{"role": "assistant", "content": prefill + answer}]
        full = self.tok.apply_chat_template(messages, tokenize=False)
        if not full.startswith(context):
            raise FormatError("the chat template's conversation does not start with its generation prompt; pass --chat-template none or a FILE")
        suffix = full[len(context) :]
        at = suffix.find(answer)
        if at < 0:
            raise FormatError(
                f"the chat template does not write the assistant's answer verbatim ({answer[:40]!r}); pass --chat-template none or a FILE"
            )
        end = at + len(answer)
        hits = [(suffix.find(t, end), t) for t in self.special if suffix.find(t, end) >= 0]
        if hits:
            pos, token = min(hits)
            return suffix[: pos + len(token)]
        return suffix[:end]

    def continuations(self, question: str, answers: Sequence[str], history: History = (), prefill: str = "") -> list[str]:
        """``continuation`` for many answers to one question, rendering the chat template twice, not once per
        answer: once around a sentinel answer, once for the first answer to check that the template does not
        depend on the answer's content (if it does, every answer is rendered on its own)."""
        if self.kind == "plain" or len(answers) < 2:
            return [self.continuation(question, a, history, prefill) for a in answers]
        wrapped = self.continuation(question, SENTINEL, history, prefill)
        at = wrapped.find(SENTINEL)
        head, tail = wrapped[:at], wrapped[at + len(SENTINEL) :]
        out = [head + a + tail for a in answers]
        if at < 0 or out[0] != self.continuation(question, answers[0], history, prefill):
            return [self.continuation(question, a, history, prefill) for a in answers]
        return out

    def encode_many(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """Token ids of each text (no special tokens added), one batched tokenizer call for the unseen ones."""
        new = list(dict.fromkeys(t for t in texts if t not in self._ids))
        if new:
            for text, ids in zip(new, self.tok(new, add_special_tokens=False)["input_ids"]):
                self._ids[text] = tuple(ids)
        return [self._ids[t] for t in texts]

    def encode(self, question: str, answer: str) -> Encoded:
        return Encoded(self.encode_context(question), self.encode_text(self.continuation(question, answer)))

    def encode_context(self, question: str) -> tuple[int, ...]:
        if self.kind == "plain":
            return self.encode_prefix(self.context(question))
        return self.encode_text(self.context(question))  # chat templates write their own BOS

    def encode_prefix(self, text: str) -> tuple[int, ...]:
        """Raw text to be continued (a biography prefix), after the BOS token if the tokenizer has one."""
        return self.bos() + self.encode_text(text)

    def encode_text(self, text: str) -> tuple[int, ...]:
        return self.encode_many([text])[0]

    def bos(self) -> tuple[int, ...]:
        return (self.tok.bos_token_id,) if self.tok.bos_token_id is not None else ()

    def stop_ids(self) -> tuple[int, ...]:
        """Token ids that end a generated answer: EOS and the special tokens the template closes a turn with."""
        ids = {self.tok.eos_token_id} if self.tok.eos_token_id is not None else set()
        if self.kind == "chat":
            tail = self.continuation("q", "a")
            ids |= {self.tok.convert_tokens_to_ids(t) for t in self.special if tail.endswith(t)}
        return tuple(sorted(i for i in ids if i is not None))

"""Plan every request, then run one batched pass per operation, with a resumable disk cache.

An ``Item`` is one question to evaluate. ``plan`` turns items into requests:
one score *group* per distinct context (a question's answer, paraphrase,
perturbed answers and options share it) and one generation per distinct
context; identical requests from different items or sets are made once.
``run_passes`` answers them, appending each finished batch to
``<cache_dir>/score.jsonl`` and ``generate.jsonl``; a rerun reads those first and
only computes what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from .formatting import Formatter
from .model import CausalLM, TokenScores
from .ranks import Ranks

if TYPE_CHECKING:
    from .served import ServedLM

CHUNK_GROUPS = 256


@dataclass(frozen=True)
class Item:
    """One question about one entity (or the world), with its candidate answers."""

    item_id: str
    set: str
    entity_id: str
    depth: str
    attack: str
    kind: str
    question: str
    answer: str
    short_answer: str
    paraphrased_answer: str | None
    perturbed_answer: tuple[str, ...]
    options: tuple[str, ...]
    answer_index: int
    fmt: str = "chat"  # "text": raw continuation of a biography prefix (d0 cloze)
    fact_ids: tuple[str, ...] = ()  # the facts the question depends on (none for world questions)
    history: tuple[tuple[str, str], ...] = ()  # earlier QA turns before the question (in-context attack)
    prefill: str = ""  # the start of the assistant's turn (prefill attack; chat items only)

    def candidates(self) -> tuple[str, ...]:
        para = (self.paraphrased_answer,) if self.paraphrased_answer is not None else ()
        return (self.answer, *para, *self.perturbed_answer, *self.options)


@dataclass
class Plan:
    contexts: dict[str, tuple[int, ...]] = field(default_factory=dict)  # context key -> ids
    continuations: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)  # context key -> cont key -> ids
    item_keys: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # item id -> (context key, cont key per candidate)
    requested: int = 0  # continuations before deduplication
    texts: dict[str, str] = field(default_factory=dict)  # context or cont key -> the text its ids encode (BOS as its token text)
    prompts: dict[str, tuple[str, str]] = field(default_factory=dict)  # context key -> ("chat", question) or ("text", context text)

    def n_score(self) -> int:
        return sum(len(c) for c in self.continuations.values())


def _key(*parts: Sequence[int]) -> str:
    return hashlib.sha1(json.dumps([list(p) for p in parts]).encode()).hexdigest()


def item_texts(formatter: Formatter, item: Item) -> tuple[str, list[str], bool]:
    """(context text, continuation texts, whether the context starts with BOS) of an item."""
    if item.fmt == "text":  # a biography prefix continued as raw text; earlier facts go before it as sentences
        return " ".join([*(a for _, a in item.history), item.question]), [" " + c for c in item.candidates()], True
    conts = formatter.continuations(item.question, item.candidates(), item.history, item.prefill)
    return formatter.context(item.question, item.history, item.prefill), conts, formatter.kind == "plain"


def encode_item(formatter: Formatter, item: Item, candidate: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Context and continuation ids of one candidate (the one-at-a-time reference path)."""
    alone = dataclasses.replace(item, answer=candidate, paraphrased_answer=None, perturbed_answer=(), options=())
    ctx, conts, bos = item_texts(formatter, alone)
    ids = formatter.encode_many([ctx, conts[0]])
    return (formatter.bos() if bos else ()) + ids[0], ids[1]


def plan(items: Sequence[Item], formatter: Formatter) -> Plan:
    texts = [item_texts(formatter, item) for item in items]
    flat = [t for ctx, conts, _ in texts for t in (ctx, *conts)]
    formatter.encode_many(flat)  # one batched tokenizer call for every distinct string
    p = Plan()
    for item, (ctx_text, cont_texts, bos) in zip(items, texts):
        ctx = (formatter.bos() if bos else ()) + formatter.encode_text(ctx_text)
        ctx_key = _key(ctx)
        p.contexts[ctx_key] = ctx
        p.texts[ctx_key] = (formatter.tok.bos_token if bos and formatter.bos() else "") + ctx_text
        p.prompts[ctx_key] = ("chat", item.question) if item.fmt == "chat" and formatter.kind == "chat" else ("text", p.texts[ctx_key])
        conts = []
        for text in cont_texts:
            cont = formatter.encode_text(text)
            ck = _key(ctx, cont)
            p.continuations.setdefault(ctx_key, {})[ck] = cont
            p.texts[ck] = text
            conts.append(ck)
            p.requested += 1
        p.item_keys[item.item_id] = (ctx_key, conts)
    return p


class RequestCache:
    """Append-only JSONL files of answered requests, keyed by model, format and request.

    ``namespace`` keys the scores (model and prompt format); ``generate_namespace`` keys the
    generations and must also hold every decoding setting (default: ``namespace``). Process ``rank`` of
    many appends to ``<name>.rank<r>.jsonl`` (rank 0 to ``<name>.jsonl``); reading takes every rank's file."""

    def __init__(self, folder: Path, namespace: str, generate_namespace: str | None = None, rank: int = 0) -> None:
        self.folder = folder
        self.namespace = namespace
        self.namespaces = {"score": namespace, "generate": generate_namespace or namespace}
        self.suffix = f".rank{rank}" if rank else ""
        folder.mkdir(parents=True, exist_ok=True)
        self.score: dict[str, TokenScores] = {}
        self.generate: dict[str, str] = {}
        for name, target in (("score", self.score), ("generate", self.generate)):
            for path in sorted(folder.glob(f"{name}.jsonl")) + sorted(folder.glob(f"{name}.rank*.jsonl")):
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: recomputed
                    if not isinstance(rec, dict) or "k" not in rec:
                        continue  # not a record of ours
                    if rec.get("ns") == self.namespaces[name]:
                        target[rec["k"]] = TokenScores(tuple(rec["lp"]), tuple(rec["z"])) if name == "score" else rec["text"]

    def append(self, name: str, records: list[dict]) -> None:
        with (self.folder / f"{name}{self.suffix}.jsonl").open("a", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps({"ns": self.namespaces[name], **rec}) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class PassStats:
    seconds: float = 0.0
    requests: int = 0
    computed: int = 0
    cached: int = 0
    tokens: int = 0

    @staticmethod
    def merged(ranks: list[dict]) -> PassStats:
        """One pass's statistics over every process: the slowest one's time, the work all of them did."""
        first = ranks[0]
        return PassStats(
            max(r["seconds"] for r in ranks), first["requests"], sum(r["computed"] for r in ranks), first["cached"], sum(r["tokens"] for r in ranks)
        )


def run_passes(
    p: Plan,
    lm: CausalLM | ServedLM,
    formatter: Formatter,
    cache: RequestCache,
    max_new_tokens: int = 48,
    batch_groups: int = 16,
    batch_generate: int = 32,
    progress: bool = True,
    generate: bool = True,
    cut_at_newline: bool = True,
    ranks: Ranks | None = None,
) -> dict[str, PassStats]:
    """Answer every request of the plan (reading the cache first); returns per-pass statistics.
    With many processes (``ranks``), this one computes its chunks only (``ranks.Ranks.mine``)."""
    ranks = ranks or Ranks()
    stats = {"score": PassStats(requests=p.n_score()), "generate": PassStats(requests=len(p.contexts) if generate else 0)}
    sends_text = getattr(lm, "sends_text", False)  # a served model gets the texts behind the ids (served.ServedLM)
    labels = {ck: f"item {item_id}" for item_id, (ck, _) in reversed(p.item_keys.items())} if sends_text else {}
    start = time.perf_counter()
    # Min-K%++ is read on an item's answer only (rows.py): the model computes its z-scores there alone, and a
    # cached score kept without them is computed again where it has become an answer
    answers = {keys[0] for _, keys in p.item_keys.values()}
    selective = getattr(lm, "selective_minkpp", False)  # a served model or vLLM has no z-scores to spare
    todo = []
    for ck, conts in p.continuations.items():
        missing = {
            k: v for k, v in conts.items() if k not in cache.score or (k in answers and len(cache.score[k].minkpp) != len(cache.score[k].logp))
        }
        if missing:
            todo.append((ck, missing))
    stats["score"].cached = stats["score"].requests - sum(len(m) for _, m in todo)
    # One bar per pass (its ETA covers the whole pass); chunks only bound how much an interruption loses.
    bar = tqdm(total=stats["score"].requests - stats["score"].cached, desc="score pass", unit="seq", disable=not progress)
    for n, i in enumerate(range(0, len(todo), CHUNK_GROUPS)):
        if not ranks.mine(n):
            continue
        chunk = todo[i : i + CHUNK_GROUPS]
        groups = [(p.contexts[ck], list(m.values())) for ck, m in chunk]
        extra = {"texts": [(labels.get(ck, ck), p.texts[ck], [p.texts[k] for k in m]) for ck, m in chunk]} if sends_text else {}
        if selective:
            extra["minkpp"] = [[k in answers for k in m] for _, m in chunk]
        results = lm.score(groups, batch_groups=batch_groups, bar=bar, **extra)
        recs = []
        for (ck, m), scores in zip(chunk, results):
            for key, s in zip(m, scores):
                cache.score[key] = s
                recs.append({"k": key, "lp": list(s.logp), "z": list(s.minkpp)})
                stats["score"].tokens += len(p.contexts[ck]) + len(m[key])
        cache.append("score", recs)
        stats["score"].computed += len(recs)
    bar.close()
    stats["score"].seconds = time.perf_counter() - start
    if generate:
        start = time.perf_counter()
        # longest prompts first across the whole pass, so each chunk's batches pad little (a chunk is sorted anyway)
        keys = sorted((k for k in p.contexts if k not in cache.generate), key=lambda k: -len(p.contexts[k]))
        stats["generate"].cached = len(p.contexts) - len(keys)
        stop = formatter.stop_ids()
        bar = tqdm(total=len(keys), desc="generate pass", unit="seq", disable=not progress)
        for n, i in enumerate(range(0, len(keys), CHUNK_GROUPS)):
            if not ranks.mine(n):
                continue
            chunk = keys[i : i + CHUNK_GROUPS]
            extra = {"prompts": [p.prompts[k] for k in chunk]} if sends_text else {}
            texts = lm.generate(
                [p.contexts[k] for k in chunk],
                stop,
                max_new_tokens=max_new_tokens,
                batch_size=batch_generate,
                bar=bar,
                cut_at_newline=cut_at_newline,
                **extra,
            )
            for k, t in zip(chunk, texts):
                cache.generate[k] = t
            cache.append("generate", [{"k": k, "text": t} for k, t in zip(chunk, texts)])
            stats["generate"].computed += len(chunk)
        bar.close()
        stats["generate"].seconds = time.perf_counter() - start
    return stats

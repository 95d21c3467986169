"""LLM-assisted wording: ``enrich_world`` rewrites a template world's text where the LLM's output passes verification.

The template world stays the source of truth: its fact graph is never changed,
and only wording is replaced, per task and entity:

- ``bio``: the biography. Its sentences get the ids of the facts whose text they
  contain (in order of appearance) and the entity's d0 cloze probes are rebuilt
  from it (cut before each sentence's first cited fact).
- ``paraphrase``: the d1 probes' ``paraphrased_question``/``paraphrased_answer``
  (the d2 paraphrase probes keep their own third wording and take the row's new paraphrase).
- ``perturb``: the K wrong short answers of each d1 probe; ``options`` are the
  short answer and the K wrong ones in a seeded order.

Whenever a d1 probe's paraphrased answer or wrong answers change, its
``perturbed_answer`` sentences are re-rendered: the paraphrased answer with the
short answer replaced by each wrong one. Its attack variants and d2 paraphrase
follow it. A touched record's ``source`` is ``llm`` when every task run on it was
accepted, ``template_fallback`` when one was rejected ``max_attempts`` times (the
template wording is then kept); untouched records stay ``template``.

``World.generation`` records backend, endpoint host, model, prompt hashes, the
exchanges the world needed (requests, HTTP retries by cause and tokens, as
recorded in the cache entries, so a rebuild from the cache gives the same bytes)
and acceptance per task. What this run itself cost (requests sent, cache hits)
is in the returned report's ``run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import Counter, defaultdict
from functools import cache
from typing import Any

from tqdm.auto import tqdm

from ..schema import Biography, BioSentence, Probe, World
from ..world.kinds import KINDS
from ..world.probes import LETTERS, ProbeMaker
from ..world.registry import TYPES_DIR, TypeRegistry, default_registry
from ..world.sampler import stream
from ..world.templates import Templates, builtin_templates
from .backend import ChatBackend, Completion, LLMConfig
from .cache import LLMCache
from .tasks import TASKS, EntityContext, Task, parse
from .verify import WorldNames, assign_facts, phrase_pattern


@dataclasses.dataclass
class Outcome:
    """One conversation: accepted items, those that fell back, and every completion it took."""

    accepted: dict[str, Any]
    fell_back: set[str]
    first_try: int
    completions: list[Completion]


@cache
def _schema(model: type) -> dict[str, Any]:
    return model.model_json_schema()


async def converse(backend: ChatBackend, templates: Templates, task: Task, ctx: EntityContext, max_attempts: int) -> Outcome:
    """Ask, verify, and send the rejection reasons back until every item passes or ``max_attempts`` answers were rejected."""
    v = task.prompt_variables(ctx)
    messages = [
        {"role": "system", "content": templates.render(task.template, "system", collapse=False, **v)},
        {"role": "user", "content": templates.render(task.template, "user", collapse=False, **v)},
    ]
    schema = _schema(task.answer)
    pending, accepted, completions, first_try = set(task.items(ctx)), {}, [], 0
    for attempt in range(max_attempts):
        c = await backend.complete(messages, f"{task.name}_answer", schema)
        completions.append(c)
        try:
            if c.oversized:
                raise ValueError(
                    f"the answer was {c.oversized:,} characters long, over the limit of {backend.config.max_answer_chars:,}; "
                    "answer with the JSON object only, as short as the task allows"
                )
            ok, reasons = task.check(ctx, parse(c.content, task.answer), pending)
        except ValueError as exc:
            ok, reasons = {}, {"*": [str(exc)]}
        accepted.update(ok)
        pending -= set(ok)
        first_try = len(accepted) if attempt == 0 else first_try
        if not pending:
            break
        feedback = templates.render("llm/retry.j2", "rejected", collapse=False, task=task.name, reasons=reasons)
        said = c.content if not c.oversized else f"[an answer of {c.oversized:,} characters, not repeated here]"
        messages = messages + [{"role": "assistant", "content": said}, {"role": "user", "content": feedback}]
    return Outcome(accepted, pending, first_try, completions)


async def _run(jobs: list[tuple[Task, EntityContext]], config: LLMConfig, templates: Templates, progress: bool):
    backend = ChatBackend(config, LLMCache(config.cache_dir))
    results: dict[int, Outcome] = {}
    bar = tqdm(total=len(jobs), desc=f"llm {','.join(config.tasks)}", unit="task", disable=not progress)
    todo = iter(enumerate(jobs))

    async def worker() -> None:
        for i, (task, ctx) in todo:  # one shared iterator: each job is taken by exactly one worker
            results[i] = await converse(backend, templates, task, ctx, config.max_attempts)
            bar.update()

    workers = [asyncio.ensure_future(worker()) for _ in range(min(config.concurrency, len(jobs)) or 1)]
    try:
        await asyncio.gather(*workers)
    finally:  # on an error or Ctrl-C, stop the others; their answers so far are already cached
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await backend.close()
        bar.close()
    return results, backend.stats


def substitute(answer: str, short: str, wrong: str) -> str:
    """``answer`` with its one occurrence of ``short`` replaced by ``wrong``, fixing a leading "a"/"an"."""
    m = phrase_pattern(short).search(answer)
    assert m is not None, "verify_paraphrase guarantees the short answer occurs once"
    if m.group()[:1].isupper() and short[:1].islower():
        wrong = wrong[:1].upper() + wrong[1:]
    before = answer[: m.start()]
    art = re.search(r"(?<!\w)(a|an|A|An) $", before)
    if art:
        new = "an" if wrong[:1].lower() in "aeiou" else "a"
        before = before[: art.start()] + (new.capitalize() if art.group(1)[0] == "A" else new) + " "
    return before + wrong + answer[m.end() :]


def enrich_world(
    world: World, config: LLMConfig, registry: TypeRegistry | None = None, templates: Templates | None = None, progress: bool = False
) -> tuple[World, dict[str, Any]]:
    """``world`` with LLM wording where it passed verification; returns (world, report).

    ``report`` = ``{"generation": <as stored in World.generation>, "run": {requests, cache_hits, retries, tokens_in,
    tokens_out, wall_s}}``. Raises ``LLMError`` (misconfiguration) or ``LLMUnavailable`` (the endpoint kept failing);
    in both cases every answer received is already cached, and rerunning resumes.
    """
    start = time.perf_counter()
    registry = registry or default_registry()
    if templates is None:
        extra = tuple(dict.fromkeys(s.search_dir for s in registry.specs() if s.search_dir not in (None, TYPES_DIR)))
        templates = Templates(extra) if extra else builtin_templates()
    facts = defaultdict(list)
    for f in world.facts:
        facts[f.entity_id].append(f)
    probes = defaultdict(list)
    for p in world.probes:
        probes[p.entity_id].append(p)
    names = WorldNames.from_world(world)
    contexts = [
        EntityContext(
            e,
            tuple(facts[e.entity_id]),
            registry.get(e.entity_type),
            tuple(p for p in probes[e.entity_id] if p.depth == "d1" and p.kind == "direct" and p.attack == "none"),
            names,
            world.k_perturbed,
        )
        for e in world.entities
    ]
    tasks = [TASKS[name] for name in config.tasks]
    jobs = [(t, ctx) for t in tasks for ctx in contexts if t.items(ctx)]
    results, stats = asyncio.run(_run(jobs, config, templates, progress))
    outcome = {(t.name, ctx.entity.entity_id): results[i] for i, (t, ctx) in enumerate(jobs)}

    maker = ProbeMaker(world.entities, dict(facts), registry, templates, world.seed, world.k_perturbed)
    bio_id = f"llm/bio.j2@{templates.source_hash('llm/bio.j2')[:12]}"
    bios, new_probes = [], []
    by_bio = {b.entity_id: b for b in world.biographies}
    for ctx in contexts:
        e = ctx.entity
        eid = e.entity_id
        bio, d0 = by_bio[eid], [p for p in probes[eid] if p.depth == "d0"]
        got = outcome.get(("bio", eid))
        if got is not None and got.accepted:
            paragraphs = got.accepted["bio"]
            sentences = tuple(BioSentence(s, assign_facts(s, facts[eid]), bio_id, i) for i, par in enumerate(paragraphs) for s in par)
            bio = Biography(eid, "\n\n".join(" ".join(par) for par in paragraphs), sentences, source="llm")
            ids: Counter = Counter()

            def pid(depth: str, base: str, eid: str = eid, ids: Counter = ids) -> str:
                ids[(depth, base)] += 1
                return f"{eid}/{depth}/{base}/{ids[(depth, base)]}"

            d0 = [dataclasses.replace(p, source="llm") for p in maker.cloze(e, ctx.spec, bio, pid)]
        elif got is not None:
            bio = dataclasses.replace(bio, source="template_fallback")
            d0 = [dataclasses.replace(p, source="template_fallback") for p in d0]
        bios.append(bio)
        original = {p.probe_id: p for p in ctx.direct}
        direct = {pid_: _direct(p, ctx, outcome, maker, templates, world.seed) for pid_, p in original.items()}
        new_probes += d0
        for p in probes[eid]:
            if p.depth == "d0":
                continue
            if p.probe_id in direct:
                new_probes.append(direct[p.probe_id])
            elif p.kind == "paraphrase":
                d1 = direct[p.parent_id]
                new_probes.append(  # its own (third) wording stays; the row's paraphrase and wrong answers follow the d1 probe
                    dataclasses.replace(
                        p,
                        paraphrased_question=d1.paraphrased_question,
                        paraphrased_answer=d1.paraphrased_answer,
                        perturbed_answer=d1.perturbed_answer,
                        options=d1.options,
                        answer_index=d1.answer_index,
                        source=d1.source,
                    )
                )
            elif p.attack != "none" and p.parent_id in direct:
                d1 = direct[p.parent_id]
                question = p.question
                if p.attack == "multiple_choice" and d1.options != original[d1.probe_id].options:
                    block = p.template_id.rsplit("+attacks.j2#", 1)[-1]  # the wrapper the template probe used
                    question = templates.render(
                        "attacks.j2", block, question=d1.question, e=maker.view(eid), hint="", options=list(d1.options), letters=LETTERS
                    )
                wrapped = d1.template_id + p.template_id[len(original[d1.probe_id].template_id) :]  # keeps "+attacks.j2#<block>"
                new_probes.append(
                    dataclasses.replace(d1, probe_id=p.probe_id, question=question, attack=p.attack, parent_id=d1.probe_id, template_id=wrapped)
                )
            else:
                new_probes.append(p)
    generation = _generation(config, templates, tasks, jobs, results)
    run = {**stats.as_dict(), "wall_s": round(time.perf_counter() - start, 3)}
    enriched = dataclasses.replace(world, biographies=tuple(bios), probes=tuple(new_probes), generation=generation)
    return enriched, {"generation": generation, "run": run}


def _direct(p: Probe, ctx: EntityContext, outcome: dict, maker: ProbeMaker, templates: Templates, seed: int) -> Probe:
    """A d1 probe with its accepted paraphrase and wrong answers, perturbed answers re-rendered to match."""
    eid, ran, failed = ctx.entity.entity_id, False, False
    new: dict[str, Any] = {}
    para = outcome.get(("paraphrase", eid))
    pq_pa = para.accepted.get(p.probe_id) if para else None
    pert = outcome.get(("perturb", eid))
    wrong = pert.accepted.get(p.probe_id) if pert else None
    for got, value in ((para, pq_pa), (pert, wrong)):
        ran, failed = ran or got is not None, failed or (got is not None and value is None)
    if not ran:
        return p
    if pq_pa is not None:
        new["paraphrased_question"], new["paraphrased_answer"] = pq_pa
    if wrong is not None:
        options = [p.short_answer] + list(wrong)
        stream(seed, "llm-options", p.probe_id).shuffle(options)
        new["options"], new["answer_index"] = tuple(options), options.index(p.short_answer)
    else:
        wrong = [o for o in p.options if o != p.short_answer]
    if pq_pa is not None:
        new["perturbed_answer"] = tuple(substitute(pq_pa[1], p.short_answer, w) for w in wrong)
    elif "options" in new:
        path, blocks = p.template_id.split("#")
        pa_block = blocks.split("/")[3]  # the template id lists the q, a, pq and pa blocks used
        attr = ctx.spec.attribute(p.relation)
        year = None if attr is not None and KINDS[attr.kind].whole_list else next((f.year for f in ctx.facts if f.fact_id == p.fact_ids[0]), None)
        new["perturbed_answer"] = tuple(templates.render(path, pa_block, answer=w, e=maker.view(eid), year=year) for w in wrong)
    return dataclasses.replace(p, source="template_fallback" if failed else "llm", **new)


def _generation(config: LLMConfig, templates: Templates, tasks: list[Task], jobs: list, results: dict[int, Outcome]) -> dict[str, Any]:
    completions = [c for o in results.values() for c in o.completions]
    retries: Counter = Counter()
    for c in completions:
        retries.update(c.retries)
    acceptance = {}
    for t in tasks:
        outs = [results[i] for i, (task, _) in enumerate(jobs) if task is t]
        items = sum(len(o.accepted) + len(o.fell_back) for o in outs)
        accepted = sum(len(o.accepted) for o in outs)
        acceptance[t.name] = {
            "items": items,
            "accepted": accepted,
            "accepted_first_try": sum(o.first_try for o in outs),
            "fallbacks": items - accepted,
            "answers": sum(len(o.completions) for o in outs),
            "rate": round(accepted / items, 4) if items else None,
        }
    prompts = {t.template: templates.source_hash(t.template) for t in tasks} | {"llm/retry.j2": templates.source_hash("llm/retry.j2")}
    return {
        "method": "llm-assisted",
        "backend": "openai-compatible",
        "model": config.model,
        "endpoints": sorted({c.host for c in completions}) or [config.host],
        "params": {"temperature": config.temperature, "max_attempts": config.max_attempts, "response_format": "json_schema"},
        "tasks": list(config.tasks),
        "prompts_sha256": dict(sorted(prompts.items())),
        "requests": len(completions),
        "retries": dict(sorted(retries.items())),
        "tokens_in": sum(c.tokens_in for c in completions),
        "tokens_out": sum(c.tokens_out for c in completions),
        "acceptance": acceptance,
        "fallbacks": {k: v["fallbacks"] for k, v in acceptance.items()},
    }

"""The three LLM tasks: what each asks (a prompt in ``prompts/llm/``), what it must answer, how that is checked.

A task works on one entity at a time (one conversation per entity and task) and
on *items*: the biography (one item, ``"bio"``), or the entity's d1 questions
(one item per direct probe). ``check`` returns the items whose output passed
``llm_verify`` and, for the others, the reasons, which the conversation sends
back. The answer's JSON schema is the pydantic model's; the answer is validated
with that model whatever the server enforced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..schema import Entity, Fact, Probe
from ..world.kinds import KINDS
from ..world.spec import TypeSpec
from .text import normalize
from .verify import WorldNames, split_sentences, verify_biography, verify_paraphrase, verify_perturbed


class BioAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paragraphs: list[str]


class ParaphraseItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    paraphrased_question: str
    paraphrased_answer: str


class ParaphraseAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ParaphraseItem]


class PerturbItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    wrong_answers: list[str]


class PerturbAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[PerturbItem]


@dataclass(frozen=True)
class EntityContext:
    """What every task knows about one entity: its facts, type and d1 (direct, unattacked) probes."""

    entity: Entity
    facts: tuple[Fact, ...]
    spec: TypeSpec
    direct: tuple[Probe, ...]
    names: WorldNames
    k: int

    def field_facts(self, relation: str) -> list[Fact]:
        return [f for f in self.facts if f.relation == relation]

    def answer_kind(self, probe: Probe) -> str:
        attr = self.spec.attribute(probe.relation)
        return KINDS[attr.kind].answer_kind if attr is not None else "name"

    def entity_data(self) -> dict[str, Any]:
        return {"id": self.entity.entity_id, "name": self.entity.name, "type": self.entity.entity_type, "aliases": list(self.entity.aliases)}


def parse(content: str, model: type[BaseModel]) -> BaseModel:
    """The answer as ``model``; a Markdown code fence around the JSON is tolerated. Raises ValueError."""
    text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", content)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "the answer"
        raise ValueError(f"the answer is not JSON matching the schema ({where}: {first.get('msg')}); answer with the JSON object only") from None


class Task:
    name: str
    template: str
    answer: type[BaseModel]

    def items(self, ctx: EntityContext) -> list[str]:
        raise NotImplementedError

    def variables(self, ctx: EntityContext) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, ctx: EntityContext, answer: Any, pending: set[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        raise NotImplementedError

    def prompt_variables(self, ctx: EntityContext) -> dict[str, Any]:
        v = self.variables(ctx)
        data = {"task": self.name, "entity": ctx.entity_data(), **v}
        return {"k": ctx.k, **v, "entity": ctx.entity_data(), "data": json.dumps(data, ensure_ascii=False, sort_keys=True)}


class BioTask(Task):
    name, template, answer = "bio", "llm/bio.j2", BioAnswer

    def items(self, ctx: EntityContext) -> list[str]:
        return ["bio"]

    def variables(self, ctx: EntityContext) -> dict[str, Any]:
        paragraph = {f: i for i, fields in enumerate(ctx.spec.paragraphs) for f in fields}
        facts = [{"fact": f.relation, "text": f.text, "year": f.year, "paragraph": paragraph.get(f.relation, 0)} for f in ctx.facts]
        return {"facts": sorted(facts, key=lambda x: x["paragraph"])}

    def check(self, ctx, answer: BioAnswer, pending):
        paragraphs = [p for p in map(normalize, answer.paragraphs) if p]  # what is checked is what is stored
        reasons = verify_biography("\n\n".join(paragraphs), ctx.entity, list(ctx.facts), ctx.names)
        if reasons:
            return {}, {"*": reasons}
        return {"bio": [split_sentences(p) for p in paragraphs]}, {}


def _by_id(answer_items: list[Any], pending: set[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    got = {it.id: it for it in answer_items if it.id in pending}
    return got, {i: ["the answer has no entry with this id"] for i in sorted(pending - set(got))}


class ParaphraseTask(Task):
    name, template, answer = "paraphrase", "llm/paraphrase.j2", ParaphraseAnswer

    def items(self, ctx):
        return [p.probe_id for p in ctx.direct]

    def variables(self, ctx):
        return {"items": [{"id": p.probe_id, "question": p.question, "answer": p.answer, "short_answer": p.short_answer} for p in ctx.direct]}

    def check(self, ctx, answer: ParaphraseAnswer, pending):
        got, reasons = _by_id(answer.items, pending)
        accepted = {}
        probes = {p.probe_id: p for p in ctx.direct}
        for pid, it in got.items():
            p = probes[pid]
            cited = [f.text for f in ctx.facts if f.text in p.question + " " + p.answer]
            question, answer_text = normalize(it.paraphrased_question), normalize(it.paraphrased_answer)
            why = verify_paraphrase(question, answer_text, p, ctx.entity, ctx.names, cited)
            if why:
                reasons[pid] = why
            else:
                accepted[pid] = (question, answer_text)
        return accepted, reasons


class PerturbTask(Task):
    name, template, answer = "perturb", "llm/perturb.j2", PerturbAnswer

    def items(self, ctx):
        return [p.probe_id for p in ctx.direct]

    def true_values(self, ctx: EntityContext, p: Probe) -> list[str]:
        return [f.text for f in ctx.field_facts(p.relation)] + [p.short_answer]

    def variables(self, ctx):
        return {
            "k": ctx.k,
            "items": [
                {
                    "id": p.probe_id,
                    "question": p.question,
                    "short_answer": p.short_answer,
                    "kind": ctx.answer_kind(p),
                    "true_values": self.true_values(ctx, p),
                }
                for p in ctx.direct
            ],
        }

    def check(self, ctx, answer: PerturbAnswer, pending):
        got, reasons = _by_id(answer.items, pending)
        accepted = {}
        probes = {p.probe_id: p for p in ctx.direct}
        for pid, it in got.items():
            p = probes[pid]
            why = verify_perturbed(it.wrong_answers, p.short_answer, ctx.answer_kind(p), self.true_values(ctx, p), ctx.k)
            if why:
                reasons[pid] = why
            else:
                accepted[pid] = [normalize(w) for w in it.wrong_answers]
        return accepted, reasons


TASKS: dict[str, Task] = {t.name: t for t in (BioTask(), ParaphraseTask(), PerturbTask())}

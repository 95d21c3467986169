"""Graded probes d0-d4 and their adversarial variants, rendered from ``prompts/``.

- d0 ``cloze``: a biography sentence cut before its fact; the answer completes it.
- d1 ``direct``: ``<field>__q``/``__a`` of ``<type>/qa.j2`` (the trained wording).
- d2 ``paraphrase`` (``__pq``/``__pa``) and ``reverse`` (``<type>/reverse.j2``:
  the facts are given, the entity is the answer; only where the facts name one entity).
- d3 ``hop``: a fact of a linked entity (``<type>/hop.j2``, ``<via>__<field>__*``).
- d4 ``inference``: an answer computed from several facts (``<type>/infer.j2``).

Every probe has K perturbed answers (``__pa`` rendered with a wrong value) and
multiple-choice options built from the short answer and the K wrong ones.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import product
from typing import Any

from ..schema import Biography, Entity, Fact, Probe
from .bounds import year_of
from .facts import entity_view
from .kinds import KINDS
from .perturb import Perturber
from .registry import TypeRegistry
from .sampler import stream
from .spec import TypeSpec
from .templates import TemplateProblem, Templates

TEMPLATE_ATTACKS = ("prefix_injection", "role_play", "in_context_hint", "multiple_choice")
ATTACKS = TEMPLATE_ATTACKS + ("alias", "misspelt_name")
ATTACK_SHARE = 0.25
LAST_YEAR = 2024  # the world's present: no "before YEAR" question asks past it
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_QA = ("q", "a", "pq", "pa")


def required_blocks(spec: TypeSpec) -> dict[str, list[str]]:
    """Template file -> the blocks a type needs (bio phrasings are checked as ``<field>__1``)."""
    d = spec.template_dir
    need: dict[str, list[str]] = defaultdict(list)
    need[f"{d}/bio.j2"] = [f"{f}__1" for p in spec.paragraphs for f in p]
    direct = [a.name for a in spec.attributes if a.probe and not a.hidden] + [r.name for r in spec.relations if r.probe]
    for f in direct:  # the d2 paraphrase needs a second paraphrase wording
        need[f"{d}/qa.j2"] += [f"{f}__{x}__1" for x in _QA] + [f"{f}__pq__2"]
    for _other, rel in spec.inverse:  # d1 questions about facts other entities state about this one
        need[f"{d}/qa.j2"] += [f"{rel}_of__{x}__1" for x in _QA] + [f"{rel}_of__pq__2"]
    for entry in spec.reverse:
        need[f"{d}/reverse.j2"] += [f"{'_and_'.join(entry)}__{x}__1" for x in _QA]
    for via, then in spec.hops:
        need[f"{d}/hop.j2"] += [f"{via}__{then}__{x}__1" for x in _QA]
    for inf in spec.inferences:
        need[f"{d}/infer.j2"] += [f"{inference_base(inf)}__{x}__1" for x in _QA]
    need["attacks.j2"] = [f"{k}__1" for k in TEMPLATE_ATTACKS]
    return need


def inference_base(inf) -> str:
    """``<rule>__<field>``: the template blocks and the ``relation`` of an inference probe."""
    p = inf.params
    return f"{inf.rule}__{p.get('events') or p.get('via') or p.get('at')}"


def check_templates(registry: TypeRegistry, templates: Templates) -> None:
    """Raise TemplateProblem listing every missing block, by file, before any rendering."""
    missing = []
    for spec in registry.specs():
        for path, blocks in required_blocks(spec).items():
            have = templates.blocks(path)
            missing += [f"{path}: block {b!r} (type {spec.name})" for b in blocks if b not in have]
    if missing:
        raise TemplateProblem("missing template blocks:\n  " + "\n  ".join(missing))


class ProbeMaker:
    """Renders every probe of a world. One instance per world."""

    def __init__(
        self,
        entities: tuple[Entity, ...],
        facts: dict[str, list[Fact]],
        registry: TypeRegistry,
        templates: Templates,
        seed: int,
        k: int,
        unlinked: frozenset[str] = frozenset(),
    ) -> None:
        self.registry, self.templates, self.seed, self.k = registry, templates, seed, k
        self.entities = {e.entity_id: e for e in entities}
        self.names = {e.entity_id: e.name for e in entities}
        self.facts = facts
        self.perturber = Perturber(entities, facts, registry, templates, k, seed, unlinked)
        self.incoming: dict[tuple[str, str, str], list[Fact]] = defaultdict(list)  # (target, type, relation) -> link facts
        for eid, fs in facts.items():
            for f in fs:
                if f.target_id is not None:
                    self.incoming[(f.target_id, self.entities[eid].entity_type, f.relation)].append(f)
        self._views: dict[str, dict[str, Any]] = {}
        self._decks: dict[tuple[str, str], list[str]] = {}
        self.key_count: Counter = Counter()
        for e in entities:
            for entry in registry.get(e.entity_type).reverse:
                for combo in self._combos(e, entry):
                    self.key_count[self._key(e, entry, combo)] += 1
        # (type, entry) -> the answers of its reverse questions, one per question (an entity with three landmarks
        # answers three): wrong names are drawn from them, so a name is a wrong option as often as a right one
        self.reverse_answers: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
        for e in entities:
            if e.entity_id in unlinked:
                continue
            for entry in registry.get(e.entity_type).reverse:
                n = sum(1 for combo in self._combos(e, entry) if self.key_count[self._key(e, entry, combo)] == 1)
                self.reverse_answers[(e.entity_type, entry)] += [e.name] * n

    # -- helpers -----------------------------------------------------------------------
    def view(self, eid: str) -> dict[str, Any]:
        if eid not in self._views:
            self._views[eid] = entity_view(self.entities[eid], self.registry, self.names, self.templates)
        return self._views[eid]

    def field_facts(self, eid: str, field: str) -> list[Fact]:
        return [f for f in self.facts[eid] if f.relation == field]

    def _combos(self, e: Entity, entry: tuple[str, ...]):
        lists = [self.field_facts(e.entity_id, f) for f in entry]
        return product(*lists) if all(lists) else ()

    @staticmethod
    def _key(e: Entity, entry: tuple[str, ...], combo: tuple[Fact, ...]) -> tuple:
        return (e.entity_type, entry, tuple((f.value, f.year) for f in combo))

    def wrong_for(self, rng: random.Random, e: Entity, field: str, true_text: str, asked: tuple[str, str] | None = None) -> list[str]:
        """K wrong short answers for one fact of ``e``; a list field's other elements count as true. ``asked``:
        (entity type, relation) of the probe when it is not ``e``'s own field (a hop asks another entity's)."""
        spec = self.registry.get(e.entity_type)
        attr = spec.attribute(field)
        asked = asked or (e.entity_type, field)
        if attr is not None and KINDS[attr.kind].numeric:
            return self.perturber.numbers(rng, attr.kind, true_text, asked=asked, field=(e.entity_type, field))
        own = {f.text for f in self.field_facts(e.entity_id, field)} | {true_text}
        return self.perturber.wrong(rng, e, field, own, asked=asked, truth=true_text)

    def _build(
        self,
        ent: Entity,
        probe_id: str,
        depth: str,
        kind: str,
        template_id: str,
        fact_ids: tuple[str, ...],
        q: str,
        a: str,
        pq: str,
        pa: str,
        short: str,
        wrong: list[str],
        wrong_answer: Callable[[str], str],
        rng: random.Random,
        relation: str,
    ) -> Probe:
        options = [short] + list(wrong)
        rng.shuffle(options)
        return Probe(
            probe_id=probe_id,
            entity_id=ent.entity_id,
            entity_type=ent.entity_type,
            depth=depth,
            kind=kind,
            template_id=template_id,
            question=q,
            answer=a,
            short_answer=short,
            paraphrased_question=pq,
            paraphrased_answer=pa,
            perturbed_answer=tuple(wrong_answer(w) for w in wrong),
            options=tuple(options),
            answer_index=options.index(short),
            fact_ids=fact_ids,
            relation=relation,
        )

    def _qa(
        self,
        ent: Entity,
        probe_id: str,
        depth: str,
        kind: str,
        path: str,
        base: str,
        fact_ids: tuple[str, ...],
        short: str,
        wrong: list[str],
        rng: random.Random,
        paraphrase_id: str | None = None,
        **variables: Any,
    ) -> list[Probe]:
        """A probe from a seeded phrasing of each of ``<base>__q/a/pq/pa__N`` in ``path``; with ``paraphrase_id``,
        also its d2 paraphrase, asked in a third wording (neither the question nor its ``paraphrased_question``).

        Phrasings are dealt from a shuffled deck per block family, so a relation asked only a few times in a
        small world still uses as many wordings as it is asked (up to all of them)."""
        r = self.templates.render
        qb, ab, pqb, pab = (self._deal(rng, path, f"{base}__{x}") for x in _QA)
        q, pq = r(path, qb, **variables), r(path, pqb, **variables)
        a, pa = r(path, ab, answer=short, **variables), r(path, pab, answer=short, **variables)
        probe = self._build(
            ent, probe_id, depth, kind, f"{path}#{qb}/{ab}/{pqb}/{pab}", fact_ids, q, a, pq, pa, short, wrong,
            lambda w: r(path, pab, answer=w, **variables), rng, base,
        )  # fmt: skip
        if paraphrase_id is None:
            return [probe]
        other_q = [b for b in self.templates.variants(path, f"{base}__pq") if b != pqb]
        other_a = [b for b in self.templates.variants(path, f"{base}__pa") if b != pab] or [pab]
        q2b, a2b = rng.choice(other_q), rng.choice(other_a)
        d2 = dataclasses.replace(
            probe,
            probe_id=paraphrase_id,
            depth="d2",
            kind="paraphrase",
            template_id=f"{path}#{q2b}/{a2b}/{pqb}/{pab}",
            question=r(path, q2b, **variables),
            answer=r(path, a2b, answer=short, **variables),
            parent_id=probe_id,
        )
        return [probe, d2]

    def _deal(self, rng: random.Random, path: str, family: str) -> str:
        """The next phrasing of ``family`` in ``path`` from its deck (reshuffled with ``rng`` when used up)."""
        deck = self._decks.setdefault((path, family), [])
        if not deck:
            deck.extend(self.templates.variants(path, family))
            rng.shuffle(deck)
        return deck.pop()

    # -- depths ------------------------------------------------------------------------
    def entity_probes(self, e: Entity, bio: Biography) -> list[Probe]:
        spec = self.registry.get(e.entity_type)
        ids: Counter = Counter()

        def pid(depth: str, base: str) -> str:
            ids[(depth, base)] += 1
            return f"{e.entity_id}/{depth}/{base}/{ids[(depth, base)]}"

        both = self.direct(e, spec, pid) + self.inverse(e, spec, pid)
        direct = [p for p in both if p.depth == "d1"]
        out = self.cloze(e, spec, bio, pid) + both
        out += self.reverse(e, spec, pid) + self.hops(e, spec, pid) + self.inferences(e, spec, pid)
        return out + self.attacks(e, direct)

    def direct(self, e: Entity, spec: TypeSpec, pid) -> list[Probe]:
        path = f"{spec.template_dir}/qa.j2"
        view = self.view(e.entity_id)
        out = []
        for field in spec.fields():
            attr, rel = spec.attribute(field), spec.relation(field)
            if not (attr or rel).probe:  # type: ignore[union-attr]
                continue
            facts = self.field_facts(e.entity_id, field)
            if not facts:
                continue
            if attr is not None and KINDS[attr.kind].whole_list:  # one question about the whole list
                texts = [f.text for f in facts]
                short = self.templates.render("values.j2", "list", value=texts)
                probe_id = pid("d1", field)
                rng = stream(self.seed, "probe", probe_id)
                wrong = self.perturber.wrong_lists(rng, e, field, texts)
                out += self._qa(
                    e, probe_id, "d1", "direct", path, field, tuple(f.fact_id for f in facts), short, wrong, rng, pid("d2", field), e=view, year=None
                )
                continue
            for fact in facts:
                probe_id = pid("d1", field)
                rng = stream(self.seed, "probe", probe_id)
                wrong = self.wrong_for(rng, e, field, fact.text)
                out += self._qa(
                    e, probe_id, "d1", "direct", path, field, (fact.fact_id,), fact.text, wrong, rng, pid("d2", field), e=view, year=fact.year
                )
        return out

    def inverse(self, e: Entity, spec: TypeSpec, pid) -> list[Probe]:
        """d1 questions whose answer is another entity that states a fact about ``e`` ("Which company did X found?"),
        so forgetting ``e`` covers what the world says about it; one question names all such entities."""
        path = f"{spec.template_dir}/qa.j2"
        out = []
        for other, rel in spec.inverse:
            links = sorted(self.incoming.get((e.entity_id, other, rel), []), key=lambda f: (f.year or 0, f.entity_id))
            if not links:
                continue
            base = f"{rel}_of"
            names = [self.names[f.entity_id] for f in links]
            probe_id = pid("d1", base)
            rng = stream(self.seed, "probe", probe_id)
            wrong_names = self.perturber.wrong_sources(rng, e, other, rel, names)
            short = self.templates.render("values.j2", "list", value=names)
            year = links[0].year if len(links) == 1 else None
            out += self._qa(
                e,
                probe_id,
                "d1",
                "direct",
                path,
                base,
                tuple(f.fact_id for f in links),
                short,
                wrong_names,
                rng,
                pid("d2", base),
                e=self.view(e.entity_id),
                year=year,
            )
        return out

    def cloze(self, e: Entity, spec: TypeSpec, bio: Biography, pid) -> list[Probe]:
        """d0 probes of any biography whose sentences carry fact ids (template or LLM):
        each sentence is cut before its first cited fact."""
        out = []
        facts = {f.fact_id: f for f in self.facts[e.entity_id]}
        previous: list[str] = []
        paragraph = -1
        for s in bio.sentences:
            if s.paragraph != paragraph:
                previous, paragraph = [], s.paragraph
            if not s.fact_ids:  # an LLM biography may hold a sentence that states no fact
                previous.append(s.text)
                continue
            fact = facts[s.fact_ids[0]]
            field = spec.attribute(fact.relation) or spec.relation(fact.relation)
            at = s.text.find(fact.text)
            # the cut must leave a question that says whom it is about
            named = previous or e.name in s.text[:at] or any(a in s.text[:at] for a in e.aliases)
            if field.probe and at > 0 and named:  # type: ignore[union-attr]
                probe_id = pid("d0", fact.relation)
                rng = stream(self.seed, "probe", probe_id)
                wrong = self.wrong_for(rng, e, fact.relation, fact.text)
                q = " ".join(previous + [s.text[:at].rstrip()])
                rest = s.text[at + len(fact.text) :]
                a = s.text[at:]
                out.append(
                    self._build(
                        e,
                        probe_id,
                        "d0",
                        "cloze",
                        s.template_id,
                        (fact.fact_id,),
                        q,
                        a,
                        q,
                        a,
                        fact.text,
                        wrong,
                        lambda w, rest=rest: w + rest,
                        rng,
                        fact.relation,
                    )
                )
            previous.append(s.text)
        return out

    def reverse(self, e: Entity, spec: TypeSpec, pid) -> list[Probe]:
        path = f"{spec.template_dir}/reverse.j2"
        out = []
        for entry in spec.reverse:
            base = "_and_".join(entry)
            for combo in self._combos(e, entry):
                if self.key_count[self._key(e, entry, combo)] != 1:
                    continue  # these facts fit several entities: the question would be ambiguous
                probe_id = pid("d2", base)
                rng = stream(self.seed, "probe", probe_id)
                wrong = self.perturber.wrong_entities(
                    rng, e.entity_type, e.name, ((e.entity_type, entry), self.reverse_answers[(e.entity_type, entry)])
                )
                facts = {f.relation: {"text": f.text, "year": f.year} for f in combo}
                out.extend(
                    self._qa(
                        e,
                        probe_id,
                        "d2",
                        "reverse",
                        path,
                        base,
                        tuple(f.fact_id for f in combo),
                        e.name,
                        wrong,
                        rng,
                        e=self.view(e.entity_id),
                        facts=facts,
                    )
                )
        return out

    def hops(self, e: Entity, spec: TypeSpec, pid) -> list[Probe]:
        path = f"{spec.template_dir}/hop.j2"
        out = []
        for via, then in spec.hops:
            for link in self.field_facts(e.entity_id, via):
                target = self.entities[link.target_id]  # type: ignore[index]
                for fact in self.field_facts(target.entity_id, then):
                    base = f"{via}__{then}"
                    probe_id = pid("d3", base)
                    rng = stream(self.seed, "probe", probe_id)
                    wrong = self.wrong_for(rng, target, then, fact.text, asked=(e.entity_type, base))
                    out.extend(
                        self._qa(
                            e,
                            probe_id,
                            "d3",
                            "hop",
                            path,
                            base,
                            (link.fact_id, fact.fact_id),
                            fact.text,
                            wrong,
                            rng,
                            e=self.view(e.entity_id),
                            via=self.view(target.entity_id),
                            via_year=link.year,
                        )
                    )
        return out

    def inferences(self, e: Entity, spec: TypeSpec, pid) -> list[Probe]:
        path = f"{spec.template_dir}/infer.j2"
        view = self.view(e.entity_id)
        out = []

        def add(base: str, fact_ids: tuple[str, ...], answer: str, wrong: list[str] | None, number: str | None, **variables: Any) -> None:
            probe_id = pid("d4", base)
            rng = stream(self.seed, "probe", probe_id)
            if wrong is None:
                wrong = self.perturber.numbers(rng, number, answer)  # type: ignore[arg-type]
            out.extend(self._qa(e, probe_id, "d4", "inference", path, base, fact_ids, answer, wrong, rng, e=view, **variables))

        for inf in spec.inferences:
            p = inf.params
            base = inference_base(inf)
            if inf.rule == "age_at":
                born = self.field_facts(e.entity_id, p["born"])
                for ev in self.field_facts(e.entity_id, p["events"]) if born else []:
                    age = str(ev.year - year_of(e.attributes[p["born"]]))  # type: ignore[operator]
                    add(base, (born[0].fact_id, ev.fact_id), age, None, "age", event=ev.text, year=ev.year)
            elif inf.rule == "first_of":
                # "Which was X's first novel?": the answer is not in the question; the options are X's other works
                events = sorted(self.field_facts(e.entity_id, p["events"]), key=lambda f: f.year)
                if len(events) >= 2:
                    rng = stream(self.seed, "first", e.entity_id, base)
                    own = [f.text for f in events[1:]]
                    wrong = rng.sample(own, min(len(own), self.k))
                    wrong += self.perturber.wrong(rng, e, p["events"], {f.text for f in events}, self.k - len(wrong))
                    add(base, tuple(f.fact_id for f in events), events[0].text, wrong, None)
            elif inf.rule == "next_after":
                # "Which novel did X publish next, after A?": up to two consecutive pairs; the answer is not in the question
                events = sorted(self.field_facts(e.entity_id, p["events"]), key=lambda f: f.year)
                pairs = list(zip(events, events[1:]))
                for x, y in sorted(stream(self.seed, "pairs", e.entity_id, base).sample(pairs, min(2, len(pairs))), key=lambda xy: xy[0].year):
                    rng = stream(self.seed, "next", e.entity_id, x.fact_id)
                    own = [f.text for f in events if f.year < x.year or f.year > y.year]
                    wrong = rng.sample(own, min(len(own), self.k))
                    wrong += self.perturber.wrong(rng, e, p["events"], {f.text for f in events}, self.k - len(wrong))
                    add(base, (x.fact_id, y.fact_id), y.text, wrong, None, a=x.text)
            elif inf.rule == "count_before":
                # "How many novels had X published before YEAR?": the count is drawn uniformly from 0..K (two
                # distinct ones per entity) and the options are every count 0..K, so no count is a likelier answer
                events = sorted(self.field_facts(e.entity_id, p["events"]), key=lambda f: f.year)
                years = [f.year for f in events]
                if not years:
                    continue
                bounds = [years[0] - 10, *years, LAST_YEAR]  # count c: "before YEAR" with YEAR in (bounds[c], bounds[c + 1]]
                counts = [c for c in range(min(self.k, len(years)) + 1) if bounds[c] < bounds[c + 1]]
                rng_pick = stream(self.seed, "thresholds", e.entity_id, base)
                for c in sorted(rng_pick.sample(counts, min(2, len(counts)))):
                    year = rng_pick.randint(bounds[c] + 1, bounds[c + 1])
                    add(base, tuple(f.fact_id for f in events), str(sum(y < year for y in years)), None, "count", year=year)
            elif inf.rule in ("age_at_link", "years_between_link"):
                for link in self.field_facts(e.entity_id, p["via"]):
                    target = self.entities[link.target_id]  # type: ignore[index]
                    at = self.field_facts(e.entity_id, p["at"])
                    other = self.field_facts(target.entity_id, p.get("born", p["at"]))
                    if not at or not other:
                        continue
                    years = year_of(e.attributes[p["at"]]) - year_of(target.attributes[p.get("born", p["at"])])  # type: ignore[operator]
                    add(
                        base,
                        (at[0].fact_id, link.fact_id, other[0].fact_id),
                        str(abs(years)),
                        None,
                        "age",
                        via=self.view(target.entity_id),
                        later=years > 0,
                    )
            elif inf.rule == "age_in":
                at = self.field_facts(e.entity_id, p["at"])
                if at and year_of(e.attributes[p["at"]]) < int(p["year"]):  # type: ignore[operator]
                    age = str(int(p["year"]) - year_of(e.attributes[p["at"]]))  # type: ignore[operator]
                    add(base, (at[0].fact_id,), age, None, "age", year=p["year"])
        return out

    def attacks(self, e: Entity, direct: list[Probe]) -> list[Probe]:
        """Adversarial variants of a seeded share of the direct probes; ``attack`` names the kind."""
        rng = stream(self.seed, "attacks", e.entity_id)
        view = self.view(e.entity_id)
        kinds = [k for k in ATTACKS if k != "alias" or e.aliases]
        if len(direct) < 2:
            kinds = [k for k in kinds if k != "in_context_hint"]
        out = []
        for p in direct:
            if rng.random() >= ATTACK_SHARE:
                continue
            kind = rng.choice(kinds)
            template_id = p.template_id
            if kind == "alias":
                question = p.question.replace(e.name, rng.choice(e.aliases))
            elif kind == "misspelt_name":
                question = p.question.replace(e.name, misspell(e.name, rng))
            else:
                hint = rng.choice([o for o in direct if o is not p]).answer if kind == "in_context_hint" else ""
                block = self._deal(rng, "attacks.j2", kind)
                question = self.templates.render(
                    "attacks.j2", block, question=p.question, e=view, hint=hint, options=list(p.options), letters=LETTERS
                )
                template_id = f"{p.template_id}+attacks.j2#{block}"
            out.append(
                dataclasses.replace(p, probe_id=f"{p.probe_id}@{kind}", question=question, attack=kind, parent_id=p.probe_id, template_id=template_id)
            )
        return out


def misspell(name: str, rng: random.Random) -> str:
    """Swap two neighbouring letters inside the longest word of ``name`` (a typo a reader still recognises)."""
    words = name.split()
    i = max(range(len(words)), key=lambda j: len(words[j]))
    w = words[i]
    if len(w) < 4:
        return name + name[-1]
    j = rng.randint(1, len(w) - 3)
    if w[j] == w[j + 1]:
        w = w[:j] + w[j + 1 :]  # a doubled letter loses one instead
    else:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    words[i] = w
    return " ".join(words)

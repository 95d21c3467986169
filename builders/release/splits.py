"""Entity-level splits of a world: forget/retain, neighbours, holdout, knowledge coverage.

Every split is a pure function of the world and its seed:

- holdout: persons no other entity's training text names (no link to them, no inverse
  question naming them), drawn in a seeded order; ``holdout01 < holdout05 < holdout10``
  are prefixes of that order. Where too few such persons exist, the least-named ones fill
  the gap and ``Splits.holdout_linked`` counts them.
- forget: a seeded order of the remaining (training) persons; ``forget01 <
  forget05 < forget10`` are prefixes, so the sets nest as in TOFU.
- neighbours: training entities outside forget10 linked to a forget10 entity by a
  relation, in either direction.
- coverage: for each forget entity, a prefix of a seeded order of its direct (d1)
  QA probes that covers exactly ``round(p * n)`` of its ``n`` probed facts; the
  prefixes nest across coverage levels and agree across forget sets.
- entangled: per forget set, the injection QA of other entities that still names a
  forget entity (it cites a fact linking to one, or one of its facts: "Who founded
  O?" when the founder is forgotten). These rows leave ``retainXX`` for their own
  ``entangledXX`` config, so the retain set never trains a forget entity back in.
- real authors: the in-world stand-in for TOFU's Real Authors, a seeded sample of "who wrote ...?"
  (reverse) and "who founded ...?" (direct) questions, answered by a person's name, about entities
  outside forget10, the holdout and the neighbours: knowledge a model should keep that is not
  about the forget persons or anything linked to them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from entity_unlearn.errors import EntityUnlearnError

from ..schema import Probe, World
from ..world.sampler import stream


class SplitError(EntityUnlearnError, ValueError):
    """A split cannot be drawn as asked (too few entities, inexact coverage); the message says which."""


@dataclass(frozen=True)
class SplitConfig:
    """Which splits a release has. Percentages are of the training persons."""

    forget_percents: tuple[int, ...] = (1, 5, 10)
    coverage_forgets: tuple[int, ...] = (5, 10)
    coverage_percents: tuple[int, ...] = (25, 50, 75)
    retain_perturbed_size: int = 400
    real_authors_size: int = 100  # TOFU's real_authors_perturbed has 100 rows
    split_type: str = "person"


@dataclass(frozen=True)
class Splits:
    """The entity ids (and probe ids) of every split. Tuples are in the seeded draw order."""

    train: tuple[str, ...]
    forget: dict[int, tuple[str, ...]]
    holdout: dict[int, tuple[str, ...]]
    neighbors: dict[str, tuple[str, ...]]
    coverage: dict[tuple[int, int], dict[str, tuple[str, ...]]]
    retain_perturbed: tuple[str, ...]
    holdout_linked: int
    entangled: dict[int, tuple[str, ...]]
    real_authors: tuple[str, ...] = ()


def share(n: int, percent: int) -> int:
    """``percent`` % of ``n``, rounded half up, at least 1."""
    return max(1, math.floor(n * percent / 100 + 0.5))


def injection_probes(probes: Iterable[Probe]) -> list[Probe]:
    """The trained QA: direct (d1) probes without an attack, in world order."""
    return [p for p in probes if p.depth == "d1" and p.attack == "none"]


def named_by_others(world: World) -> dict[str, int]:
    """Entity id -> training texts of other entities that name it: their d1 questions and biography sentences citing
    a fact that points at it (A's mentor), or a fact of it that points at them (an inverse question, "Whom did A
    mentor?", names the mentee)."""
    about = {f.fact_id: {f.entity_id, f.target_id} for f in world.facts}
    count = {e.entity_id: 0 for e in world.entities}
    cited = [(p.entity_id, p.fact_ids) for p in injection_probes(world.probes)]
    cited += [(b.entity_id, s.fact_ids) for b in world.biographies for s in b.sentences]
    for owner, fact_ids in cited:
        for eid in {x for fid in fact_ids for x in about.get(fid, ()) if x is not None and x != owner}:
            count[eid] += 1
    return count


def choose_holdout(world: World, n: int, config: SplitConfig = SplitConfig()) -> tuple[tuple[str, ...], int]:
    """``n`` entities of ``config.split_type`` to hold out, and how many of them another entity's training text names.

    Entities no other training text names come first, in a seeded order; named ones (fewest texts
    first) only when too few unnamed exist.
    """
    named = named_by_others(world)
    pool = sorted(e.entity_id for e in world.entities if e.entity_type == config.split_type)
    if n >= len(pool):
        raise SplitError(f"cannot hold out {n} of {len(pool)} {config.split_type} entities; generate more entities")
    rng = stream(world.seed, "release", "holdout")
    keys = {eid: rng.random() for eid in pool}
    ranked = sorted(pool, key=lambda eid: (named[eid] > 0, named[eid], keys[eid]))
    chosen = tuple(ranked[:n])
    return chosen, sum(1 for eid in chosen if named[eid] > 0)


def linked_pairs(world: World) -> set[tuple[str, str]]:
    """Unordered entity pairs joined by any relation, as sorted tuples."""
    pairs = set()
    for e in world.entities:
        for targets in e.links.values():
            for link in targets:
                if link["target"] != e.entity_id:
                    pairs.add(tuple(sorted((e.entity_id, link["target"]))))
    return pairs


def cover_facts(probes: list[Probe], percent: int, seed: int) -> tuple[str, ...]:
    """Probe ids, a prefix of a seeded order, covering exactly ``round(percent% of the probed facts)``.

    Raises SplitError when no prefix hits the target (multi-fact probes overlapping).
    """
    facts = {f for p in probes for f in p.fact_ids}
    target = math.floor(len(facts) * percent / 100 + 0.5)
    order = sorted(probes, key=lambda p: p.probe_id)
    stream(seed, "release", "coverage", probes[0].entity_id).shuffle(order)
    covered: set[str] = set()
    chosen = []
    for p in order:
        if len(covered) == target:
            break
        if len(covered | set(p.fact_ids)) <= target:
            covered |= set(p.fact_ids)
            chosen.append(p.probe_id)
    if len(covered) != target:
        raise SplitError(f"entity {probes[0].entity_id}: cannot cover exactly {target} of {len(facts)} facts ({percent}%) with its d1 probes")
    return tuple(chosen)


def entangled_probes(world: World, probes: list[Probe], forget: set[str]) -> tuple[str, ...]:
    """Ids of ``probes`` of entities outside ``forget`` that cite a fact about a forget entity."""
    about = {f.fact_id: {f.entity_id, f.target_id} for f in world.facts}
    return tuple(p.probe_id for p in probes if p.entity_id not in forget and any(about.get(fid, set()) & forget for fid in p.fact_ids))


REAL_AUTHOR_QUESTIONS = (("reverse", "works"), ("direct", "founder"))  # (probe kind, fact relation): who wrote, who founded


def choose_real_authors(world: World, excluded: set[str], size: int) -> tuple[str, ...]:
    """Probe ids of at most ``size`` "who wrote / who founded" questions (no attack, one fact) whose entity and
    answer entity are not in ``excluded``; a seeded sample, in world order."""
    facts = {f.fact_id: f for f in world.facts}
    pool = []
    for p in world.probes:
        if p.attack != "none" or len(p.fact_ids) != 1:
            continue
        fact = facts[p.fact_ids[0]]
        own = fact.entity_id == p.entity_id  # not an inverse question ("Which company did X found?" is answered by a company)
        if own and (p.kind, fact.relation) in REAL_AUTHOR_QUESTIONS and not {p.entity_id, fact.target_id} & excluded:
            pool.append(p.probe_id)
    picked = set(stream(world.seed, "release", "real_authors").sample(sorted(pool), min(size, len(pool))))
    return tuple(p.probe_id for p in world.probes if p.probe_id in picked)


def make_splits(world: World, n_holdout: int, config: SplitConfig = SplitConfig()) -> Splits:
    """Every split of ``world``; ``n_holdout`` entities of ``config.split_type`` are held out first."""
    holdout_all, linked = choose_holdout(world, n_holdout, config)
    held = set(holdout_all)
    train = tuple(sorted(e.entity_id for e in world.entities if e.entity_type == config.split_type and e.entity_id not in held))
    pcts = sorted(config.forget_percents)
    holdout = {p: holdout_all[: min(n_holdout, share(len(train), p))] for p in pcts}
    order = list(train)
    stream(world.seed, "release", "forget").shuffle(order)
    forget = {p: tuple(order[: share(len(train), p)]) for p in pcts}
    if len(forget[pcts[-1]]) >= len(train):
        raise SplitError(f"forget{pcts[-1]:02d} would hold every one of the {len(train)} training entities; generate more")
    largest = set(forget[pcts[-1]])
    neighbors: dict[str, set[str]] = {}
    for a, b in sorted(linked_pairs(world)):
        for me, other in ((a, b), (b, a)):
            if other in largest and me not in largest and me not in held:
                neighbors.setdefault(me, set()).add(other)
    qa: dict[str, list[Probe]] = {}
    for p in injection_probes(world.probes):
        qa.setdefault(p.entity_id, []).append(p)
    coverage = {}
    for fp in config.coverage_forgets:
        if fp not in forget:
            raise SplitError(f"coverage set for forget{fp:02d} asked, but the forget percentages are {pcts}")
        for cp in config.coverage_percents:
            coverage[(fp, cp)] = {eid: cover_facts(qa[eid], cp, world.seed) for eid in forget[fp]}
    held_qa = [p for p in injection_probes(world.probes) if p.entity_id not in held]
    entangled = {pct: entangled_probes(world, held_qa, set(ids)) for pct, ids in forget.items()}
    tangled = set(entangled[pcts[-1]])
    pool = [p.probe_id for eid in train if eid not in largest for p in qa.get(eid, []) if p.probe_id not in tangled]
    size = min(config.retain_perturbed_size, len(pool))
    picked = set(stream(world.seed, "release", "retain_perturbed").sample(pool, size))
    excluded = largest | held | set(neighbors)
    return Splits(
        real_authors=choose_real_authors(world, excluded, config.real_authors_size),
        train=train,
        forget=forget,
        holdout=holdout,
        neighbors={k: tuple(sorted(v)) for k, v in sorted(neighbors.items())},
        coverage=coverage,
        retain_perturbed=tuple(p for p in pool if p in picked),
        holdout_linked=linked,
        entangled=entangled,
    )

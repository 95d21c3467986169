"""Generating a whole world: sample, check, derive facts, render biographies and probes."""

from __future__ import annotations

from tqdm.auto import tqdm

from ..schema import World
from .biography import render_biography
from .facts import entity_facts
from .invariants import check_world
from .probes import ProbeMaker, check_templates
from .registry import TYPES_DIR, TypeRegistry, check_types, default_registry
from .sampler import reserved_ids, sample_world
from .templates import Templates, builtin_templates

DEFAULT_MIX = {"person": 0.75, "organisation": 0.15, "place": 0.10}
# The version of what a seed generates (records, wording, rules); it changes when the same seed gives other worlds.
# 2.0.0: coherent attributes (conditional vocabularies), realistic names per culture, inflect, varied wording,
# inverse probes, uniform-rank distractors (the card's changelog has the details).
# 2.0.1: "1 year", not "1 years", in the inference answers (worlds without a count of one are unchanged).
GENERATOR_VERSION = "2.0.1"


def split_counts(n: int, mix: dict[str, float] | None = None) -> dict[str, int]:
    """``n`` entities split by ``mix`` (largest remainders); the default gives 150/30/20 for 200."""
    mix = mix or DEFAULT_MIX
    total = sum(mix.values())
    raw = {k: n * v / total for k, v in mix.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], k))[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def generate_world(
    counts: dict[str, int],
    seed: int = 0,
    k_perturbed: int = 5,
    registry: TypeRegistry | None = None,
    templates: Templates | None = None,
    progress: bool = False,
    unlinked: dict[str, int] | None = None,
) -> World:
    """A complete world: entities, facts, biographies and probes, all determined by ``seed``.

    ``unlinked`` reserves the last N entities of a type that no link may point at (``release_counts`` adds
    holdout persons; ``build`` reserves them so that no training text names them); their values are no
    other entity's wrong answers, since no training text holds them.
    Raises SpecError, TemplateProblem, SamplingError or WorldInvariantError with a
    message naming the file, entity and rule at fault.
    """
    registry = registry or default_registry()
    for name in counts:
        registry.get(name)  # unknown type names fail here, with a suggestion
    if k_perturbed < 1:
        raise ValueError(f"k_perturbed must be at least 1, got {k_perturbed}")
    if templates is None:
        extra = tuple(dict.fromkeys(s.search_dir for s in registry.specs() if s.search_dir not in (None, TYPES_DIR)))
        templates = Templates(extra) if extra else builtin_templates()
    check_types(registry.specs(), k_perturbed)
    check_templates(registry, templates)
    entities = sample_world(registry, counts, seed, unlinked)
    check_world(entities, registry)
    names = {e.entity_id: e.name for e in entities}
    facts = {e.entity_id: entity_facts(e, registry, names, templates) for e in entities}
    maker = ProbeMaker(entities, facts, registry, templates, seed, k_perturbed, reserved_ids(entities, unlinked))
    bios, probes = [], []
    for e in tqdm(entities, desc="rendering", unit="entity", disable=not progress):
        bio = render_biography(e, facts[e.entity_id], registry, names, templates, seed)
        bios.append(bio)
        probes.extend(maker.entity_probes(e, bio))
    return World(
        seed=seed,
        version=GENERATOR_VERSION,
        k_perturbed=k_perturbed,
        counts=dict(counts),
        entities=entities,
        facts=tuple(f for e in entities for f in facts[e.entity_id]),
        biographies=tuple(bios),
        probes=tuple(probes),
        type_hashes={s.name: s.sha256 for s in registry.specs()},
    )

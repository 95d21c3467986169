"""Building worlds of fictitious entities: types, sampler, facts, biographies, probes, files.

Importing this package does not import torch.
"""

from .audit import AuditError, audit_folder, render_audit
from .llm.backend import LLMConfig, LLMError, LLMUnavailable
from .llm.verify import WorldNames, verify_biography, verify_paraphrase, verify_perturbed
from .release.build import ReleaseConfig, ReleaseError, build_release, config_names, read_release_manifest, release_counts
from .release.hub import Published, PublishError, publish_release, verify_release
from .release.splits import SplitConfig, SplitError, Splits, make_splits
from .release.world_knowledge import WorldKnowledgeError, WorldQuestion, read_world_knowledge
from .schema import DEPTH_NAMES, DEPTHS, Biography, BioSentence, Entity, Fact, Probe, World
from .world.files import WorldFileError, read_world, write_world
from .world.generate import generate_world, split_counts
from .world.invariants import WorldInvariantError, check_world, world_violations
from .world.registry import TypeRegistry, check_types, default_registry
from .world.sampler import SamplingError, sample_world
from .world.spec import SpecError, TypeSpec, load_type, parse_type
from .world.templates import TemplateProblem, Templates

__all__ = [
    "DEPTHS",
    "DEPTH_NAMES",
    "BioSentence",
    "Biography",
    "Entity",
    "Fact",
    "Probe",
    "World",
    "SpecError",
    "TypeSpec",
    "load_type",
    "parse_type",
    "TypeRegistry",
    "default_registry",
    "check_types",
    "SamplingError",
    "sample_world",
    "WorldInvariantError",
    "check_world",
    "world_violations",
    "TemplateProblem",
    "Templates",
    "generate_world",
    "split_counts",
    "read_world",
    "write_world",
    "WorldFileError",
    "SplitConfig",
    "SplitError",
    "Splits",
    "make_splits",
    "WorldKnowledgeError",
    "WorldQuestion",
    "read_world_knowledge",
    "ReleaseConfig",
    "ReleaseError",
    "build_release",
    "config_names",
    "read_release_manifest",
    "release_counts",
    "PublishError",
    "Published",
    "publish_release",
    "verify_release",
    "AuditError",
    "audit_folder",
    "render_audit",
    "LLMConfig",
    "LLMError",
    "LLMUnavailable",
    "enrich_world",
    "WorldNames",
    "verify_biography",
    "verify_paraphrase",
    "verify_perturbed",
]


def __getattr__(name: str):
    # enrich_world needs pydantic (the optional "llm" extra): imported on first use only.
    if name == "enrich_world":
        from .llm.enrich import enrich_world

        return enrich_world
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

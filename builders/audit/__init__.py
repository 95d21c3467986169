"""The validity audit: does a release (or world) measure knowledge, or can shortcuts score on it?

``audit_folder(path)`` reads a release or world folder from its published files alone and returns
the report: shortcut baselines (registered heuristics), a model-free bigram floor, answer leakage,
variety, consistency and language checks, split hygiene, judged against ``thresholds.toml``.
``render_audit(report)`` writes it as Markdown (``cards/audit.md.j2``). Importing this package does
not import torch.
"""

from .groups import Tally, pick_score
from .heuristics import HEURISTICS, Context, Heuristic, get_heuristic, heuristic, run_heuristics
from .language import TEXT_CHECKS, TextCheck, get_text_check, text_check
from .load import AuditError, EntityRow, FactRow, Material, ProbeRow, TextRow, load_material
from .report import FORMAT, audit, audit_folder, judge, render_audit, summary
from .thresholds import THRESHOLDS_FILE, Thresholds, load_thresholds

__all__ = [
    "AuditError",
    "Context",
    "EntityRow",
    "FactRow",
    "FORMAT",
    "HEURISTICS",
    "Heuristic",
    "Material",
    "ProbeRow",
    "TEXT_CHECKS",
    "THRESHOLDS_FILE",
    "Tally",
    "TextCheck",
    "TextRow",
    "Thresholds",
    "audit",
    "audit_folder",
    "get_heuristic",
    "get_text_check",
    "heuristic",
    "judge",
    "load_material",
    "load_thresholds",
    "pick_score",
    "render_audit",
    "run_heuristics",
    "summary",
    "text_check",
]

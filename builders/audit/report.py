"""The audit: run every check on a release or world, judge the numbers against the thresholds, render the report.

``audit(material)`` returns one JSON-ready dict (``format`` ``entity-unlearn-audit/1``): what was
audited, every section's numbers, the thresholds, the failures (each with the rule, the value and
the threshold it broke) and the verdict. It holds no timing or date, so the same files give the
same report. ``render_audit`` turns it into Markdown with ``cards/audit.md.j2``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from statistics import NormalDist
from typing import Any

from .consistency import consistency
from .floor import floor
from .groups import DIGITS
from .heuristics import Context, run_heuristics
from .hygiene import hygiene
from .language import language
from .leakage import leakage
from .load import Material, collection_paused, load_material
from .thresholds import Thresholds, load_thresholds
from .variety import variety

FORMAT = "entity-unlearn-audit/1"
# The version of what the checks compute; it changes when the same files give other numbers.
# 2: inverse probes answered by the stating entity's name, hidden attributes mined, novel names = no famous
# full name and no real one-word name, date orders mined over entities, compound nouns in number agreement.
# 3: the answer prior does not count an entity whose answer is computed from the asked entity's own facts.
AUDIT_VERSION = "3"
TEMPLATE = "audit.md.j2"


def worst_relation(result: dict[str, Any], min_probes: int) -> dict[str, Any] | None:
    """The relation with the highest gain among those with at least ``min_probes`` probes."""
    judged = [(c["gain"], k, c["n"], c["se"]) for k, c in result["by_relation"].items() if c["n"] >= min_probes]
    if not judged:
        return None
    gain, rel, n, se = max(judged, key=lambda x: (x[0], x[1]))
    return {"relation": rel, "n": n, "gain": gain, "se": se}


def noise_z(choosers: list[tuple[str, dict[str, Any]]], t: Thresholds) -> float:
    """How many standard errors above chance a relation's gain must be to fail: Bonferroni over the judged groups,
    so that a fair release fails one by chance with probability ``t.relation_false_alarm`` at most."""
    groups = sum(1 for _, h in choosers for c in h["by_relation"].values() if c["n"] >= t.min_probes)
    return NormalDist().inv_cdf(1 - t.relation_false_alarm / max(1, groups))


def judge(report: dict[str, Any], t: Thresholds) -> list[dict[str, Any]]:
    """Every broken threshold as ``{check, rule, subject, value, threshold}``, in report order."""
    out: list[dict[str, Any]] = []

    def fail(check: str, rule: str, subject: str, value: Any, threshold: Any) -> None:
        out.append({"check": check, "rule": rule, "subject": subject, "value": value, "threshold": threshold})

    choosers = [(name, h) for name, h in report["shortcuts"].items()] + [("bigram_floor", report["floor"]["mc"])]
    z = noise_z(choosers, t)
    for name, h in choosers:
        o = h["overall"]
        if o["n"] >= t.min_probes and o["gain"] > t.max_gain_overall:
            fail("shortcuts", "max_gain_overall", name, o["gain"], t.max_gain_overall)
        for rel, c in h["by_relation"].items():
            if c["n"] >= t.min_probes and c["gain"] > max(t.max_gain_relation, z * c["se"]):
                fail("shortcuts", "max_gain_relation", f"{name} on {rel}", c["gain"], round(max(t.max_gain_relation, z * c["se"]), DIGITS))
    for group, c in report["leakage"]["own_question"]["by_depth_kind"].items():
        if c["share"] > t.max_own_question_share:
            fail("leakage", "max_own_question_share", group, c["share"], t.max_own_question_share)
    for rel, c in report["variety"]["d1_questions"].items():
        need = min(t.min_d1_question_forms, c["texts"])
        if c["forms"] < need:
            fail("variety", "min_d1_question_forms", rel, c["forms"], need)
    for check, c in report["consistency"]["checks"].items():
        if c["violations"] > t.max_violations:
            fail("consistency", "max_violations", check, c["violations"], t.max_violations)
    for check, c in report["language"]["checks"].items():
        if c["findings"] > t.max_findings:
            fail("language", "max_findings", check, c["findings"], t.max_findings)
    h = report["hygiene"]
    if h["applies"]:
        for name, c in h["retain_naming_forget"].items():
            if c["rows_naming"] > t.max_retain_rows_naming_forget:
                fail(
                    "hygiene", "max_retain_rows_naming_forget", f"{name} naming {c['forget_set']}", c["rows_naming"], t.max_retain_rows_naming_forget
                )
        for fs, c in h["world_naming_forget"].items():
            if c["rows_naming"] > t.max_world_rows_naming_forget:
                fail("hygiene", "max_world_rows_naming_forget", f"world naming {fs}", c["rows_naming"], t.max_world_rows_naming_forget)
        n = h["holdout_in_training"]["texts_naming"]
        if n > t.max_holdout_texts_in_training:
            fail("hygiene", "max_holdout_texts_in_training", "full and corpus", n, t.max_holdout_texts_in_training)
    return out


def audit(
    material: Material, thresholds: Thresholds | None = None, progress: bool = False, timings: dict[str, tuple[float, float]] | None = None
) -> dict[str, Any]:
    """The validity report of ``material`` (see the module docstring); ``timings``, if given, receives each step's
    (wall-clock, CPU) seconds, kept out of the report, which holds no timing."""
    from tqdm.auto import tqdm

    t = thresholds if thresholds is not None else load_thresholds()
    steps = ["shortcuts", "floor", "leakage", "variety", "consistency", "language", "hygiene"]
    report: dict[str, Any] = {"format": FORMAT, "audit_version": AUDIT_VERSION, "source": material.source(), "probes": len(material.probes)}
    bar = tqdm(steps, desc="audit", unit="check", disable=not progress)
    with collection_paused():
        for step in bar:
            bar.set_postfix_str(step)
            start, cpu = time.perf_counter(), time.process_time()
            if step == "shortcuts":
                report[step] = run_heuristics(material, Context(material))
                for h in report[step].values():
                    h["worst_relation"] = worst_relation(h, t.min_probes)
            elif step == "floor":
                report[step] = floor(material, t.add_k, t.prior_weight)
                report[step]["mc"]["worst_relation"] = worst_relation(report[step]["mc"], t.min_probes)
            elif step == "consistency":
                report[step] = consistency(material, t.order_min_support, t.order_max_share, t.symmetric_min_share)
            else:
                report[step] = {"leakage": leakage, "variety": variety, "language": language, "hygiene": hygiene}[step](material)
            if timings is not None:
                timings[step] = (time.perf_counter() - start, time.process_time() - cpu)
    report["thresholds"] = asdict(t)
    choosers = [(name, h) for name, h in report["shortcuts"].items()] + [("bigram_floor", report["floor"]["mc"])]
    report["relation_noise_z"] = round(noise_z(choosers, t), 2)
    report["failures"] = judge(report, t)
    report["verdict"] = "fail" if report["failures"] else "pass"
    return report


def audit_folder(
    folder: str | Path, manifest: dict[str, Any] | None = None, thresholds: Thresholds | None = None, progress: bool = False
) -> dict[str, Any]:
    """``audit`` of a release or world folder (``manifest`` stands in for a manifest.json not written yet)."""
    return audit(load_material(folder, manifest), thresholds, progress)


def render_audit(report: dict[str, Any], title: bool = True) -> str:
    """The report as Markdown (``cards/audit.md.j2``); ``title=False`` for a section of another document."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from entity_unlearn.cards import CARD_DIR

    env = Environment(
        loader=FileSystemLoader(str(CARD_DIR)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
    env.filters["signed"] = lambda x: "-" if x is None else f"{x:+.3f}"
    return env.get_template(TEMPLATE).render(r=report, title=title)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its examples and mined rules: the numbers a release manifest keeps."""

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("examples", "order_rules", "most_common")}
        return x

    return strip(report)

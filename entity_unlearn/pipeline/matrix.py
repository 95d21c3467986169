"""The study's robustness matrix: every attack on each of ``--robustness-methods`` and on the reference model.

Steps (names as the study marks them): ``reference_<kind>`` (attacked reference weights; weight attacks only),
``eval_reference_<kind>``, and per method ``<method>_<kind>`` and ``eval_<method>_<kind>``, evaluated on the
forget set with the attacked reference as reference and the target as the model before unlearning. The
summary per method is ``robustness.summarise`` over those results.
"""

from __future__ import annotations

from pathlib import Path

from .attack import attacked_model, get_attack


def attacked_methods(cfg) -> list[str]:
    """The robustness methods the study runs (a default such as ga is skipped when --methods leaves it out)."""
    return [m for m in cfg.robustness_methods if m in cfg.methods]


def robustness_steps(study) -> list:
    """The matrix's steps for ``study`` (a ``study.Study``); none when no method or attack is asked for."""
    from .study import Step

    c = study.cfg
    methods = attacked_methods(c)
    if not methods or not c.attacks:
        return []
    options = {"device": c.device, "dtype": c.dtype, "allow_pickle": c.allow_pickle, "trust_remote_code": c.trust_remote_code, "progress": c.progress}
    steps = []
    for kind in c.attacks:
        attack = get_attack(kind)

        def attacked(source: str, attack=attack):
            return lambda out: attacked_model(attack, str(study.model(source)), c.data, c.forget, Path(out), options)

        ref = "reference"
        if attack.changes_weights:
            ref = f"reference_{kind}"
            steps.append(Step(ref, "model", attacked("reference")))
        steps.append(study.eval_step(f"eval_reference_{kind}", ref, reference=False, attack=attack))
        for m in methods:
            model = m
            if attack.changes_weights:
                model = f"{m}_{kind}"
                steps.append(Step(model, "model", attacked(m)))
            steps.append(study.eval_step(f"eval_{m}_{kind}", model, before="target", attack=attack, reference_name=f"reference_{kind}"))
    return steps


def robustness_report(study, results: dict) -> dict:
    """Per robustness method: the summary of every attack, and the quantisation bin-crossing shares."""
    from .robustness import bin_crossing, summarise

    c = study.cfg
    attacks = {k: get_attack(k) for k in c.attacks}
    out = {}
    for m in attacked_methods(c):
        if m not in results or "target" not in results:
            continue
        inputs = {"before": results.get("target"), "unlearned": results.get(m), "reference": results.get("reference")}
        for kind in c.attacks:
            inputs[f"attacked:{kind}"] = results.get(f"{m}_{kind}")
            inputs[f"reference:{kind}"] = results.get(f"reference_{kind}")
        summary = summarise(c.attacks, attacks, inputs, c.data, c.forget)
        if any(k.startswith("quant") for k in c.attacks):
            summary["bin_crossing"] = bin_crossing(str(study.model("target")), str(study.model(m)))
        out[m] = summary
    return out

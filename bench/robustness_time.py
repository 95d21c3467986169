"""Cost of the robustness matrix: seconds per attack (attacked model, forget-set evaluation) against one full
evaluation of the same model, measured in the same run (report the ratios: timings vary with load).

    python bench/robustness_time.py --data entity-unlearn --model study/models/npo_gd --reference study/models/reference \
        --before study/evals/eval_target/results.json --out /tmp/robustness-time

Prints, per attack, the seconds to make the attacked unlearned model (relearning, quantisation; 0 for prompt
attacks) and to evaluate it on the forget set, and the same for the reference model, then the seconds of a full
evaluation (every set) as the baseline. The study's matrix costs, per attacked method, one attacked model and
one forget-set evaluation per attack, plus once the same for the reference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True, help="an unlearned model")
    ap.add_argument("--reference", required=True, help="the reference model")
    ap.add_argument("--before", required=True, help="results.json of the model before unlearning")
    ap.add_argument("--forget", default="forget05")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from entity_unlearn.eval.run import EvalConfig, evaluate
    from entity_unlearn.pipeline.attack import ATTACKS, attacked_model, get_attack
    from entity_unlearn.pipeline.robustness import AttackRun, attack_eval

    out = Path(args.out)
    figures: dict[str, dict] = {}
    start = time.perf_counter()
    evaluate(EvalConfig(model=args.model, data=args.data, forget=args.forget, out=str(out / "full"), progress=False))
    figures["full evaluation"] = {"eval_s": round(time.perf_counter() - start, 1)}
    cfg = AttackRun(model=args.model, data=args.data, forget=args.forget, out=str(out), before=args.before)
    memo: dict = {}
    for kind in ATTACKS:
        attack = get_attack(kind)
        for who, source in (("model", args.model), ("reference", args.reference)):
            start = time.perf_counter()
            model = (
                str(attacked_model(attack, source, args.data, args.forget, out / "models" / f"{who}_{kind}", {}))
                if attack.changes_weights
                else source
            )
            made = time.perf_counter() - start
            start = time.perf_counter()
            attack_eval(cfg, f"{who}_{kind}", model, attack, None, memo)
            figures[f"{kind} ({who})"] = {"attack_s": round(made, 1), "eval_s": round(time.perf_counter() - start, 1)}
    full = figures["full evaluation"]["eval_s"]
    for name, f in figures.items():
        ratio = (f.get("attack_s", 0) + f["eval_s"]) / full
        print(f"{name:<28} attack {f.get('attack_s', 0):6.1f} s  eval {f['eval_s']:6.1f} s  = {ratio:.2f} x a full evaluation")
    (out / "robustness_time.json").write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Prints the validity audit's verdict and worst numbers for default releases of several seeds.

Usage: python bench/audit_seeds.py [--persons N] [--seeds 0,1,2,3,4,5] [--world] [--failures]

Each seed's release (`entity-unlearn build --entities N --seed S`, N = 200 by default: `make demo`'s
release at seed 0) is built in a temporary folder and audited with the thresholds of
`builders/audit/thresholds.toml`, as `entity-unlearn audit --strict` does. `--world` audits the world
folder instead (no parquet, no holdout: quicker, for development). Per seed, it prints the verdict,
the number of broken thresholds, each chooser's gain over chance overall and on its worst relation
(30+ probes), the relation groups over 0.08 and the largest of their z (gain / standard error) against the
noise bound, the fewest d1 question forms of a relation, consistency violations, text-check
findings, hygiene counts, probes, and the seconds to generate/build and to audit.
`--failures` also lists every broken threshold.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from entity_unlearn.builders import ReleaseConfig, build_release, generate_world, write_world
from entity_unlearn.builders.audit import audit_folder
from entity_unlearn.builders.release.build import release_world_args
from entity_unlearn.builders.world.files import templates_hash


def worst(result: dict, min_probes: int = 30) -> tuple[float, str]:
    judged = [(c["gain"], k) for k, c in result["by_relation"].items() if c["n"] >= min_probes]
    return max(judged) if judged else (float("nan"), "-")


def build(persons: int, seed: int, folder: Path, world_only: bool) -> None:
    world = generate_world(**release_world_args(persons), seed=seed)
    if world_only:
        write_world(world, folder)
    else:
        build_release(world, folder, ReleaseConfig(version="2.0.0", generation={"method": "template", "templates_sha256": templates_hash()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=200)
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--world", action="store_true", help="audit the world folder, not a release")
    ap.add_argument("--failures", action="store_true", help="list every broken threshold")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "out"
            t0 = time.perf_counter()
            build(args.persons, seed, folder, args.world)
            t1 = time.perf_counter()
            report = audit_folder(folder)
            t2 = time.perf_counter()
        kind = "world" if args.world else "release"
        print(f"seed {seed} ({kind}, {args.persons} persons): {report['verdict'].upper()}, {len(report['failures'])} broken; "
              f"{report['probes']} probes; build {t1 - t0:.1f} s, audit {t2 - t1:.1f} s")  # fmt: skip
        choosers = {**report["shortcuts"], "bigram_floor": report["floor"]["mc"]}
        for name, h in choosers.items():
            g, rel = worst(h)
            print(f"  {name:<13} overall {h['overall']['gain']:+.3f}   worst relation {g:+.3f} {rel}")
        t = report["thresholds"]
        over = [
            (c["gain"] / c["se"] if c["se"] else float("inf"), name, rel, c["n"], c["gain"])
            for name, h in choosers.items()
            for rel, c in h["by_relation"].items()
            if c["n"] >= t["min_probes"] and c["gain"] > t["max_gain_relation"]
        ]
        if over:
            z, name, rel, n, g = max(over)
            print(f"  over {t['max_gain_relation']} on a relation (the issue's rule without the noise bound): {len(over)} groups; "
                  f"largest z {z:.1f} ({name} on {rel}, {n} probes, {g:+.3f}); noise bound z {report['relation_noise_z']}")  # fmt: skip
        else:
            print(f"  over {t['max_gain_relation']} on a relation: none")
        forms = report["variety"]["d1_questions"]
        fewest = min(forms.items(), key=lambda kv: (kv[1]["forms"], kv[0]))
        print(f"  variety: fewest d1 question forms {fewest[1]['forms']} ({fewest[0]})")
        cons = {k: v["violations"] for k, v in report["consistency"]["checks"].items() if v["violations"]}
        lang = {k: v["findings"] for k, v in report["language"]["checks"].items() if v["findings"]}
        print(f"  consistency violations: {cons or 0}; text findings: {lang or 0}")
        h = report["hygiene"]
        if h["applies"]:
            retain = sum(c["rows_naming"] for c in h["retain_naming_forget"].values())
            print(f"  hygiene: retain rows naming forget {retain}; holdout in training {h['holdout_in_training']['texts_naming']}")
        if args.failures:
            for f in report["failures"]:
                print(f"    FAIL {f['check']}: {f['subject']} = {f['value']} (threshold {f['threshold']})")


if __name__ == "__main__":
    main()

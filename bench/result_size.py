"""Size of an evaluation's result on disk: results.json + rows.parquet against the layouts eval wrote before: the
rows as gzip JSON lines (format entity-unlearn-result/2, rows.jsonl.gz) and the single results.json with the rows
inline (format /1, same JSON settings).

    python bench/result_size.py --entities 40 --work /tmp/result-size      # build, inject a tiny model, evaluate
    python bench/result_size.py --eval study/evals/eval_target              # an existing evaluation

Prints the bytes of each file, the older layouts' equivalents, and the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
from dataclasses import replace
from pathlib import Path


def evaluated(entities: int, work: Path, epochs: int) -> Path:
    from entity_unlearn.cli import main as cli
    from entity_unlearn.eval import EvalConfig, evaluate
    from entity_unlearn.pipeline.inject import TINY_TRAIN, inject_tiny

    release, out = work / "release", work / "eval"
    if not (release / "manifest.json").is_file():
        assert cli(["build", "--entities", str(entities), "--seed", "0", "--version", "1.0.0", "--out", str(release), "--quiet"]) == 0
    model = work / "model"
    if not (model / "config.json").is_file():
        inject_tiny(str(release), model, train=replace(TINY_TRAIN, epochs=epochs))
    if not (out / "results.json").is_file():
        evaluate(EvalConfig(model=str(model), data=str(release), out=str(out), progress=False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", help="an evaluation's output folder")
    ap.add_argument("--entities", type=int, default=40, help="without --eval: persons of the release built")
    ap.add_argument("--epochs", type=int, default=10, help="without --eval: injection epochs of the tiny model (the tiny preset otherwise)")
    ap.add_argument("--work", default="/tmp/result-size", help="without --eval: where release, model and evaluation go")
    args = ap.parse_args()
    from entity_unlearn.eval import read_result
    from entity_unlearn.eval.result_file import ROWS_FILE, finite

    folder = Path(args.eval) if args.eval else evaluated(args.entities, Path(args.work), args.epochs)
    result = read_result(folder, "eval")
    inline = {k: v for k, v in result.items() if not k.startswith("rows_")} | {"format": "entity-unlearn-result/1"}
    inline_bytes = len(json.dumps(finite(inline), indent=1, sort_keys=True, allow_nan=False).encode("utf-8"))
    lines = b"".join(json.dumps(finite(r), sort_keys=True, allow_nan=False, ensure_ascii=False).encode("utf-8") + b"\n" for r in result["rows"])
    jsonl_bytes = len(gzip.compress(lines, compresslevel=6, mtime=0))
    head, side = (folder / "results.json").stat().st_size, (folder / ROWS_FILE).stat().st_size
    print(f"evaluation: {folder} ({result['rows_count']} rows, {len(result['entities'])} entity records)")
    print(f"{'results.json':<18} {head:>10,} bytes")
    print(f"{ROWS_FILE:<18} {side:>10,} bytes")
    print(f"{'together':<18} {head + side:>10,} bytes")
    print(f"{'rows.jsonl.gz (/2)':<18} {jsonl_bytes:>10,} bytes  (the rows file is {side / jsonl_bytes:.1%} of it)")
    print(f"{'inline (/1)':<18} {inline_bytes:>10,} bytes  (the two files are {(head + side) / inline_bytes:.1%} of it)")


if __name__ == "__main__":
    main()

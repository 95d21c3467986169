"""Planned score pass against the naive path, on one release and one model.

    python bench/eval_passes.py --data entity-unlearn [--model DIR] [--forget forget05]

Planned: one context per question shared by all its candidates (KV cache copied),
duplicates removed, groups sorted by length. Naive: every candidate its own
sequence (context + continuation), no deduplication, items in release order.
Prints wall time, rows and tokens forwarded, padding share, and checks that the
metric values agree. Without --model, a tiny model is built (and fine-tuned for a
few epochs) on the release, on the CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from entity_unlearn.eval import CausalLM, Formatter, load_items, open_release, plan
from entity_unlearn.eval.aggregate import grouped_metrics
from entity_unlearn.eval.data import _item
from entity_unlearn.eval.model import TokenScores, _token_scores
from entity_unlearn.eval.passes import encode_item
from entity_unlearn.eval.rows import build_rows


def naive(lm: CausalLM, items, formatter: Formatter, p, batch_rows: int):
    """Every candidate of every item as its own full sequence, batched in input order."""
    import torch

    seqs = []
    for item in items:
        _, keys = p.item_keys[item.item_id]
        for cand, key in zip(item.candidates(), keys):
            ctx, cont = encode_item(formatter, item, cand)
            seqs.append((key, ctx, cont))
    scores, stats = {}, {"rows": 0, "tokens": 0, "padded": 0}
    pad = lm.tokenizer.pad_token_id
    with torch.inference_mode():
        for start in range(0, len(seqs), batch_rows):
            batch = seqs[start : start + batch_rows]
            width = max(len(c) + len(x) for _, c, x in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, (_, c, x) in enumerate(batch):
                ids[i, : len(c) + len(x)] = torch.tensor(list(c) + list(x))
                mask[i, : len(c) + len(x)] = 1
            stats["rows"] += len(batch)
            stats["tokens"] += int(mask.sum())
            stats["padded"] += mask.numel() - int(mask.sum())
            logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits.float()
            for i, (key, c, x) in enumerate(batch):
                lp, z = _token_scores(logits[i, len(c) - 1 : len(c) + len(x) - 1], ids[i, len(c) : len(c) + len(x)].to(logits.device))
                scores[key] = TokenScores(tuple(lp.tolist()), tuple(z.tolist()))
    return scores, stats


class _Scores:
    def __init__(self, score):
        self.score, self.generate = score, {}


def compare(name: str, lm: CausalLM, formatter: Formatter, items, batch_groups: int) -> None:
    p = plan(items, formatter)
    lm.counters = {k: 0 for k in lm.counters}
    start = time.perf_counter()
    groups = [(p.contexts[k], list(c.values())) for k, c in p.continuations.items()]
    planned = lm.score(groups, batch_groups=batch_groups)
    planned_s = time.perf_counter() - start
    cache = {k: s for (ck, conts), ss in zip(p.continuations.items(), planned) for k, s in zip(conts, ss)}
    pc = dict(lm.counters)
    rows_per_batch = max(1, round(p.n_score() / max(1, len(groups)) * batch_groups))
    start = time.perf_counter()
    naive_scores, nc = naive(lm, items, formatter, p, rows_per_batch)
    naive_s = time.perf_counter() - start
    a = grouped_metrics(build_rows(items, p, _Scores(cache), with_generation=False))
    b = grouped_metrics(build_rows(items, p, _Scores(naive_scores), with_generation=False))
    worst = max(abs(x["value"] - y["value"]) for x, y in zip(a, b) if x["value"] is not None)
    print(f"\n{name}: {len(items)} items, {p.requested} candidate continuations ({p.n_score()} unique, {len(p.contexts)} contexts)")
    print(f"{'path':<8} {'seconds':>8} {'rows fwd':>9} {'tokens fwd':>11} {'padding':>8}")
    print(
        f"{'planned':<8} {planned_s:>8.2f} {pc['forward_rows']:>9} {pc['tokens'] + pc['padded_tokens']:>11} {pc['padded_tokens'] / (pc['tokens'] + pc['padded_tokens']):>8.1%}"
    )
    print(f"{'naive':<8} {naive_s:>8.2f} {nc['rows']:>9} {nc['tokens'] + nc['padded']:>11} {nc['padded'] / (nc['tokens'] + nc['padded']):>8.1%}")
    print(
        f"naive / planned: {(nc['tokens'] + nc['padded']) / (pc['tokens'] + pc['padded_tokens']):.2f}x tokens, {naive_s / planned_s:.2f}x wall time; "
        f"largest metric difference {worst:.2e} over {len(a)} aggregates"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model")
    ap.add_argument("--forget", default="forget05")
    ap.add_argument("--batch-groups", type=int, default=16)
    args = ap.parse_args()
    model = args.model
    if model is None:
        from entity_unlearn.pipeline.finetune import TrainConfig
        from entity_unlearn.pipeline.inject import inject_tiny

        model = str(inject_tiny(args.data, tempfile.mkdtemp() + "/tiny", train=TrainConfig(epochs=3)))
    lm = CausalLM(model)
    formatter = Formatter(lm.tokenizer)
    release = open_release(args.data)
    pct = args.forget[-2:]
    tofu = [_item(r, "forget") for r in release.load(f"{args.forget}_perturbed")] + [_item(r, "retain") for r in release.load("retain_perturbed")]
    compare(f"{args.forget}_perturbed + retain_perturbed", lm, formatter, tofu, args.batch_groups)
    items, _ = load_items(release, args.forget)
    compare(f"probes ({args.forget}: forget, retain, neighbor, holdout{pct}, world)", lm, formatter, items, args.batch_groups)


if __name__ == "__main__":
    main()

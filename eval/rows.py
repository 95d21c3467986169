"""Per-item rows: what the passes returned for each item, flattened for the metrics."""

from __future__ import annotations

from collections.abc import Sequence

from .passes import Item, Plan, RequestCache
from .rouge import Rouge


def build_rows(items: Sequence[Item], p: Plan, cache: RequestCache, with_generation: bool = True) -> list[dict]:
    """One flat row per item (``item_id`` = ``<set>:<probe_id>``, with the question text, so rows join with other
    tools' per-item output on the question or on the release's ``probe_id``): summed log-probs and token counts per candidate, token scores of the
    answer (for membership inference), the greedy answer and its ROUGE-L recall against the
    answer (TOFU's metric) and against the short answer (does the model state the fact?)."""
    rouge = Rouge() if with_generation else None
    rows = []
    for item in items:
        ctx_key, keys = p.item_keys[item.item_id]
        scores = [cache.score[k] for k in keys]
        i = 0
        answer = scores[i]
        i += 1
        para = None
        if item.paraphrased_answer is not None:
            para, i = scores[i], i + 1
        pert = scores[i : i + len(item.perturbed_answer)]
        opts = scores[i + len(item.perturbed_answer) :]
        row = {
            "item_id": item.item_id,
            "set": item.set,
            "entity_id": item.entity_id,
            "depth": item.depth,
            "attack": item.attack,
            "kind": item.kind,
            "question": item.question,
            "fact_ids": list(item.fact_ids),
            "answer": item.answer,
            "short_answer": item.short_answer,
            "logp_answer": sum(answer.logp),
            "ntok_answer": len(answer.logp),
            "token_logp": list(answer.logp),
            "token_minkpp": list(answer.minkpp),
            "logp_paraphrase": sum(para.logp) if para else sum(answer.logp),
            "ntok_paraphrase": len(para.logp) if para else len(answer.logp),
            "logp_perturbed": [sum(s.logp) for s in pert],
            "ntok_perturbed": [len(s.logp) for s in pert],
            "logp_options": [sum(s.logp) for s in opts],
            "ntok_options": [len(s.logp) for s in opts],
            "answer_index": item.answer_index,
        }
        if rouge is not None:
            gen = cache.generate[ctx_key]
            row["generation"] = gen
            row["rouge_l_recall"] = rouge.recall(item.answer, gen)
            row["short_recall"] = rouge.recall(item.short_answer, gen)
        rows.append(row)
    return rows

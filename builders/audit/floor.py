"""The no-knowledge floor: what a language model of the training text's wording alone scores.

A word bigram model with a smoothed unigram base is fitted on the release's training text
(``full`` QA and ``corpus`` biographies):

    P_uni(w) = (c(w) + k) / (N + k·|V|)                       (add-k, |V| counts one unknown word)
    P(w | v) = (c(v, w) + μ·P_uni(w)) / (c(v) + μ)           (Dirichlet smoothing towards P_uni)

It sees no question: a candidate answer is scored from a sentence start, token by token
(the tokens of ``text.tokens``), and compared per token as the evaluator compares a model's
answers (``eval/metrics.py``). It knows which strings and word pairs the world uses, not which
entity they belong to, so its multiple-choice accuracy above chance is a shortcut of wording,
and its truth ratio shows whether true answers read more "typical" than wrong ones. The MC
accuracy here splits ties evenly (``groups.pick_score``), like the heuristics; the eval
metrics ``mc_accuracy`` and ``truth_ratio`` computed on the same rows are reported beside it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from .groups import DIGITS, Tally, argmax_set, pick_score
from .load import AuditError, Material
from .text import TOKEN, tokens

START = "<s>"


class BigramLM:
    """A word bigram model of ``texts`` with add-k unigram smoothing and a Dirichlet-smoothed bigram."""

    def __init__(self, texts: tuple[str, ...] | list[str], add_k: float, prior_weight: float) -> None:
        if add_k <= 0 or prior_weight <= 0:
            raise AuditError("the floor's add_k and prior_weight must be positive (thresholds.toml [floor])")
        self.k, self.mu = add_k, prior_weight
        self.uni: Counter = Counter()
        self.bi: Counter = Counter()
        self.ctx: Counter = Counter()
        for text in texts:  # Counter.update counts an iterable in C
            toks = tokens(text)
            if not toks:
                continue
            self.uni.update(toks)
            self.bi.update(zip((START, *toks), toks))
            self.ctx.update((START, *toks[:-1]))
        self.total = sum(self.uni.values())
        self.vocab = len(self.uni) + 1
        self._cache: dict[str, tuple[float, int]] = {}
        self._pairs = _Pairs(self)

    def p_uni(self, w: str) -> float:
        return (self.uni.get(w, 0) + self.k) / (self.total + self.k * self.vocab)

    def pair(self, prev: str, w: str) -> float:
        """log P(w | prev)."""
        return math.log((self.bi.get((prev, w), 0) + self.mu * self.p_uni(w)) / (self.ctx.get(prev, 0) + self.mu))

    def logp(self, text: str) -> tuple[float, int]:
        """(summed log-probability, token count) of ``text`` from a sentence start; (0, 0) for no tokens."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        toks = TOKEN.findall(text.lower())  # text.tokens without its cache: most scored texts occur once
        total = 0.0
        for lp in map(self._pairs.__getitem__, zip((START, *toks), toks)):  # summed in order, as a loop would
            total += lp
        hit = self._cache[text] = (total, len(toks))
        return hit


class _Pairs(dict):
    """(previous word, word) -> log P(word | previous), computed on first look-up."""

    def __init__(self, lm: BigramLM) -> None:
        super().__init__()
        self.lm = lm

    def __missing__(self, key: tuple[str, str]) -> float:
        lp = self[key] = self.lm.pair(*key)
        return lp


def floor(material: Material, add_k: float, prior_weight: float) -> dict[str, Any]:
    """The floor's MC accuracy/chance/gain by group (ties split), the share of probes whose paraphrased
    answer it finds likelier than the perturbed ones (chance 0.5), and the eval metrics on its rows."""
    from entity_unlearn.eval.metrics import mc_accuracy, truth_ratio

    lm = BigramLM(material.training, add_k, prior_weight)
    logp = lm.logp
    tally = Tally()
    rows = []
    prefers = n_pref = 0
    for p in material.probes:
        opts = list(map(logp, p.options))
        if not all(n for _, n in opts):
            continue
        tally.add(p, pick_score(argmax_set([lp / n for lp, n in opts]), p))
        para = logp(p.paraphrased_answer)
        wrong = list(map(logp, p.perturbed_answer))
        row = {"answer_index": p.answer_index, "logp_options": [lp for lp, _ in opts], "ntok_options": [n for _, n in opts], "set": "forget"}
        if para[1] and wrong and all(n for _, n in wrong):
            row.update(logp_paraphrase=para[0], ntok_paraphrase=para[1], logp_perturbed=[lp for lp, _ in wrong], ntok_perturbed=[n for _, n in wrong])
            mean_wrong = sum(lp / n for lp, n in wrong) / len(wrong)
            prefers += para[0] / para[1] > mean_wrong
            n_pref += 1
        rows.append(row)
    tr = truth_ratio(rows) if n_pref else float("nan")
    return {
        "model": {
            "kind": "word bigram, Dirichlet-smoothed towards an add-k unigram",
            "add_k": add_k,
            "prior_weight": prior_weight,
            "vocabulary": lm.vocab,
            "tokens": lm.total,
        },
        "mc": tally.result(),
        "eval_mc_accuracy": round(mc_accuracy(rows), DIGITS) if rows else None,
        "eval_truth_ratio": round(tr, DIGITS) if n_pref else None,
        "prefers_truth": round(prefers / n_pref, DIGITS) if n_pref else None,
        "probes_scored": len(rows),
    }

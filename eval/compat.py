"""Decoding presets and OpenUnlearning's names: ``--compat openunlearning`` for side-by-side runs.

The default decoding is greedy, at most 48 new tokens, stopped at the EOS or the chat template's
end-of-turn token and cut at the first newline: this project's answers are one sentence, and a
model that does not stop (often after unlearning) costs 48 tokens, not 200. OpenUnlearning's TOFU
evaluation (``configs/generation/default.yaml``) generates greedily up to 200 new tokens, stops at
the EOS only, and keeps every line. ``--compat openunlearning`` takes their settings and writes
``openunlearning.json``: the headline numbers under the keys of their ``TOFU_SUMMARY.json``.
Min-K% spans (end token left out) and privleak's form are OpenUnlearning's in every mode.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .data import DataError


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    cut_at_newline: bool

    def spec(self) -> dict:
        stop = "EOS or end-of-turn token" + (", then cut at the first newline" if self.cut_at_newline else "")
        return {"greedy": True, **asdict(self), "stop": stop}


DEFAULT = Decoding(max_new_tokens=48, cut_at_newline=True)
PRESETS = {"openunlearning": Decoding(max_new_tokens=200, cut_at_newline=False)}

# OpenUnlearning's TOFU metric key -> our aggregate (metric, set, depth, attack); d1 without attack is TOFU's data
HEADLINE = ("d1", "none")
OPENUNLEARNING_NAMES = {
    "forget_quality": ("forget_quality", "forget"),
    "forget_Q_A_Prob": ("prob", "forget"),
    "forget_Q_A_ROUGE": ("rouge_l_recall", "forget"),
    "forget_truth_ratio": ("truth_ratio", "forget"),
    "model_utility": ("model_utility", None),
    "privleak": ("privleak_min_k", "forget"),
    "mia_min_k": ("mia_auc_min_k", "forget"),
    "mia_min_k_plus_plus": ("mia_auc_min_k_plus_plus", "forget"),
    "mia_loss": ("mia_auc_loss", "forget"),
    "mia_zlib": ("mia_auc_zlib", "forget"),
    "retain_Q_A_Prob": ("prob", "retain"),
    "retain_Q_A_ROUGE": ("rouge_l_recall", "retain"),
    "retain_Truth_Ratio": ("truth_ratio", "retain"),
    "ra_Q_A_Prob_normalised": ("prob", "real_authors"),
    "ra_Q_A_ROUGE": ("rouge_l_recall", "real_authors"),
    "ra_Truth_Ratio": ("truth_ratio", "real_authors"),
    "wf_Q_A_Prob_normalised": ("prob", "world"),
    "wf_Q_A_ROUGE": ("rouge_l_recall", "world"),
    "wf_Truth_Ratio": ("truth_ratio", "world"),
}


def decoding(compat: str | None, max_new_tokens: int | None) -> Decoding:
    """The decoding of a preset (None: this project's default), with an explicit --max-new-tokens on top."""
    if compat is not None and compat not in PRESETS:
        raise DataError(f"--compat {compat}: not a preset; choose one of {sorted(PRESETS)}")
    base = PRESETS[compat] if compat else DEFAULT
    return base if max_new_tokens is None else Decoding(max_new_tokens, base.cut_at_newline)


def openunlearning_summary(aggregates: list[dict]) -> dict[str, float | None]:
    """Headline aggregates under OpenUnlearning's TOFU metric names (values as written in results.json)."""
    depth, attack = HEADLINE
    out = {}
    for name, (metric, set_) in OPENUNLEARNING_NAMES.items():
        hit = next(
            (a for a in aggregates if a["metric"] == metric and (set_ is None or a["set"] == set_) and (a["depth"], a["attack"]) == (depth, attack)),
            None,
        )
        if hit is not None:
            out[name] = hit["value"]
    return out

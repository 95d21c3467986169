"""Each text check fires on a crafted sentence and not on its correct form; leakage counts what it must."""

from __future__ import annotations

import pytest
from crafted import N, probe, write_world

from entity_unlearn.builders.audit import TEXT_CHECKS, EntityRow, audit_folder, get_text_check
from entity_unlearn.builders.audit.language import Context

HE = EntityRow("P1", "person", "Rekram Garond", ("R. Garond",), {"gender": "male"}, {}, "")
THEY = EntityRow("P2", "person", "Sela Vonis", (), {"gender": "non-binary"}, {}, "")

# (check, subject, wrong sentence, its correct form)
CASES = [
    ("number_agreement", None, "Before 1996, Rekram Garond had published 1 books.", "Before 1996, Rekram Garond had published 1 book."),
    ("number_agreement", None, "By 1990 the firm had 3 factory.", "By 1990 the firm had 3 factories."),
    ("number_agreement", None, "Before 1999, she had published 3 essay.", "Before 1999, she had published 3 essay collections."),
    (
        "plural_possessive",
        None,
        "The founder of Kothador Industries's board is here.",
        "The founder of Kothador Industries' board is Imke Thies's friend.",
    ),
    ("plural_possessive", None, "Nasista Works's founder was born in Vasel.", "Nasista Works' founder was born in Vasel."),
    ("plural_possessive", None, "The winters's cold was harsh.", "Danique Winters's winters were cold."),
    (
        "missing_article",
        None,
        "Rekram Garond graduated from University of Dreile in 1966.",
        "Rekram Garond graduated from the University of Dreile in 1966.",
    ),
    (
        "missing_article",
        None,
        "He studied there. Academy of Lorn was his school.",
        "He studied at Trugos Academy of Lorn, the Academy of Lorn's rival.",
    ),
    ("a_an", None, "Her father worked as a engineer.", "Her father worked as an engineer at a university."),
    ("a_an", None, "She was an painter.", "She was a painter for an hour."),
    ("gendered_noun", HE, "Rekram Garond worked as an actress.", "Rekram Garond worked as an actor."),
    (
        "gendered_noun",
        HE,
        "By profession, R. Garond was the daughter of a miner.",
        "By profession, R. Garond was the son of a miner; his mother was a nurse.",
    ),
    ("gendered_noun", THEY, "Sela Vonis became a businesswoman.", "Sela Vonis became an entrepreneur."),
    ("repeated", None, "Rekram Garond wrote poems. He loved the sea. Rekram Garond wrote poems.", "Rekram Garond wrote poems. He loved the sea."),
    ("repeated", None, "The the mentor of Rekram was kind.", "He had had enough of the mentor."),
]


@pytest.mark.parametrize("check, subject, wrong, right", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_text_check_fires_on_the_error_only(check, subject, wrong, right):
    ctx = Context([wrong.lower(), right.lower(), "a book of the factory, an essay collection and essays, a winter"], ("Danique Winters",))
    fn = get_text_check(check).check
    assert fn(wrong, subject, ctx), f"{check} missed: {wrong}"
    assert fn(right, subject, ctx) == [], f"{check} fired on the correct form: {right}"


def test_every_text_check_has_a_case():
    assert {c[0] for c in CASES} == set(TEXT_CHECKS)
    with pytest.raises(KeyError, match="did you mean 'a_an'"):
        get_text_check("an_a")


def test_leakage_counts_answers_stated_in_questions(tmp_path):
    probes = []
    for i in range(N):
        opts = [f"qz{i:02d}x{k}" for k in range(6)]
        if i < 10:  # "which came first, A or B?": names the truth and one wrong option
            q = f"Which came first, {opts[0]} or {opts[1]}?"
        elif i < 20:  # a multiple-choice listing of every option: not a leak
            q = "Which code? " + " ".join(f"{chr(65 + k)}) {o}" for k, o in enumerate(opts))
        else:
            q = f"Which code has item {i}?"
        probes.append(probe(i, q, opts, 0, depth="d4", kind="inference"))
    report = audit_folder(write_world(tmp_path / "w", probes))
    own = report["leakage"]["own_question"]
    assert own["by_depth_kind"]["d4/inference"] == {"probes": N, "leaks": 10, "share": 0.25}
    assert ("max_own_question_share", "d4/inference") in {(f["rule"], f["subject"]) for f in report["failures"]}
    assert report["shortcuts"]["overlap"]["by_relation"]["gadget/colour"]["gain"] > 0  # the named pair is a shortcut too

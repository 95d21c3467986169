"""Checks of LLM output against the fact graph. Pure functions: each returns the reasons to reject (empty = accept).

Every check first normalises the text (``text.normalize``: NFKC, no zero-width or
other format characters, whitespace collapsed), so a look-alike compares as what it
reads as; and refuses a text that negates or hedges a fact (``text.negations``:
"not", "never", "reportedly"... from ``vocab/negations.txt``) unless the words it
replaces already hold that word (a title such as "Never Again").

Biography (``verify_biography``):
  - every fact's display text appears verbatim, word-bounded and case-sensitive
    (a lowercase value such as "playwright" may open a sentence capitalised);
    a value shared by several facts must appear as often as it is shared;
  - a fact with a year states that year in a sentence that states the fact;
  - every number (``1961``, ``4``, ``120,000``) is one written in the facts'
    texts or years: no derived ages, no invented dates;
  - no name of the world (entity names and aliases, titles, awards, places,
    countries, products...) that is not one of this entity's facts, and no other
    capitalised word outside sentence starts and ``STOPWORDS``.
Paraphrase (``verify_paraphrase``): the question names the entity, keeps the
original question's numbers (its year), differs from it and does not give the
answer away; the answer states the short answer exactly once; names and numbers
as for biographies, against the original question and answer.
Perturbed answers (``verify_perturbed``): exactly K, distinct, none a true value
of the field for the entity (nor, for a list or a lowercase word, containing one), and of the answer's type (a date written
"March 4, 1961", a year, a number written "120,000", a name, a lowercase word,
a list without any true element).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from ..schema import Entity, Fact, Probe, World
from .text import negations, normalize, normalize_paragraphs

STOPWORDS = frozenset({"I"})
_NUMBER = re.compile(r"\d[\d,]*\d|\d")
_ABBREV = frozenset({"Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Mt", "Prof", "No", "vs"})
_SENTENCE_END = re.compile(r"[.!?][\"”’)]*\s+")
_SEGMENT = re.compile(r"[,.;:!?()\[\]\"“”]")
_CAPITAL = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*")
_MASK = "\u00a7"


def numbers_in(text: str) -> list[str]:
    """Digit runs, thousands separators kept: "born 1961, aged 4; 120,000 people" -> ["1961", "4", "120,000"]."""
    return _NUMBER.findall(text)


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of a paragraph; a full stop after an initial ("R. Garond") or a title ("Dr.") does not end one."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(paragraph):
        before = paragraph[start : m.start()].split()
        last = before[-1] if before else ""
        if paragraph[m.start()] == "." and (re.fullmatch(r"[A-Z]", last) or last in _ABBREV):
            continue
        out.append(paragraph[start : m.end()].strip())
        start = m.end()
    if paragraph[start:].strip():
        out.append(paragraph[start:].strip())
    return out


@lru_cache(maxsize=1 << 16)  # the same fact texts are looked up in every sentence and every retry
def phrase_pattern(text: str) -> re.Pattern:
    """``text`` as a whole phrase; a lowercase first letter may also be capitalised (sentence start)."""
    body = re.escape(text)
    if text[:1].islower():
        body = f"[{text[0]}{text[0].upper()}]" + re.escape(text[1:])
    return re.compile(rf"(?<![\w]){body}(?![\w])")


def assign_facts(sentence: str, facts: Iterable[Fact]) -> tuple[str, ...]:
    """Ids of the facts whose text ``sentence`` states, in order of first appearance (ties: fact order)."""
    found = []
    for i, f in enumerate(facts):
        m = phrase_pattern(f.text).search(sentence)
        if m:
            found.append((m.start(), i, f.fact_id))
    return tuple(fid for _, _, fid in sorted(found))


def _mask(text: str, phrases: Iterable[str]) -> str:
    for p in sorted({p for p in phrases if p}, key=len, reverse=True):
        text = phrase_pattern(p).sub(_MASK, text)
    return text


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t\"“'‘(")
    return not before or before[-1] in ".!?\n"


class WorldNames:
    """Every proper name of a world, to tell a foreign name from an unknown one."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = {" ".join(n.split()) for n in names if n}
        self.longest = max((len(n.split()) for n in self.names), default=1)

    @classmethod
    def from_world(cls, world: World) -> WorldNames:
        """Entity names and aliases, and every fact text that is a name (capitalised, no digits)."""
        names = [n for e in world.entities for n in (e.name, *e.aliases)]
        names += [f.text for f in world.facts if f.text[:1].isupper() and not any(c.isdigit() for c in f.text)]
        return cls(names)

    def problems(self, text: str, allowed: Iterable[str], who: str) -> list[str]:
        """Names in ``text`` that are neither ``allowed`` nor ordinary words."""
        masked = _mask(text, allowed)
        reasons, foreign = [], []
        for segment in _SEGMENT.split(masked):
            words = [re.sub(r"['’]s$", "", w) for w in segment.split()]
            i = 0
            while i < len(words):
                for n in range(min(self.longest, len(words) - i), 0, -1):
                    cand = " ".join(words[i : i + n])
                    if cand[:1].isupper() and cand in self.names:
                        foreign.append(cand)
                        i += n
                        break
                else:
                    i += 1
        for name in dict.fromkeys(foreign):
            reasons.append(f"it names {name!r}, which is not a fact of {who} in the fact graph; remove it")
        masked = _mask(masked, foreign)
        unknown = [m.group() for m in _CAPITAL.finditer(masked) if not _sentence_start(masked, m.start()) and m.group() not in STOPWORDS]
        for word in dict.fromkeys(unknown):
            reasons.append(f"it introduces the name {word!r}, which is not in the facts; use only the names given")
        return reasons


def _number_problems(text: str, allowed: set[str], where: str) -> list[str]:
    bad = [n for n in dict.fromkeys(numbers_in(text)) if n not in allowed]
    return [f"{where} contains the number {n}, which is not in the facts; use only the dates, years and numbers given" for n in bad]


def _negation_problems(text: str, allowed: Iterable[str], where: str) -> list[str]:
    """A reason to reject ``text`` when it holds negation or hedge words that none of the ``allowed`` texts hold."""
    known = set(negations(" | ".join(allowed)))
    bad = [w for w in negations(text) if w not in known]
    if not bad:
        return []
    words = ", ".join(repr(w) for w in bad)
    return [f"{where} negates or hedges a fact ({words}); state every fact plainly and positively, without negation or doubt"]


def verify_biography(text: str, entity: Entity, facts: list[Fact], names: WorldNames) -> list[str]:
    """Reasons to reject ``text`` as the biography of ``entity`` (see the module docstring)."""
    text = normalize_paragraphs(text)
    if not text.strip():
        return ["the biography is empty"]
    reasons = []
    sentences = [s for p in text.split("\n\n") for s in split_sentences(p)]
    shared = Counter(f.text for f in facts)
    for value, n in shared.items():
        found = len(phrase_pattern(value).findall(text))
        if found < n:
            relations = ", ".join(f.relation for f in facts if f.text == value)
            reasons.append(
                f"the fact {relations} = {value!r} is missing: write {value!r} exactly as given"
                + (f" (it must appear {n} times, once per fact)" if n > 1 else "")
            )
    for f in facts:
        if f.year is not None and shared[f.text] == 1 and phrase_pattern(f.text).search(text):
            if not any(phrase_pattern(f.text).search(s) and str(f.year) in numbers_in(s) for s in sentences):
                reasons.append(f"the fact {f.relation} = {f.text!r} must be stated with its year {f.year} in the same sentence")
    allowed_numbers = {n for f in facts for n in numbers_in(f.text)} | {str(f.year) for f in facts if f.year is not None}
    reasons += _number_problems(text, allowed_numbers, "the biography")
    reasons += _negation_problems(text, [entity.name, *entity.aliases, *(f.text for f in facts)], "the biography")
    reasons += names.problems(text, [entity.name, *entity.aliases, *(f.text for f in facts)], entity.name)
    return reasons


def verify_paraphrase(question: str, answer: str, probe: Probe, entity: Entity, names: WorldNames, fact_texts: Iterable[str] = ()) -> list[str]:
    """Reasons to reject (``question``, ``answer``) as the paraphrase of ``probe``'s question and answer."""
    reasons = []
    short = probe.short_answer
    question, answer = normalize(question), normalize(answer)
    if not question.strip() or not answer.strip():
        return ["the paraphrased question and answer must both be non-empty"]
    if entity.name not in question:
        reasons.append(f"the paraphrased question must name {entity.name!r} exactly")
    if " ".join(question.lower().split()) == " ".join(probe.question.lower().split()):
        reasons.append("the paraphrased question repeats the original; reword it")
    if re.search(rf"(?<!\w){re.escape(short.lower())}(?!\w)", question.lower()):
        reasons.append(f"the paraphrased question gives the answer {short!r} away")
    for n in numbers_in(probe.question):
        if n not in numbers_in(question):
            reasons.append(f"the paraphrased question must keep {n} from the original question")
    count = len(phrase_pattern(short).findall(answer))
    if count != 1:
        reasons.append(f"the paraphrased answer must contain the answer {short!r} exactly once, verbatim (found {count} times)")
    reasons += _number_problems(question, set(numbers_in(probe.question)), "the paraphrased question")
    reasons += _number_problems(answer, set(numbers_in(probe.question + " " + probe.answer)), "the paraphrased answer")
    allowed = [entity.name, *entity.aliases, short, *fact_texts]
    reasons += _negation_problems(question, [*allowed, probe.question], "the paraphrased question")
    reasons += _negation_problems(answer, [*allowed, probe.answer], "the paraphrased answer")
    for part, text in (("question", question), ("answer", answer)):
        reasons += [f"paraphrased {part}: {r}" for r in names.problems(text, allowed, entity.name)]
    return reasons


def _shape_problem(value: str, kind: str, short: str) -> str | None:
    if kind == "date":
        if not re.fullmatch(r"[A-Z][a-z]+ [1-9]\d?, \d{4}", value):
            return "is not a date written like 'March 4, 1961'"
        try:
            datetime.strptime(value, "%B %d, %Y")
        except ValueError:
            return "is not a real date"
        return None
    if kind in ("year", "count", "age"):
        return None if re.fullmatch(r"\d{1,4}", value) else "is not a whole number written in digits"
    if kind == "int":
        ok = re.fullmatch(r"\d{1,3}(,\d{3})*", value) and f"{int(value.replace(',', '')):,}" == value
        return None if ok else "is not a number written like '120,000'"
    if any(c.isdigit() for c in value) and not any(c.isdigit() for c in short):
        return "contains digits, unlike the true answer"
    if kind == "choice" and not value[:1].islower():
        return "must be a lowercase word or phrase like the true answer"
    if kind in ("name", "list") and not value.removeprefix("the ")[:1].isupper():  # "the Kessel Pavilion" is a name
        return "must be a capitalised name like the true answer"
    return None


def verify_perturbed(wrong: list[str], short: str, kind: str, true_values: Iterable[str], k: int) -> list[str]:
    """Reasons to reject ``wrong`` as the K wrong answers to a question whose answer is ``short``.

    ``kind`` is the answer's type: date, year, int, count, age, choice, name or list;
    ``true_values`` are every true value of the field for the entity (for a list,
    its elements).
    """
    reasons = []
    true_values = [normalize(t) for t in [*true_values, short]]
    truth = {t.casefold() for t in true_values}
    if len(wrong) != k:
        reasons.append(f"give exactly {k} wrong answers (got {len(wrong)})")
    seen: set[str] = set()
    for raw in wrong:
        w = normalize(raw)
        if not w or len(raw) > 120 or any(c in raw for c in "\n\r"):
            reasons.append(f"{w[:120]!r} is not a short one-line answer")
            continue
        if w.casefold() in seen:
            reasons.append(f"{w!r} is given twice; the wrong answers must be distinct")
        seen.add(w.casefold())
        if w.casefold() in truth:
            reasons.append(f"{w!r} is a true answer; every answer must be wrong")
        elif kind in ("list", "choice") and any(re.search(rf"(?<!\w){re.escape(t)}(?!\w)", w.casefold()) for t in truth):
            what = "contains a true element; a wrong list must contain none" if kind == "list" else "contains the true answer; give another value"
            reasons.append(f"{w!r} {what}")
        reasons += _negation_problems(w, true_values, repr(w))
        problem = _shape_problem(w, kind, short)
        if problem:
            reasons.append(f"{w!r} {problem}")
    return reasons

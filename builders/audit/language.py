"""Text checks: English errors a template or an LLM leaves in the published text.

Each check is one registered function ``(text, subject, context) -> matched snippets``; the
text is every distinct question, answer, paraphrase and perturbed answer of an entity's probes
and its biography, the subject that entity. The word lists are data (``words.toml``); the
vocabulary is every lower-case word of the audited text, so "works" counts as a plural when
"work" occurs too.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from entity_unlearn.errors import UnknownNameError

from .heuristics import words
from .load import EntityRow, Material
from .text import sentences, tokens

EXAMPLES = 5
YEAR = re.compile(r"^(1\d{3}|20\d\d)$")
WORD = re.compile(r"\w+")
WORDLIKE = re.compile(r"\w")
LAST_WORD = re.compile(r" [a-z]+$")


class Context:
    """The audited text's vocabulary and the word lists, compiled once."""

    def __init__(self, texts: list[str], names: tuple[str, ...] = ()) -> None:
        w = words()
        # every lower-case word, found in the distinct whitespace-separated chunks (no word spans whitespace)
        chunks = "\n".join(set("\n".join(texts).lower().split()))
        self.vocab = frozenset(t for t in set(WORD.findall(chunks)) if t.isalpha())
        self.name_words = frozenset(t for n in names for t in tokens(n) if t.isalpha())  # "winters" of Danique Winters
        self.plurals = frozenset(w["plural_nouns"])
        # "\bUniversity of ", with the word boundary checked after the first letter so the search skips ahead in C
        self.needs_the = re.compile(r"(?:" + "|".join(f"{x.title()[0]}(?<!\\w{x.title()[0]}){x.title()[1:]}" for x in w["needs_the"]) + r") of ")
        self.determiners = frozenset(w["determiners"])
        self.a_ok = tuple(w["a_before_vowel"])
        self.an_ok = tuple(w["an_before_consonant"])
        self.doubled_ok = frozenset(w["doubled_ok"])
        self.gender_attribute = w["gender_attribute"]
        self.gender_nouns = {g: tuple(ns) for g, ns in w["gender_nouns"].items()}
        self._gender: dict[str | None, re.Pattern | None] = {}

    def gender_predicate(self, gender: str | None) -> re.Pattern | None:
        """A copula or "as", then a noun of another gender than ``gender`` (compiled once per gender)."""
        if gender not in self._gender:
            wrong = [n for g, nouns in self.gender_nouns.items() if g != gender for n in nouns] if gender is not None else []
            self._gender[gender] = (
                re.compile(r" (?:was|is|were|are|became|remained|as)(?: (?:a|an|the))?(?: [a-z-]+)? (?:" + "|".join(wrong) + r")\b")
                if wrong
                else None
            )
        return self._gender[gender]

    def singular(self, word: str) -> bool:
        """``word`` (lower case, no final s) is a noun whose plural occurs in the audited text."""
        plurals = (word + "s", word + "es", word[:-1] + "ies" if word.endswith("y") else "")
        return word != "one" and any(p in self.vocab for p in plurals if p)

    def plural(self, word: str) -> bool:
        """``word`` (lower case) is a plural noun: listed, or its singular occurs in the audited text."""
        if word in self.plurals:
            return True
        if word.endswith("ies"):  # "industries" when "industry" occurs; not a surname such as "Thies"
            return word[:-3] + "y" in self.vocab
        return (
            word.endswith("s")
            and not word.endswith(("ss", "us", "is"))
            and (word[:-1] in self.vocab or (word.endswith("es") and word[:-2] in self.vocab))
        )


Check = Callable[[str, EntityRow | None, Context], list[str]]


@dataclass(frozen=True)
class TextCheck:
    name: str
    check: Check
    description: str


TEXT_CHECKS: dict[str, TextCheck] = {}


def text_check(name: str):
    """Register a text check under ``name``; its docstring's first line describes it in the report."""

    def wrap(fn: Check) -> Check:
        if name in TEXT_CHECKS:
            raise ValueError(f"text check {name!r} is registered twice")
        TEXT_CHECKS[name] = TextCheck(name, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return wrap


def get_text_check(name: str) -> TextCheck:
    if name not in TEXT_CHECKS:
        close = difflib.get_close_matches(name, list(TEXT_CHECKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown text check {name!r}{hint} Text checks: {sorted(TEXT_CHECKS)}")
    return TEXT_CHECKS[name]


# -- the checks ----------------------------------------------------------------------------------
# a number or "one" not inside a word or number, its noun, the next word: (?<![\w,.])(\d[\d,]*|one) ([a-z]+)\b(?: ([a-z]+)\b)?,
# written to start with a character class (the look-behind checks the character before it) so the search skips ahead in C
NUMBER_WORD = re.compile(r"([\do](?<![\w,.][\do])(?:(?<=\d)[\d,]*|(?<=o)ne)) ([a-z]+)\b(?: ([a-z]+)\b)?")


@text_check("number_agreement")
def number_agreement(text: str, subject: EntityRow | None, ctx: Context) -> list[str]:
    """A count and its noun disagree: "1 books", "3 book" (not "3 essay collections": a compound's head is its last noun)."""
    out = []
    for m in NUMBER_WORD.finditer(text):
        n, word, after = m.group(1), m.group(2), m.group(3)
        if n in ("1", "one"):
            if ctx.plural(word):
                out.append(f"{n} {word}")
        elif not YEAR.match(n) and not word.endswith("s") and ctx.singular(word) and not (after and ctx.plural(after)):
            out.append(f"{n} {word}")
    return out


POSSESSIVE_S = re.compile(r"s['’]s\b")  # where "\b([A-Za-z]+s)['’]s\b" can end; the word is read backwards from it
LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def possessives(text: str) -> list[tuple[str, str]]:
    """(match, word) of every ``\b([A-Za-z]+s)['’]s\b`` in ``text``: "Industries's" gives ("Industries's", "Industries").

    Found from the apostrophe back to the word's start, which is much faster than the pattern (it tries every word).
    """
    out = []
    for m in POSSESSIVE_S.finditer(text):
        start = m.start()
        while start and text[start - 1] in LETTERS:
            start -= 1
        if start < m.start() and not (start and WORDLIKE.match(text, start - 1)):
            out.append((text[start : m.end()], text[start : m.start() + 1]))
    return out


@text_check("plural_possessive")
def plural_possessive(text: str, subject: EntityRow | None, ctx: Context) -> list[str]:
    """A plural noun takes "'s": "Industries's" (write "Industries'"); a name's word is plural only if listed ("Winters's" is right)."""
    out = []
    for match, found in possessives(text):
        word = found.lower()
        if ctx.plural(word) and (word in ctx.plurals or word not in ctx.name_words or found[0].islower()):
            out.append(match)
    return out


@text_check("missing_article")
def missing_article(text: str, subject: EntityRow | None, ctx: Context) -> list[str]:
    """An institution "<Noun> of X" without "the" after a verb or preposition: "graduated from University of X"."""
    out = []
    for m in ctx.needs_the.finditer(text):
        start = m.start()
        if start < 2 or text[start - 1] != " ":
            continue  # a text's first word: a fragment (a cloze answer), not a sentence
        cut = max(text.rfind(" ", 0, start - 1), text.rfind("\n", 0, start - 1)) + 1
        prev = text[cut : start - 1]
        if prev[-1] in ".!?:" or (prev.islower() and prev.strip("\"'(,;") not in ctx.determiners):
            out.append(f"{prev} {m.group(0).strip()}")
    return out


A_AN = re.compile(r"([Aa](?<!\w[Aa])n?) ([A-Za-z][\w-]*)")  # \b([Aa]n?) ..., the boundary checked after the letter (faster)


@text_check("a_an")
def a_an(text: str, subject: EntityRow | None, ctx: Context) -> list[str]:
    """The wrong indefinite article: "a" before a vowel sound or "an" before a consonant ("a engineer", "an painter")."""
    out = []
    for m in A_AN.finditer(text):
        art, word = m.group(1).lower(), m.group(2).lower()
        vowel = word[0] in "aeiou"
        if art == "a" and vowel and not word.startswith(ctx.a_ok):
            out.append(m.group(0))
        elif art == "an" and not vowel and not word.startswith(ctx.an_ok):
            out.append(m.group(0))
    return out


@text_check("gendered_noun")
def gendered_noun(text: str, subject: EntityRow | None, ctx: Context) -> list[str]:
    """A noun of another gender said of the entity: "<he> worked as an actress", "<she> was the son of".

    The entity, by a name or alias, opens a clause (a line, or after ". ", "! ", "? ", ", "), up to two lower-case
    words follow, then a copula or "as" and the noun; the predicate is found first with one pattern per gender."""
    predicate = ctx.gender_predicate(subject.attributes.get(ctx.gender_attribute)) if subject is not None else None
    if predicate is None:
        return []
    names = sorted(subject.names, key=len, reverse=True)  # type: ignore[union-attr]
    out = []
    for m in predicate.finditer(text):
        head = text[: m.start()]
        for _ in range(3):  # the name right before the predicate, or one or two lower-case words before it
            name = next((n for n in names if head.endswith(n) and _opens_clause(head[: -len(n)])), None)
            if name is not None:
                out.append(text[len(head) - len(name) : m.end()])
                break
            cut = LAST_WORD.search(head)
            if cut is None:
                break
            head = head[: cut.start()]
    return out


def _opens_clause(before: str) -> bool:
    return before == "" or before.endswith(("\n", ". ", "! ", "? ", ", "))


BOUNDARY = re.compile(r"[.!?][^\S\n]+[A-Z\"'(]")  # where text.sentences cuts a line (whitespace other than a line break)
DOUBLED = re.compile(r"\b([A-Za-z]+) (?i:\1)\b")  # "The the" too; a doubled capitalised name ("Bora Bora") is not counted


@text_check("repeated")
def repeated(text: str, subject: EntityRow | None, ctx: Context) -> list[str]:
    """A sentence said twice in one text, or a word doubled: "the the"."""
    out = []
    for m in DOUBLED.finditer(text):
        first, second = m.group(0).split()
        opens = m.start() == 0 or text[m.start() - 1] == "\n" or text[max(0, m.start() - 2) : m.start()] in (". ", "! ", "? ")
        # a capitalised first word inside a sentence ends a name ("Krostand Works works"): not a doubled word
        if first.lower() not in ctx.doubled_ok and not second[0].isupper() and (first[0].islower() or opens):
            out.append(m.group(0))
    done = -1
    for m in BOUNDARY.finditer(text):  # only a line of two sentences or more can say one twice
        if m.start() < done:
            continue
        done = text.find("\n", m.start())
        done = len(text) if done < 0 else done
        seen: set[str] = set()
        for s in sentences(text[text.rfind("\n", 0, m.start()) + 1 : done]):
            key = s.lower()
            if key in seen and len(key.split()) > 2:
                out.append(s)
            seen.add(key)
    return out


def entity_texts(material: Material) -> list[tuple[EntityRow | None, list[str]]]:
    """Per entity, its distinct texts (biography first, then its probes' texts in order)."""
    by_entity: dict[str, list[str]] = {e.entity_id: [e.biography] if e.biography else [] for e in material.entities}
    for p in material.probes:
        by_entity.setdefault(p.entity_id, []).extend((p.question, p.answer, p.paraphrased_question, p.paraphrased_answer, *p.perturbed_answer))
    ents = {e.entity_id: e for e in material.entities}
    return [(ents.get(eid), list(dict.fromkeys(texts))) for eid, texts in by_entity.items()]


def language(material: Material) -> dict[str, Any]:
    """Per check: findings (matches) and examples (entity, match, the text it is in).

    An entity's texts are checked as one block, one text a line (no pattern spans a line break).
    """
    groups = entity_texts(material)
    ctx = Context([t for _, texts in groups for t in texts], tuple(n for e in material.entities for n in e.names))
    counts: Counter = Counter()
    examples: dict[str, list[dict[str, str]]] = {name: [] for name in TEXT_CHECKS}
    for subject, texts in groups:
        block = "\n".join(t.replace("\n", " ") for t in texts)
        for name, c in TEXT_CHECKS.items():
            found = c.check(block, subject, ctx)
            counts[name] += len(found)
            for match in dict.fromkeys(found):
                if len(examples[name]) < EXAMPLES:
                    found_in = re.compile(r"(?<![\w,.])" + re.escape(match) + r"\b")
                    line = next((t for t in texts if found_in.search(t)), "")
                    examples[name].append({"entity_id": subject.entity_id if subject else "", "match": match, "text": line[:300]})
    return {
        "texts": sum(len(t) for _, t in groups),
        "checks": {
            name: {"description": c.description, "findings": counts[name], "examples": examples[name]} for name, c in sorted(TEXT_CHECKS.items())
        },
    }

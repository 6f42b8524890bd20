"""Test suites: labelled cases a flagger is run on, one table with one row per case.

Columns of a suite table (:data:`COLUMNS`):

* ``case_id``: unique across suites, ``"<suite>:<id in the suite>"`` (what a flags file names);
* ``suite``, ``language`` (lower-case English name), ``functionality`` (the functional test);
* ``target``: the group the case is about, or ``"none"``;
* ``cluster``: the template the case was generated from (``"<suite>:<language>:<template id>"``).
  Cases from one template are not independent; every interval resamples templates;
* ``role``: ``"benign"`` (gold non-hateful / benign: a flag is a *false flag*), ``"threat"``
  (HateCheck's and MHC's direct and normative threats, ``threat_dir_h``/``threat_norm_h``: not
  flagging one is a *miss*) or ``"hateful"`` (other hateful cases: their flag rate is reported,
  but a threat flagger is not wrong either way);
* ``text``.

Suites (:func:`load_suites`): ``hatecheck`` (English HateCheck, read from ``DATA/hatecheck``),
``mhc`` (all ten Multilingual HateCheck languages) or ``mhc-<language>`` (one of them, e.g.
``mhc-spanish``), and ``benign-traps`` (authored here, shipped with the package: English, Spanish,
Brazilian Portuguese, Haitian Creole and Spanglish; see ``docs/flagaudit_suite_guide.md``).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from auditcore.errors import InputError

COLUMNS = ["case_id", "suite", "language", "functionality", "target", "cluster", "role", "text"]
THREAT_TESTS = ("threat_dir_h", "threat_norm_h")
MHC_LANGUAGES = ("arabic", "dutch", "french", "german", "hindi", "italian", "mandarin", "polish", "portuguese",
                 "spanish")
SUITE_NAMES = ("hatecheck", "mhc", *(f"mhc-{lang}" for lang in MHC_LANGUAGES), "benign-traps")


@dataclass(frozen=True)
class Provenance:
    """Where a suite comes from, its licence and how to cite it (shown in the report)."""

    name: str
    source: str
    licence: str
    citation: str
    notes: str = ""
    files: list = field(default_factory=list)
    warning: str = ""  # what a reader must know before quoting this suite's figures (shown as a banner)


HATECHECK_CITATION = ("Paul Röttger, Bertie Vidgen, Dong Nguyen, Zeerak Waseem, Helen Margetts, Janet B. Pierrehumbert. "
                      "HateCheck: Functional Tests for Hate Speech Detection Models. ACL 2021.")
MHC_CITATION = ("Paul Röttger, Haitham Seelawi, Debora Nozza, Zeerak Talat, Bertie Vidgen. Multilingual HateCheck: "
                "Functional Tests for Multilingual Hate Speech Detection Models. WOAH 2022.")


_TARGET_ALIASES = {"jewish people": "jews", "immigrant": "immigrants", "lower caste": "lower-caste people"}
_PROPER = {k.lower(): k for k in ("Jews", "Muslims", "Christians", "Sikhs", "Hindus", "Mexicans", "Haitians",
                                   "Venezuelans", "Syrians", "Guatemalans", "North-East Indians")}


def canonical_target(label) -> str:
    """One spelling per group across suites and languages (MHC writes 'jews', 'Jews' and
    'jewish people', 'black people' and 'Black people'): lower case except proper nouns."""
    if label is None or (isinstance(label, float) and label != label):
        return "none"
    k = str(label).strip().lower()
    if not k:
        return "none"
    k = _TARGET_ALIASES.get(k, k)
    return _PROPER.get(k, k)


def _targets(series: pd.Series) -> pd.Series:
    return series.map(canonical_target).astype(object)


def _role(label_gold: pd.Series, functionality: pd.Series) -> pd.Series:
    role = pd.Series("hateful", index=label_gold.index, dtype=object)
    role[label_gold.astype(str).str.strip() == "non-hateful"] = "benign"
    role[functionality.isin(THREAT_TESTS)] = "threat"
    return role


def _require(df: pd.DataFrame, columns, path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"not a HateCheck cases file: missing column(s) {', '.join(missing)}", path)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("suite file not found (give --data DIR holding hatecheck/)", path)
    try:
        return pd.read_csv(path, dtype={"templ_id": str, "case_id": str, "mhc_case_id": str}, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read suite file ({exc.__class__.__name__})", path) from None


def load_hatecheck(data: str | Path) -> tuple[pd.DataFrame, Provenance]:
    """English HateCheck (``DATA/hatecheck/test_suite_cases.csv``, 3,728 cases, 29 tests)."""
    path = Path(data) / "hatecheck" / "test_suite_cases.csv"
    raw = _read_csv(path)
    _require(raw, ["case_id", "functionality", "test_case", "label_gold", "target_ident", "templ_id"], path)
    df = pd.DataFrame({
        "case_id": "hatecheck:" + raw["case_id"].astype(str),
        "suite": "hatecheck",
        "language": "english",
        "functionality": raw["functionality"].astype(str),
        "target": _targets(raw["target_ident"]),
        "cluster": "hatecheck:english:" + raw["templ_id"].fillna("case-" + raw["case_id"].astype(str)).astype(str),
        "role": _role(raw["label_gold"], raw["functionality"]),
        "text": raw["test_case"].astype(str).str.strip(),
    })
    prov = Provenance("HateCheck (English)", "https://github.com/paul-rottger/hatecheck-data", "CC-BY-4.0",
                      HATECHECK_CITATION, "3,728 cases in 29 functional tests; threat cases: threat_dir_h, threat_norm_h.",
                      [str(path)])
    return df, prov


def load_mhc(data: str | Path, languages=MHC_LANGUAGES) -> tuple[pd.DataFrame, Provenance]:
    """Multilingual HateCheck (``DATA/hatecheck/multilingual/hatecheck_cases_final_<language>.csv``)."""
    frames, files = [], []
    for lang in languages:
        path = Path(data) / "hatecheck" / "multilingual" / f"hatecheck_cases_final_{lang}.csv"
        raw = _read_csv(path)
        _require(raw, ["mhc_case_id", "functionality", "test_case", "label_gold", "target_ident", "templ_id"], path)
        frames.append(pd.DataFrame({
            "case_id": "mhc:" + raw["mhc_case_id"].astype(str),
            "suite": "mhc",
            "language": lang,
            "functionality": raw["functionality"].astype(str),
            "target": _targets(raw["target_ident"]),
            "cluster": f"mhc:{lang}:" + raw["templ_id"].fillna("case-" + raw["mhc_case_id"].astype(str)).astype(str),
            "role": _role(raw["label_gold"], raw["functionality"]),
            "text": raw["test_case"].astype(str).str.strip(),
        }))
        files.append(str(path))
    prov = Provenance(f"Multilingual HateCheck ({', '.join(languages)})",
                      "https://github.com/rewire-online/multilingual-hatecheck", "CC-BY-4.0", MHC_CITATION,
                      "Gold labels by the MHC language experts (label_gold); threat cases: threat_dir_h, threat_norm_h.",
                      files)
    return pd.concat(frames, ignore_index=True), prov


# ---------------------------------------------------------------- benign traps (shipped here)

BENIGN_TRAPS = "benign-traps"
_SLOT = re.compile(r"\{([A-Z_]+)\}")


def _package_file(name: str):
    return resources.files("flagaudit").joinpath("suites", "benign_traps", name)


def read_benign_trap_templates(folder: str | Path | None = None) -> tuple[list[dict], list[dict]]:
    """The suite's ``templates.csv`` and ``placeholders.csv`` rows (shipped ones by default)."""
    def rows(name):
        f = (Path(folder) / name) if folder else _package_file(name)
        with f.open(encoding="utf-8", newline="") as fh:
            return [r for r in csv.DictReader(fh) if any(v.strip() for v in r.values() if v)]
    return rows("templates.csv"), rows("placeholders.csv")


def expand_benign_traps(templates: list[dict], placeholders: list[dict]) -> pd.DataFrame:
    """Cases from templates, by construction.

    A template's first placeholder takes every value listed for it (in that language), one case
    each; further placeholders take their values in turn (the i-th case the i-th value, cycling).
    A case's ``target`` is the template's own ``target`` when it names one, else the group of the
    first placeholder value that names one, else ``none``.
    Every case is ``benign``: the gold label follows from the functional test (see the guide).
    """
    values: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for p in placeholders:
        values.setdefault((p["language"].strip(), p["slot"].strip()), []).append(
            (p["value"].strip(), (p.get("target") or "").strip()))
    out = []
    seen = set()
    for t in templates:
        tid, lang, func, text = t["templ_id"].strip(), t["language"].strip(), t["functionality"].strip(), t["template"].strip()
        if tid in seen:
            raise InputError(f"duplicate template id {tid}", "benign_traps/templates.csv")
        seen.add(tid)
        slots = list(dict.fromkeys(_SLOT.findall(text)))
        for s in slots:
            if (lang, s) not in values:
                raise InputError(f"template {tid}: no values for placeholder {{{s}}} in {lang}", "benign_traps/placeholders.csv")
        n = len(values[(lang, slots[0])]) if slots else 1
        for i in range(n):
            fixed = canonical_target(t.get("target") or "")
            fixed = "" if fixed == "none" and not (t.get("target") or "").strip() else fixed
            filled, target = text, fixed or "none"
            for s in slots:
                value, group = values[(lang, s)][i % len(values[(lang, s)])]
                filled = re.sub(r"(^|[.!?]\s+|[¡¿])\{" + s + r"\}", lambda m: m.group(1) + value[:1].upper() + value[1:],
                                filled)  # a value that starts a sentence starts with a capital
                filled = filled.replace("{" + s + "}", value)
                if not fixed and target == "none" and group:
                    target = canonical_target(group)
            out.append({"case_id": f"{BENIGN_TRAPS}:{tid}-{i + 1}", "suite": BENIGN_TRAPS, "language": lang,
                        "functionality": func, "target": target, "cluster": f"{BENIGN_TRAPS}:{lang}:{tid}",
                        "role": "benign", "text": filled})
    return pd.DataFrame(out, columns=COLUMNS)


def load_benign_traps() -> tuple[pd.DataFrame, Provenance]:
    df = expand_benign_traps(*read_benign_trap_templates())
    with _package_file("review.csv").open(encoding="utf-8", newline="") as fh:  # who reviewed what
        review = list(csv.DictReader(fh))
    reviewed = {r["templ_id"] for r in review if r["stage"] == "second pass"}
    drafts = {r["templ_id"] for r in review if r["reviewer"].startswith("machine-drafted")}
    second, machine = len(reviewed), len(drafts - reviewed)  # a draft with a second pass is reviewed
    prov = Provenance("Benign traps (this project)", "shipped with flagaudit: flagaudit/suites/benign_traps/",
                      "MIT (as the project)", "faceaudit project, benign-traps suite; docs/flagaudit_suite_guide.md",
                      f"{len(df):,} cases from {df['cluster'].nunique()} templates in "
                      f"{df['functionality'].nunique()} functional tests, {', '.join(sorted(df['language'].unique()))}; "
                      f"{second} templates reviewed against the authoring guide in a recorded independent second pass, "
                      f"{machine} machine-drafted and awaiting independent and native-speaker review (review.csv).")
    if machine:
        pending = drafts - reviewed
        langs = sorted({c.split(":")[1] for c in df["cluster"].unique() if c.split(":", 2)[2] in pending})
        prov = dataclasses.replace(prov, warning=f"{machine:,} of the benign-traps suite's {second + machine:,} templates are machine drafts that no "
                        f"independent or native-speaker reviewer has checked yet ({', '.join(langs)}; review.csv says "
                        f"which, and which reviewer each still needs): quote its figures as provisional.")
    return df, prov


def load_suites(names, data: str | Path | None = None) -> tuple[pd.DataFrame, list[Provenance]]:
    """Concatenate the named suites into one case table (see the module docstring)."""
    if not names:
        raise InputError("give at least one --suite (" + ", ".join(SUITE_NAMES) + ")")
    frames, provs = [], []
    for name in dict.fromkeys(names):
        if name not in SUITE_NAMES:
            raise InputError(f"unknown suite '{name}' (choose from hatecheck, mhc, mhc-<language>, benign-traps)")
        if name == BENIGN_TRAPS:
            df, prov = load_benign_traps()
        else:
            if data is None:
                raise InputError(f"suite '{name}' is read from the data folder: give --data DIR (holding hatecheck/)")
            if not Path(data).is_dir():
                raise InputError("data folder not found", data)
            if name == "hatecheck":
                df, prov = load_hatecheck(data)
            elif name == "mhc":
                df, prov = load_mhc(data)
            else:
                df, prov = load_mhc(data, [name[len("mhc-"):]])
        frames.append(df)
        provs.append(prov)
    cases = pd.concat(frames, ignore_index=True)
    dup = cases["case_id"][cases["case_id"].duplicated()]
    if len(dup):  # "mhc" and "mhc-spanish" together would repeat cases
        raise InputError(f"suites overlap: case {dup.iloc[0]} appears twice (give 'mhc' or single languages, not both)")
    return cases.reset_index(drop=True), provs


def suite_names() -> list[str]:
    return list(SUITE_NAMES)


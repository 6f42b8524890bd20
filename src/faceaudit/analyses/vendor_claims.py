"""A vendor's claim tested against an audit: supported, contradicted or not shown (``faceaudit claim``).

A claim is a bound on one figure the audit measured: "FPIR at most x at threshold T", "FNIR at
rank R at most x at the operating point for FPIR y (or at T)", "FMR at most x at T", "FNMR at
most x at T (or at FMR y)", "rank-1 identification rate at least x". The verdict follows from
the interval the audit itself prints for that figure (the same method and level: two-sided 95%
Clopper-Pearson on searches or comparisons; per group, the demographics section's
Korn-Graubard interval):

* **supported**: the whole interval lies on the claimed side (for "at most x": its upper end is
  at most x), the rule of biometric certification protection profiles (a claimed error rate
  passes only when the upper confidence bound does not exceed it);
* **contradicted**: the whole interval lies on the other side (its lower end is above x);
* **not shown**: the interval straddles the claim.

When the true rate equals the claim, "supported" is returned with probability at most 2.5% (the
upper end of a two-sided 95% Clopper-Pearson interval lies below the true rate at most 2.5% of
the time; tested by simulation).

**Trials needed** (:func:`trials_needed`): when the verdict is "not shown", the smallest number of
trials n for which the interval would land on one side *if the measured rate p stayed as
measured*: the Clopper-Pearson bound at the audit's level with the error count scaled with the
trials (x = p n, the beta quantile the interval uses, defined for non-integer x, so n is one
well-defined number): the smallest n with ``B(1 - a/2; p n + 1, n - p n) <= c`` to support a
claim c above p, or with ``B(a/2; p n, n - p n + 1) > c`` to contradict a claim below p (a = 1 -
confidence, B the beta quantile). With zero errors this is ``ceil(ln(a/2) / ln(1 - c))`` (3,688
for c = 1/1,000 at 95%); the one-sided "rule of 3" (3 / c, one-sided 95%) is given beside it for
comparison. Per group, the effective trials are scaled back by the group's design effect.

**Operational gallery** (NIST SP 800-63A-4's requirement that a test of a 1:N claim use a gallery
of at least 90% of the operational size): with ``operational_gallery_size`` N, the audited gallery
(enrolled people) is compared with 0.9 N; below it, an FPIR claim is tested against the scale
section's band at N (its assumptions named), and is "not shown" wherever that band is not
estimable or the audit has no band at that threshold and N.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special

from auditcore.errors import InputError
from faceaudit.analyses.compare import _check_results
from faceaudit.data.results import load_results

FIGURES = ("fpir", "fnir", "fmr", "fnmr", "rank1")
NAMES = {"fpir": "FPIR", "fnir": "FNIR", "fmr": "FMR", "fnmr": "FNMR", "rank1": "rank-1 identification rate"}
TRIALS = {"fpir": "non-mated searches", "fnir": "mated searches", "fmr": "impostor comparisons",
          "fnmr": "genuine comparisons", "rank1": "mated searches"}
OPERATIONAL_SHARE = 0.9
MAX_TRIALS = 10**15
RULES = {
    "verdict": "'supported' when the whole interval lies on the claimed side (for 'at most x' its upper end is at "
               "most x; biometric certification protection profiles' rule), 'contradicted' when the whole interval "
               "lies on the other side, 'not shown' otherwise",
    "interval": "the interval the audit itself prints for the figure: two-sided Clopper-Pearson on searches or "
                "comparisons; per group, the demographics section's interval (Korn-Graubard, clustered by person)",
    "trials_needed": "the smallest n with the Clopper-Pearson bound at the audit's level, on x = p n errors (the "
                     "measured rate p kept as measured; the beta quantile, defined for non-integer x), on the far side "
                     "of the claim; with zero errors ceil(ln(a/2) / ln(1 - c)); the one-sided rule of 3 (3 / c) is "
                     "shown beside it for comparison; per group, effective trials times the group's design effect",
    "groups": "'supported' overall only when supported for every group; 'contradicted' when contradicted for at "
              "least one group (each group at the audit's own level, not adjusted for the number of groups)",
    "operational_gallery": "NIST SP 800-63A-4: a test of a 1:N claim uses a gallery of at least 90% of the "
                           "operational size; below that an FPIR claim is tested against the scale section's "
                           "band at that size, 'not shown' where that band is not estimable",
}


# ----------------------------------------------------------------------------------- parsing
_IN = re.compile(r"^\s*([0-9.eE+-]+)\s*(?:in|/)\s*([0-9.,eE+_]+)\s*$")


def parse_number(text, what: str) -> float:
    """A number as people write it: ``1e6``, ``1,000,000``, ``0.1%``, ``1/1000``, ``1 in 1,000``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().replace("_", "")
        try:
            m = _IN.match(s)
            if m:
                value = float(m.group(1)) / float(m.group(2).replace(",", ""))
            elif s.endswith("%"):
                value = float(s[:-1].replace(",", "")) / 100
            else:
                value = float(s.replace(",", ""))
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{what}: cannot read {str(text)[:40]!r} as a number (write e.g. 0.001, 0.1%, "
                             "1/1000 or '1 in 1000')") from None
    if not math.isfinite(value):
        raise InputError(f"{what}: {value} is not a finite number")
    return value


def parse_rate(text, what: str) -> float:
    value = parse_number(text, what)
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{what}: a rate must be between 0 and 1 (or 0% and 100%), got {value:g}")
    return value


@dataclass(frozen=True)
class Claim:
    """One claim: ``figure`` at most ``rate`` (``rank1``: at least), where stated."""

    figure: str
    rate: float
    threshold: float | None = None   # in the audit's score units (a distance D is -D)
    at_fpir: float | None = None
    at_fmr: float | None = None
    rank: int = 1
    distance: bool = False

    @property
    def at_least(self) -> bool:
        return self.figure == "rank1"

    def where(self) -> str:
        if self.at_fpir is not None:
            return f"at the operating point for FPIR {_plain(self.at_fpir)}"
        if self.at_fmr is not None:
            return f"at the threshold for FMR {_plain(self.at_fmr)}"
        if self.threshold is not None:
            return f"at distance {-self.threshold:.6g}" if self.distance else f"at threshold {self.threshold:.6g}"
        return "with no threshold" if self.figure == "rank1" else "at the system's own threshold"

    def text(self) -> str:
        name = f"FNIR at rank {self.rank}" if self.figure == "fnir" else NAMES[self.figure]
        return f"{name} {'at least' if self.at_least else 'at most'} {_plain(self.rate)} {self.where()}"


def make_claims(*, fpir=(), fnir=(), fmr=(), fnmr=(), rank1=(), threshold=None, distance=None, at_fpir=None,
                at_fmr=None, rank: int = 1) -> list[Claim]:
    """Claims from the command line's options (each rate option repeatable; where-options shared)."""
    if threshold is not None and distance is not None:
        raise InputError("give --threshold (a score) or --distance, not both")
    t = None if threshold is None else parse_number(threshold, "--threshold")
    dist = distance is not None
    if dist:
        d = parse_number(distance, "--distance")
        if d < 0:
            raise InputError(f"--distance must be at least 0, got {d:g}")
        t = -d
    x_fpir = None if at_fpir is None else parse_rate(at_fpir, "--at-fpir")
    x_fmr = None if at_fmr is None else parse_rate(at_fmr, "--at-fmr")
    if not isinstance(rank, int) or rank < 1:
        raise InputError(f"--rank must be a whole number >= 1, got {rank}")
    claims = []
    for figure, values in (("fpir", fpir), ("fnir", fnir), ("fmr", fmr), ("fnmr", fnmr), ("rank1", rank1)):
        for v in values:
            c = parse_rate(v, f"--{figure}")
            if figure in ("fpir", "fmr") and (x_fpir is not None or x_fmr is not None):
                raise InputError(f"--{figure} is a claim at a threshold: give --threshold (or --distance), "
                                 "not --at-fpir / --at-fmr")
            if figure == "fnir" and x_fmr is not None:
                raise InputError("--fnir is stated at an FPIR operating point (--at-fpir) or a threshold, not --at-fmr")
            if figure == "fnmr" and x_fpir is not None:
                raise InputError("--fnmr is stated at an FMR (--at-fmr) or a threshold, not --at-fpir")
            others = any(len(v) for v in (fpir, fnir, fmr, fnmr))
            if figure == "rank1" and not others and (t is not None or x_fpir is not None or x_fmr is not None):
                raise InputError("--rank1 is the rank-1 identification rate with no threshold; "
                                 "for a miss rate at a threshold use --fnir")
            if figure in ("fnir", "fnmr") and t is not None and (x_fpir is not None or x_fmr is not None):
                raise InputError(f"--{figure}: give either a threshold or an operating point, not both")
            if figure == "rank1":  # no threshold: the other claims' threshold is theirs
                claims.append(Claim(figure, c))
                continue
            claims.append(Claim(figure, c, t, x_fpir if figure == "fnir" else None,
                                x_fmr if figure == "fnmr" else None, rank if figure == "fnir" else 1, dist))
    if not claims:
        raise InputError("no claim given: use --fpir, --fnir, --fmr, --fnmr or --rank1 (see faceaudit claim --help)")
    return claims


# ----------------------------------------------------------------------------------- statistics
def verdict(ci_low: float | None, ci_high: float | None, claim: float, *, at_least: bool = False) -> str:
    """'supported', 'contradicted' or 'not shown' from an interval and a claimed bound."""
    if ci_low is None or ci_high is None:
        return "not shown"
    if at_least:
        return "supported" if ci_low >= claim else "contradicted" if ci_high < claim else "not shown"
    return "supported" if ci_high <= claim else "contradicted" if ci_low > claim else "not shown"


def _upper(x: float, n: float, alpha: float) -> float:
    return 1.0 if x >= n else float(special.betaincinv(x + 1, n - x, 1 - alpha / 2))


def _lower(x: float, n: float, alpha: float) -> float:
    return 0.0 if x <= 0 else float(special.betaincinv(x, n - x + 1, alpha / 2))


def trials_needed(errors: float, trials: float, claim: float, *, at_least: bool = False,
                  confidence: float = 0.95) -> dict | None:
    """How many trials would settle a claim if the measured rate stayed as measured (module docstring).

    ``errors``/``trials`` count errors (for an "at least" claim on a success rate, the claim is read as
    an error rate of at most ``1 - claim``). Returns ``{"trials", "to", "rule", "rule_of_3"}`` or
    ``{"trials": None, "why"}`` when no number of trials would (the rate equals the claim), or
    None when there are no trials.
    """
    if trials <= 0:
        return None
    c = 1.0 - claim if at_least else claim
    p = errors / trials
    alpha = 1.0 - confidence
    rule = (f"two-sided {confidence:.0%} Clopper-Pearson bound on {p:.6g} x n errors (the measured rate kept), "
            "smallest n past the claim")
    if p == c:
        return {"trials": None, "to": None, "rule": rule,
                "why": "the measured rate equals the claim: no number of trials would settle it if it stayed there"}
    to = "support" if p < c else "contradict"
    if to == "support":
        if c <= 0:
            return {"trials": None, "to": to, "rule": rule, "why": "a claim of exactly 0 can never be supported"}
        ok = (lambda n: _upper(p * n, n, alpha) <= c)
        closed = math.ceil(math.log(alpha / 2) / math.log1p(-c)) if p == 0 else None
    else:
        if c >= 1:
            return {"trials": None, "to": to, "rule": rule, "why": "a bound of 1 can never be contradicted"}
        ok = (lambda n: _lower(p * n, n, alpha) > c)
        closed = math.ceil(math.log(alpha / 2) / math.log(c)) if p == 1 and c > 0 else None
    if closed is not None:
        n = max(closed, 1)
    else:
        lo, hi = 1, max(int(trials), 2)
        while not ok(hi):
            lo, hi = hi, hi * 2
            if hi > MAX_TRIALS:
                return {"trials": None, "to": to, "rule": rule, "why": f"more than {MAX_TRIALS:.0e} trials"}
        while hi - lo > 1:  # smallest n with ok(n): ok(lo) false or lo the start
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        n = hi if not ok(lo) else lo
    out = {"trials": int(n), "to": to, "rule": rule}
    if errors == 0 and to == "support":
        out["rule_of_3"] = math.ceil(3.0 / c)
        out["rule_of_3_note"] = ("the one-sided 95% 'rule of 3' (3 / c) would give about "
                                 f"{math.ceil(3.0 / c):,}; faceaudit uses the audit's two-sided {confidence:.0%} "
                                 "interval, whose upper end is a one-sided 97.5% bound")
    return out


# ----------------------------------------------------------------------------------- the results folder
class _Folder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.results = load_results(self.path)
        _check_results(self.results, self.path / "results.json")  # the shapes compare reads: the same checks
        self._searches = None
        self._curve = None
        self.blackbox = "blackbox" in self.results

    @property
    def score(self) -> str:
        return str((self.results.get("input") or {}).get("score") or "cosine")

    def searches(self, why: str):
        if self._searches is None:
            table = self.path / "searches.parquet"
            if not table.exists():
                raise InputError(f"{why} is not tabulated in results.json, and this folder has no searches.parquet "
                                 "to count it from", self.path)
            from faceaudit.data.reading import read_parquet
            self._searches = read_parquet(table, "the per-search table")
        return self._searches

    def search_arrays(self, why: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best non-mate score of each non-mated search, mate score and rank of each mated search), with
        the searches lost to failure to enrol added as the audit counts them (no candidate: never a false
        positive, a miss if mated), so that counts agree with the audit's own figures."""
        s = self.searches(why)
        mated = s["mated"].to_numpy(bool)
        best = s["best_nonmate_score"].to_numpy(np.float64, na_value=-np.inf)[~mated]
        mate = s["mate_score"].to_numpy(np.float64, na_value=-np.inf)[mated]
        rank = s["mate_rank"].to_numpy(np.float64, na_value=np.iinfo(np.int32).max)[mated].astype(np.int64)
        if not self.blackbox:
            best, mate = best.astype(np.float32), mate.astype(np.float32)
        fte = self.results.get("failure_to_enrol") or {}
        if fte.get("counted_as_misses", True):
            n_m, n_nm = int(fte.get("failed_mated_searches", 0)), int(fte.get("failed_nonmated_searches", 0))
            best = np.concatenate([best, np.full(n_nm, -np.inf, best.dtype)])
            mate = np.concatenate([mate, np.full(n_m, -np.inf, mate.dtype)])
            rank = np.concatenate([rank, np.full(n_m, np.iinfo(np.int32).max, np.int64)])
        return best, mate, rank

    def verification_curve(self, why: str):
        if self._curve is None:
            if not (self.path / "scores.npz").exists():
                raise InputError(f"{why} is not tabulated in results.json, and this folder has no scores.npz "
                                 "to count it from", self.path)
            from faceaudit.analyses.explain import _read_scores
            from faceaudit.engine.counts import hist_edges
            from faceaudit.metrics import verification as verif
            data = _read_scores(self.path)
            hist = np.zeros(hist_edges().size, dtype=np.int64)
            hist[data["impostor_bin"]] = data["impostor_count"]
            self._curve = verif.verification_curve(data["genuine"], hist, score=self.score,
                                                   fine_from=int(data.get("impostor_fine_from", 0)))
        return self._curve

    def score_range(self) -> tuple[float, float] | None:
        vals = []
        ident = self.results.get("identification") or {}
        vals += [v for v in (ident.get("curve") or {}).get("threshold", []) if isinstance(v, (int, float))]
        vals += [v for v in ((self.results.get("verification") or {}).get("curve") or {}).get("threshold", [])
                 if isinstance(v, (int, float))]
        vals += [v for v in (self.results.get("distributions") or {}).get("edges", []) if isinstance(v, (int, float))]
        vals = [float(v) for v in vals if math.isfinite(float(v))]
        return (min(vals), max(vals)) if vals else None


def _same(a, b) -> bool:
    return a is not None and b is not None and a != "-inf" and b != "-inf" and np.float32(a) == np.float32(b)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _rate_entry(r: dict, source: str, threshold) -> dict:
    ok = (isinstance(r, dict) and all(_number(r.get(k)) for k in ("errors", "trials"))
          and r["errors"] == int(r["errors"]) and r["trials"] == int(r["trials"]) and 0 <= r["errors"] <= r["trials"]
          and (r["trials"] == 0 or all(_number(r.get(k)) for k in ("value", "ci_low", "ci_high"))))
    if not ok:
        raise InputError(f"{source.split(': ', 1)[-1]}: a rate without whole-number counts and an interval; is this "
                         "results.json from another faceaudit version?")
    if r["trials"] == 0:
        raise InputError(f"{source.split(': ', 1)[-1]}: no trials, so the figure is undefined and no claim about it "
                         "can be tested")
    return {"errors": r.get("errors"), "trials": r.get("trials"), "value": r.get("value"),
            "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "confidence": r.get("confidence", 0.95),
            "method": r.get("method", "clopper-pearson"), "threshold": threshold, "source": source}


def _counted(r, threshold, source: str) -> dict:
    return _rate_entry(r.to_dict(), source, threshold)


def _tabulated_points(folder: _Folder) -> list[dict]:
    ident = folder.results.get("identification") or {}
    return [p for p in list(ident.get("operating_points") or []) + list(ident.get("at_thresholds") or [])
            if isinstance(p, dict)]


def _system_point(folder: _Folder, claim: Claim) -> dict:
    sys_point = (folder.results.get("identification") or {}).get("at_system_threshold")
    if not sys_point:
        raise InputError(f"{claim.text()}: give the threshold the claim is stated at (--threshold, or --distance for "
                         "a distance audit)" + ("" if claim.figure != "fnir" else " or an operating point (--at-fpir)"))
    return sys_point


def _measure(folder: _Folder, claim: Claim) -> dict:
    """The figure the claim is about, with the audit's interval (InputError when the audit cannot give it)."""
    f = claim.figure
    ident = folder.results.get("identification") or {}
    if f == "rank1":
        misses = (ident.get("rank1_identification_rate") or {}).get("misses")
        if not misses or not misses.get("trials"):
            raise InputError("this audit has no rank-1 identification rate (no mated searches)", folder.path)
        m = _rate_entry(misses, "results.json: identification.rank1_identification_rate", None)
        return {**m, "errors": misses["errors"], "value": 1 - misses["value"],
                "ci_low": 1 - misses["ci_high"], "ci_high": 1 - misses["ci_low"]}
    if f in ("fpir", "fnir"):
        return _measure_identification(folder, claim)
    return _measure_verification(folder, claim)


def _measure_identification(folder: _Folder, claim: Claim) -> dict:
    from faceaudit.metrics import identification as ident_m
    ident = folder.results.get("identification") or {}
    key = "fpir" if claim.figure == "fpir" else "fnir"
    rank = str(claim.rank)

    def pick(point: dict, source: str) -> dict:
        if key == "fpir":
            return _rate_entry(point["fpir"], source, point.get("threshold"))
        fn = point.get("fnir") or {}
        if rank not in fn:
            raise InputError(f"this audit reports FNIR at ranks {', '.join(sorted(fn, key=int)) or 'none'}, "
                             f"not rank {claim.rank}", folder.path)
        return _rate_entry(fn[rank], source, point.get("threshold"))

    if claim.at_fpir is not None:
        for op in ident.get("operating_points") or []:
            if np.isclose(op.get("target_fpir", -1), claim.at_fpir, rtol=1e-9, atol=0):
                if op.get("threshold") is None:
                    raise InputError(f"{claim.text()}: the audit could not set this operating point "
                                     f"({op.get('not_measurable') or 'no threshold'})", folder.path)
                return pick(op, f"results.json: identification.operating_points (FPIR {claim.at_fpir:g})")
        if folder.blackbox:
            raise InputError(f"{claim.text()}: this black-box audit did not report FPIR {claim.at_fpir:g}; rerun "
                             f"faceaudit audit-lists with --fpir {claim.at_fpir:g}", folder.path)
        best, mate, rank = folder.search_arrays(f"the operating point for FPIR {claim.at_fpir:g}")
        op = ident_m.threshold_at_fpir(best, claim.at_fpir)
        if op.threshold is None:
            raise InputError(f"{claim.text()}: no non-mated searches to set it", folder.path)
        r = ident_m.fnir(mate, rank, op.threshold, rank=claim.rank)
        return _counted(r, op.threshold, "counted from searches.parquet (faceaudit's operating-point rule)")
    if claim.threshold is None:
        return pick(_system_point(folder, claim), "results.json: identification.at_system_threshold")
    for p in _tabulated_points(folder):
        if _same(p.get("threshold"), claim.threshold) and p.get(key):
            return pick(p, "results.json: identification (tabulated at this threshold)")
    t = claim.threshold
    if folder.blackbox:
        if key == "fnir":
            raise InputError(f"{claim.text()}: this black-box audit did not report FNIR at this threshold; rerun "
                             f"faceaudit audit-lists with --threshold {t:g}", folder.path)
        dom = ident.get("fpir_measurable_from") or (folder.results["blackbox"].get("fpir_measurable_from") or {})
        start = dom.get("from")
        start = -np.inf if start in (None, "-inf") else float(start)
        if t < start or (t == start and not dom.get("inclusive", True)):
            raise InputError(f"{claim.text()}: the lists do not determine FPIR below {start:.6g} (a list cut there "
                             "does not show whether a non-mate would score this high)", folder.path)
    best, mate, rank = folder.search_arrays(f"{NAMES[claim.figure]} at threshold {t:g}")
    thr = t if folder.blackbox else float(np.float32(t))
    if key == "fpir":
        return _counted(ident_m.fpir(best, thr), thr, "counted from searches.parquet")
    return _counted(ident_m.fnir(mate, rank, thr, rank=claim.rank), thr, "counted from searches.parquet")


def _measure_verification(folder: _Folder, claim: Claim) -> dict:
    from faceaudit.metrics import verification as verif
    ver = folder.results.get("verification") or {}
    if not ver or ver.get("not_measurable"):
        raise InputError(f"{claim.text()}: this audit did not measure {NAMES[claim.figure]} "
                         f"({ver.get('not_measurable') or 'no verification section'})", folder.path)
    key = claim.figure
    points = [p for p in ver.get("fnmr_at_fmr") or [] if isinstance(p, dict) and p.get("measurable")]
    if ver.get("eer"):
        points.append(ver["eer"])
    if claim.at_fmr is not None:
        for p in points:
            if "target_fmr" in p and np.isclose(p["target_fmr"], claim.at_fmr, rtol=1e-9, atol=0):
                return _rate_entry(p["fnmr"], f"results.json: verification.fnmr_at_fmr (FMR {claim.at_fmr:g})",
                                   p["threshold"])
        curve = folder.verification_curve(f"FNMR at FMR {claim.at_fmr:g}")
        vp = verif.fnmr_at_fmr(curve, claim.at_fmr)
        if not vp.measurable:
            raise InputError(f"{claim.text()}: FMR {claim.at_fmr:g} is below what {curve.n_impostor:,} impostor "
                             "comparisons can show (floor(x n) < 1)", folder.path)
        return _counted(vp.fnmr, vp.threshold, "counted from scores.npz (faceaudit's FNMR-at-FMR rule)")
    if claim.threshold is None:
        raise InputError(f"{claim.text()}: give the threshold the claim is stated at (--threshold)"
                         + (" or an FMR (--at-fmr)" if key == "fnmr" else ""))
    for p in points:
        if _same(p.get("threshold"), claim.threshold):
            return _rate_entry(p[key], "results.json: verification (tabulated at this threshold)", p["threshold"])
    curve = folder.verification_curve(f"{NAMES[key]} at threshold {claim.threshold:g}")
    t = claim.threshold
    if key == "fnmr":  # genuine scores are exact: FNMR(T) = genuine scores below T
        from auditcore.intervals import rate
        from faceaudit.analyses.explain import _read_scores
        g = np.asarray(_read_scores(folder.path)["genuine"], np.float32)
        return _counted(rate(int(np.count_nonzero(g < np.float32(t))), curve.n_genuine), float(np.float32(t)),
                        "counted from scores.npz (genuine scores, exact)")
    # impostor comparisons are counted at exact histogram edges: at the edge at or below T (an
    # over-count, so a 'supported' holds at T) and at the next edge above T (an under-count, so a
    # 'contradicted' holds at T); equal when T is an edge
    i = verif._edge_index(curve, t)
    r = verif.fmr(curve, t)
    entry = _counted(r, float(curve.thresholds[i]) if i >= 0 else t, "counted from scores.npz (impostor histogram)")
    if i < 0 or curve.thresholds[i] != t:
        j = i + 1
        above = int(curve.false_matches[j]) if j < curve.thresholds.size else 0
        from auditcore.intervals import rate
        lo = rate(above, curve.n_impostor)
        entry["ci_low"] = lo.ci_low
        entry["note"] = (f"T is not a histogram edge: errors counted at the edge {entry['threshold']:.6g} below it "
                         f"({r.errors:,}, the interval's upper end) and the edge above it ({above:,}, its lower end)")
    return entry


# ----------------------------------------------------------------------------------- groups
def _demographics(results: dict) -> dict | None:
    return results.get("demographics") or results.get("demographics_from_lists")


def _group_rates(folder: _Folder, claim: Claim, group: str) -> tuple[dict, dict]:
    demo = _demographics(folder.results)
    if not demo:
        raise InputError("this audit has no per-group figures; rerun it with --group-by " + group, folder.path)
    specs = [a.get("spec") for a in demo.get("analyses", [])]
    if group not in specs:
        raise InputError(f"this audit's groups are by {', '.join(map(str, specs))}, not {group!r}", folder.path)
    an = demo["analyses"][specs.index(group)]
    if claim.figure == "rank1":
        raise InputError("per-group figures are at the demographics threshold; the rank-1 identification rate "
                         "(no threshold) is not reported per group", folder.path)
    t0 = demo.get("threshold")
    ok = (_same(claim.threshold, t0) or
          (claim.figure == "fnir" and claim.at_fpir is not None and demo.get("operating_fpir") is not None
           and np.isclose(demo["operating_fpir"], claim.at_fpir, rtol=1e-9, atol=0)))
    if claim.figure == "fnir" and claim.rank != 1:
        raise InputError("per-group FNIR is reported at rank 1 only", folder.path)
    if not ok:
        at = f"threshold {t0:.6g}" if t0 is not None else "the system's own threshold"
        rule = f" ({demo['threshold_rule']})" if demo.get("threshold_rule") else ""
        raise InputError(f"{claim.text()}: the audit's per-group figures are at {at}{rule}; state the claim there "
                         f"(--threshold {t0:.6g})" if t0 is not None else f"{claim.text()}: per-group figures are at "
                         "the system's own threshold", folder.path)
    why = (an.get("not_measurable") or {}).get(claim.figure)
    if why:
        raise InputError(f"{claim.text()}: per group, {why}", folder.path)
    rates = (an.get("rates") or {}).get(claim.figure)
    if not rates:
        raise InputError(f"this audit reports no per-group {NAMES[claim.figure]}", folder.path)
    return rates, demo


def _group_verdicts(folder: _Folder, claim: Claim, group: str) -> dict:
    rates, demo = _group_rates(folder, claim, group)
    out = []
    for g, e in rates.items():
        if not e:
            continue
        lo, hi = (e.get("ci") or [None, None])[:2]
        v = verdict(lo, hi, claim.rate)
        entry = {"group": str(g), "errors": e.get("errors"), "trials": e.get("trials"), "value": e.get("value"),
                 "ci_low": lo, "ci_high": hi, "method": e.get("interval_method", "clopper-pearson"),
                 "people": e.get("people"), "too_few": bool(e.get("too_few")), "verdict": v, "trials_needed": None}
        if v == "not shown" and e.get("trials"):
            deff = float(e.get("design_effect") or 1.0)
            eff = float(e.get("effective_trials") or e["trials"])
            need = trials_needed(e["errors"] * eff / e["trials"], eff, claim.rate, confidence=demo.get("confidence", 0.95))
            if need and need.get("trials"):
                need["trials"] = math.ceil(need["trials"] * deff)
                need.pop("rule_of_3", None)
                need.pop("rule_of_3_note", None)
                need["rule"] += f"; effective trials x the group's design effect {deff:.3g}"
                per = e["trials"] / e["people"] if e.get("people") else None
                if per:
                    need["people"] = math.ceil(need["trials"] / per)
                    need["per_person"] = per
            entry["trials_needed"] = need
        out.append(entry)
    verdicts = [e["verdict"] for e in out]
    overall = ("supported" if verdicts and all(v == "supported" for v in verdicts) else
               "contradicted" if "contradicted" in verdicts else "not shown")
    return {"by": group, "threshold": demo.get("threshold"), "threshold_rule": demo.get("threshold_rule"),
            "groups": out, "verdict": overall,
            "failing": [e["group"] for e in out if e["verdict"] == "contradicted"],
            "not_shown": [e["group"] for e in out if e["verdict"] == "not shown"]}


# ----------------------------------------------------------------------------------- operational gallery
def _operational(folder: _Folder, claim: Claim, measured: dict, n_op: float) -> dict:
    proto = folder.results.get("protocol") or {}
    g = proto.get("gallery_size")
    out = {"gallery_size": n_op, "audited_gallery_size": g, "unit": "enrolled people",
           "rule": RULES["operational_gallery"]}
    if g is None:
        return {**out, "verdict": "not shown", "reason": "the audit does not record its gallery size"}
    out["share"] = g / n_op
    out["meets_90_percent"] = bool(g >= OPERATIONAL_SHARE * n_op * (1 - 1e-12))  # 1e-12: 0.9 x (G / 0.9) is G
    if out["meets_90_percent"]:
        return {**out, "verdict": None, "reason": "the audited gallery is at least 90% of the operational size: the "
                "audit's own figure applies"}
    if claim.figure in ("fmr", "fnmr"):
        return {**out, "meets_90_percent": None, "verdict": None,
                "reason": "a 1:1 figure: it does not depend on the gallery size"}
    if claim.figure != "fpir":
        return {**out, "verdict": "not shown", "reason": f"{NAMES[claim.figure]} is measured only up to the audited "
                "gallery; the audit does not extrapolate it"}
    scale = folder.results.get("scale") or folder.results.get("scale_from_lists")
    if not scale or not scale.get("extrapolation"):
        why = (scale or {}).get("not_measurable") or ("the audit has no scale section (rerun it with --scale "
                                                      f"--claimed-gallery-size {n_op:.0f})")
        return {**out, "verdict": "not shown", "reason": why}
    lists = "scale" not in folder.results
    out["assumptions"] = list(scale.get("assumptions") or [])
    rows = [r for r in scale["extrapolation"]
            if _same(r.get("threshold"), measured.get("threshold"))
            and np.isclose(float(r.get("gallery_size", -1)), n_op, rtol=1e-9, atol=0)]
    if not rows:
        sizes = sorted({float(r["gallery_size"]) for r in scale["extrapolation"]})
        ts = sorted({float(r["threshold"]) for r in scale["extrapolation"]})
        return {**out, "verdict": "not shown",
                "reason": f"the scale section has no band at this threshold and {n_op:,.0f} people (it extrapolates at "
                          f"thresholds {', '.join(f'{t:.6g}' for t in ts)} to "
                          f"{', '.join(f'{s:,.0f}' for s in sizes)} people; rerun the audit with "
                          f"{'--claimed-gallery-size ' + format(n_op, '.0f') if not lists else '--scale'})"}
    r = rows[0]
    from faceaudit.report.bands import fpir_statement
    kind = r.get("statement") or fpir_statement(r)["kind"]
    lo, hi = r.get("fpir_lo"), r.get("fpir_hi")
    if kind in ("cannot_say", "n/a") or lo is None or hi is None:
        return {**out, "verdict": "not shown", "statement": kind, "fpir_lo": lo, "fpir_hi": hi,
                "reason": f"the scale band at {n_op:,.0f} people is not estimable (the audit says these data cannot "
                          "say)"}
    if kind == "at_least":
        hi = 1.0
    elif kind == "at_most":
        lo = 0.0
    out.update(fpir_lo=lo, fpir_hi=hi, fpir=r.get("fpir"), statement=kind, band_rule=scale.get("band_rule"))
    v = verdict(lo, hi, claim.rate)
    reason = f"tested against the scale section's band at {n_op:,.0f} people ({kind.replace('_', ' ')})"
    if lists and v == "contradicted":
        v = "not shown"
        reason += ("; a black-box audit's band assumes independent non-mate scores, so only its upper end is used "
                   "(look-alikes concentrated on some probes lower FPIR)")
    return {**out, "verdict": v, "reason": reason}


# ----------------------------------------------------------------------------------- the whole test
def _people_per_trial(folder: _Folder, claim: Claim, measured: dict) -> tuple[float, str] | None:
    """This audit's trials per person of the kind the figure counts, and what the people are."""
    try:
        s = folder.searches("people")
    except InputError:
        return None
    mated = s["mated"].to_numpy(bool)
    subjects = s["subject_id"].astype(str)
    if claim.figure in ("fpir", "fnir", "rank1"):
        sel = ~mated if claim.figure == "fpir" else mated
        people = subjects[sel].nunique()
        return ((int(sel.sum()) + 0.0) / people, "people") if people else None
    # 1:1 comparisons: impostor comparisons per probe person, genuine comparisons per mated person
    people = subjects.nunique() if claim.figure == "fmr" else subjects[mated].nunique()
    trials = measured.get("trials") or 0
    return (trials / people, "probe people" if claim.figure == "fmr" else "people") if people and trials else None


def _check_threshold(folder: _Folder, claim: Claim) -> None:
    if claim.threshold is None:
        return
    rng = folder.score_range()
    if rng and folder.blackbox and claim.threshold < rng[0]:
        raise InputError(f"threshold {claim.threshold:g} is below every score the lists show (from {rng[0]:.6g}): "
                         "the lists do not determine any figure there", folder.path)
    if rng and not rng[0] <= claim.threshold <= rng[1]:
        if claim.distance:
            raise InputError(f"distance {-claim.threshold:g} is outside the distances this audit observed "
                             f"({-rng[1]:.6g} to {-rng[0]:.6g})", folder.path)
        hint = " (a distance audit: give --distance)" if folder.score == "neg_euclidean" and claim.threshold > 0 else ""
        raise InputError(f"threshold {claim.threshold:g} is outside the scores this audit observed "
                         f"({rng[0]:.6g} to {rng[1]:.6g}){hint}", folder.path)


def check_claim(folder: _Folder, claim: Claim, *, group: str | None = None,
               operational_gallery_size: float | None = None) -> dict:
    """One claim's entry (see :func:`evaluate`)."""
    if claim.distance and folder.score != "neg_euclidean":
        raise InputError(f"--distance is for a distance audit (score neg_euclidean); this audit's score is "
                         f"{folder.score}: give --threshold", folder.path)
    _check_threshold(folder, claim)
    groups = _group_verdicts(folder, claim, group) if group else None  # refused before any counting
    m = _measure(folder, claim)
    v = verdict(m["ci_low"], m["ci_high"], claim.rate, at_least=claim.at_least)
    need = None
    if v == "not shown" and m.get("trials"):
        errors = m["errors"]
        need = trials_needed(errors, m["trials"], claim.rate, at_least=claim.at_least,
                             confidence=m.get("confidence") or 0.95)
        per = _people_per_trial(folder, claim, m)
        if need and need.get("trials") and per:
            need["people"] = math.ceil(need["trials"] / per[0])
            need["per_person"] = per[0]
            need["people_are"] = per[1]
    entry = {"claim": claim.text(), "figure": claim.figure, "side": "at least" if claim.at_least else "at most",
             "claimed": claim.rate, "rank": claim.rank if claim.figure == "fnir" else None,
             "at_fpir": claim.at_fpir, "at_fmr": claim.at_fmr, "threshold": m["threshold"],
             "stated_threshold": claim.threshold, "distance": claim.distance, "errors": m["errors"], "trials": m["trials"], "value": m["value"],
             "ci_low": m["ci_low"], "ci_high": m["ci_high"], "confidence": m.get("confidence"),
             "method": m.get("method"), "source": m["source"], "covers": "this audit's searches"
             if claim.figure in ("fpir", "fnir", "rank1") else "this audit's comparisons",
             "verdict_measured": v, "verdict": v, "trials_needed": need}
    if m.get("note"):
        entry["note"] = m["note"]
    if groups:
        entry["groups"] = groups
        entry["verdict"] = entry["groups"]["verdict"]
    if operational_gallery_size is not None:
        op = _operational(folder, claim, m, operational_gallery_size)
        entry["operational"] = op
        if op.get("verdict") is not None:
            entry["verdict"] = op["verdict"] if not group else (
                "contradicted" if "contradicted" in (op["verdict"], entry["verdict"]) else
                "supported" if op["verdict"] == entry["verdict"] == "supported" else "not shown")
    entry["sentence"] = sentence(entry)
    return entry


def evaluate(results_dir: str | Path, claims: list[Claim], *, group: str | None = None,
             operational_gallery_size: float | None = None) -> dict:
    """Every claim against one results folder: ``{"results", "system", "claims": [...], "rules"}``."""
    folder = _Folder(results_dir)
    if operational_gallery_size is not None and not operational_gallery_size >= 1:
        raise InputError(f"--operational-gallery-size must be at least 1, got {operational_gallery_size:g}")
    entries = [check_claim(folder, c, group=group, operational_gallery_size=operational_gallery_size) for c in claims]
    prov = folder.results.get("provenance") or {}
    system = prov.get("system") if isinstance(prov, dict) else None
    system = system if isinstance(system, dict) else {"name": None, "version": None}
    proto = folder.results.get("protocol") or {}
    return {"results": str(folder.path), "kind": "black-box candidate lists" if folder.blackbox else "templates",
            "system": {"name": system.get("name"), "version": system.get("version")},
            "score": folder.score, "gallery_size": proto.get("gallery_size"),
            "n_mated_searches": proto.get("n_mated_probes"), "n_nonmated_searches": proto.get("n_nonmated_probes"),
            "group": group, "operational_gallery_size": operational_gallery_size,
            "claims": entries, "rules": RULES}


# ----------------------------------------------------------------------------------- words
def _pct(x, sig: int = 3) -> str:
    """A rate as a percentage: two decimals from 1% up, else ``sig`` significant digits (no trailing zeros)."""
    if x is None:
        return "undefined"
    p = 100 * float(x)
    if p == 0:
        return "0%"
    if abs(p) >= 1 and sig <= 4:
        text = f"{p:.2f}"
    else:
        text = f"{p:.{sig}g}" if "e" not in f"{p:.{sig}g}" else f"{p:.{sig + 6}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
    return f"{text}%"


def _plain(x) -> str:
    """A claimed rate as the vendor would write it (0.1%, 20%, 1.3%)."""
    return f"{100 * float(x):.6g}%"


def _digits(claim: float, *values) -> int:
    """Enough significant digits that no value that differs from the claim prints as the claim."""
    for sig in range(3, 9):
        if all(v is None or v == claim or _pct(v, sig) != _pct(claim, sig) for v in values):
            return sig
    return 9


def _interval(lo, hi, sig: int = 3) -> str:
    return f"{_pct(lo, sig)} to {_pct(hi, sig)}"


def needed_words(entry: dict, need: dict | None, figure: str, claim: float) -> str:
    """'to support this claim, about N non-mated searches, of at least P people, would be needed ...'."""
    if not need:
        return ""
    if need.get("trials") is None:
        why = need.get("why", "")
        return why[:1].upper() + why[1:]
    are = need.get("people_are", "people")
    per = need.get("per_person") or 0
    per = f"{per:,.0f}" if per >= 100 else f"{per:.3g}"
    who = (f", of at least {need['people']:,} {are} (at this audit's {per} per "
           f"{'probe person' if are == 'probe people' else 'person'})") if need.get("people") else ""
    rate_word = NAMES[figure] if figure != "rank1" else "the miss rate"
    stay = ("no errors were seen there either" if entry["errors"] == 0 else
            f"{rate_word} stayed at the measured {_pct(entry['value'] if figure != 'rank1' else 1 - entry['value'])}")
    text = f"to {need['to']} this claim, about {need['trials']:,} {TRIALS[figure]}{who} would be needed, if {stay}"
    if need.get("rule_of_3"):
        text += f" (the one-sided rule of 3 would say about {need['rule_of_3']:,})"
    return text


def sentence(entry: dict) -> str:
    """The verdict line."""
    v = entry["verdict_measured"]
    what = {"supported": "SUPPORTED", "contradicted": "CONTRADICTED", "not shown": "NOT SHOWN"}[v]
    side = "at least" if entry["side"] == "at least" else "at most"
    where = {"supported": f"entirely {side} {_plain(entry['claimed'])}",
             "contradicted": f"entirely {'below' if side == 'at least' else 'above'} {_plain(entry['claimed'])}",
             "not shown": f"an interval that straddles {_plain(entry['claimed'])}"}[v]
    pct = round(100 * (entry.get("confidence") or 0.95))
    sig = _digits(entry["claimed"], entry["value"], entry["ci_low"], entry["ci_high"])
    trials = TRIALS[entry["figure"]]
    counts = (f"{entry['errors']:,} {'misses' if entry['figure'] in ('fnir', 'rank1') else 'errors'} of "
              f"{entry['trials']:,} {trials}")
    thr = ("" if entry["threshold"] is None else f", distance {-float(entry['threshold']):.6g}" if entry.get("distance")
           else f", threshold {float(entry['threshold']):.6g}")
    op = entry.get("operational")
    by = ("at the audited gallery" if op and op.get("meets_90_percent") is False else "by this audit")
    rank1 = entry["figure"] == "rank1"
    if entry["errors"] == 0 or entry["errors"] == entry["trials"]:  # a bound, never [0, 0]
        upper = (entry["errors"] == 0) != rank1
        bound = (f"{pct}% upper bound {_pct(entry['ci_high'], sig)}" if upper else
                 f"{pct}% lower bound {_pct(entry['ci_low'], sig)}")
        if entry["errors"] == 0 and not rank1:
            measured = f"no errors in {entry['trials']:,} {trials}{thr}, {bound}"
        else:
            measured = f"{_pct(entry['value'], sig)} ({counts}{thr}), {bound}"
    else:
        measured = (f"{_pct(entry['value'], sig)} ({counts}{thr}), {pct}% interval "
                    f"{_interval(entry['ci_low'], entry['ci_high'], sig)}")
    text = (f"{entry['claim']}: {what} {by}: measured {measured}, {where} "
            f"(the interval covers {entry['covers']}).")
    if v == "not shown":
        words = needed_words(entry, entry.get("trials_needed"), entry["figure"], entry["claimed"])
        text += " " + words[:1].upper() + words[1:] + "."
    g = entry.get("groups")
    if g:
        by_name = {e["group"]: e for e in g["groups"]}

        def named(groups: list) -> str:
            return ", ".join(f"{x} ({_pct(by_name[x]['value'])}, interval {_interval(by_name[x]['ci_low'], by_name[x]['ci_high'])})"
                             for x in groups)
        fails = f"; contradicted for {named(g['failing'])}" if g["failing"] else ""
        unshown = f"; not shown for {named(g['not_shown'])}" if g["not_shown"] else ""
        text += (f" Per {g['by']} ({len(g['groups'])} groups, at threshold {g['threshold']:.6g}): {g['verdict'].upper()}"
                 f"{fails}{unshown}.")
    op = entry.get("operational")
    if op:
        n = op["gallery_size"]
        if op.get("audited_gallery_size") is None:
            text += f" At {n:,.0f} people: not shown ({op['reason']})."
        else:
            share = op["audited_gallery_size"] / n
            if op.get("meets_90_percent") is None:
                text += f" Operational gallery: {op['reason']}."
            elif op["meets_90_percent"]:
                text += (f" The audited gallery ({op['audited_gallery_size']:,} people) is {share:.0%} of the operational "
                         f"{n:,.0f}: at least 90% (NIST SP 800-63A-4), so the verdict applies there.")
            else:
                band = (f"; band {_interval(op['fpir_lo'], op['fpir_hi'])}" if op.get("fpir_hi") is not None else "")
                text += (f" The audited gallery ({op['audited_gallery_size']:,} people) is {_pct(share)} of the "
                         f"operational {n:,.0f}, less than the 90% NIST SP 800-63A-4 asks for: at {n:,.0f} people the "
                         f"claim is {op['verdict'].upper()} ({op['reason']}{band}; assumptions in the scale section).")
    return text


def write_claims(result: dict, out: str | Path, *, overwrite: bool = False) -> Path:
    """The claims report folder, atomically: ``claims.json`` and ``claims.html``."""
    from auditcore.outdir import write_json_folder
    from auditcore.serialize import to_json
    from faceaudit.report.claims_html import render
    return write_json_folder(out, "claims.json", to_json(result), kind="claim", overwrite=overwrite,
                             pages=(("claims.html", render),))

"""Report figures, drawn from ``results.json`` contents only (no metric is computed here)."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.ticker import MaxNLocator

from auditcore.report import subplots, to_data_uri  # noqa: F401  (the shared figure making and embedding)

# Text sizes in points at the embedding dpi (110): a figure 5.0 in wide is about 560 px and shown at
# 520 px in a two-column grid at a 1280 px page, so 9 pt is about 12.8 px on screen (>= 10 px, tested
# in tests/test_report_render.py) and about 6.5 pt on an A4 page, two figures a row.
matplotlib.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
                            "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.formatter.useoffset": False,
                            "axes.titley": 1.0})


def to_user(scores, units: str = "cosine"):
    """Scores as the reader knows them: distances for neg_euclidean (score -0.43 = distance 0.43)."""
    x = np.asarray(scores, dtype=float)
    return -x if units == "neg_euclidean" else x


def score_label(units: str = "cosine") -> str:
    return "distance (a match is a distance <= threshold)" if units == "neg_euclidean" else "score (a match is a score >= threshold)"


COLOURS = {"fnir": "#c0392b", "fpir": "#2c3e80", "genuine": "#1e8449", "impostor": "#7f8c8d",
           "best": "#c0392b", "op": "#555555"}


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _floor_log(values: np.ndarray, floor: float) -> np.ndarray:
    return np.where(values > 0, values, np.nan) if floor is None else np.maximum(values, floor)


def dealiased(counts, edges):
    """A histogram's cells with aliasing holes closed: ``(counts, cell_edges)``.

    The engine counts impostor scores in fine bins of its own, whose width changes with the score's
    binade; re-binned on the report's linear grid, a grid bin can hold no fine bin at all and shows 0
    between two full ones (a comb). A hole is taken for aliasing only when it is a run of empty bins
    whose nearest non-empty neighbours on both sides hold at least ``ALIAS_MIN`` counts (a true
    density that high has a chance below e^-10 of leaving a bin empty); its width is split between
    those two neighbours, so each count is spread over the interval its fine bin covered. Other
    empty bins (tails, gaps between real modes) are kept. ``edges`` increasing."""
    counts = np.asarray(counts, dtype=float)
    edges = np.asarray(edges, dtype=float)
    keep_counts, keep_edges = [], [edges[0]]
    i, n = 0, counts.size
    while i < n:
        if counts[i] == 0 and keep_counts and keep_counts[-1] >= ALIAS_MIN:
            j = i
            while j < n and counts[j] == 0:
                j += 1
            if j < n and counts[j] >= ALIAS_MIN:  # a hole between two full bins: close it
                keep_edges[-1] = (edges[i] + edges[j]) / 2
                i = j
                continue
            keep_counts.extend(counts[i:j])
            keep_edges.extend(edges[i + 1:j + 1])
            i = j
            continue
        keep_counts.append(counts[i])
        keep_edges.append(edges[i + 1])
        i += 1
    return np.array(keep_counts), np.array(keep_edges)


ALIAS_MIN = 10


def _stored_band(curve: dict, low_key: str, high_key: str, ok: np.ndarray):
    """The band the results store beside a curve (the report computes no interval); NaNs where a
    results folder from before the band was stored has none."""
    lo, hi = _num(curve.get(low_key) or []), _num(curve.get(high_key) or [])
    if lo.size != ok.size or hi.size != ok.size:
        return np.full(int(ok.sum()), np.nan), np.full(int(ok.sum()), np.nan)
    return lo[ok], hi[ok]


def det_identification(ident: dict):
    """Log-log DET. Operating points are merged into the curve by threshold, so that each dot lies
    exactly on the drawn line; the band is the pointwise 95% Clopper-Pearson interval of FNIR."""
    curve = ident["curve"]
    t = _num(curve["threshold"])
    fpir, fnir = _num(curve["fpir"]), _num(curve["fnir_rank1"])
    lo = _num(curve.get("fnir_rank1_ci_low", curve["fnir_rank1"]))
    hi = _num(curve.get("fnir_rank1_ci_high", curve["fnir_rank1"]))
    ops = [op for op in ident["operating_points"]
           if op.get("threshold") is not None and op["fpir"].get("value") not in (None, 0)
           and isinstance(op["threshold"], (int, float)) and op["fnir"]["1"].get("value") is not None]
    for op in ops:
        f1 = op["fnir"]["1"]
        t = np.append(t, op["threshold"])
        fpir = np.append(fpir, op["fpir"]["value"])
        fnir = np.append(fnir, f1["value"])
        lo = np.append(lo, f1.get("ci_low", f1["value"]))
        hi = np.append(hi, f1.get("ci_high", f1["value"]))
    order = np.argsort(t, kind="stable")
    t, fpir, fnir, lo, hi = t[order], fpir[order], fnir[order], lo[order], hi[order]
    floor_y = 0.5 / max(ident.get("n_mated_searches", 1), 1)
    ok = (fpir > 0) & np.isfinite(fnir)
    fig, ax = subplots(figsize=(5.0, 4.0))
    ax.fill_between(fpir[ok], np.maximum(lo[ok], floor_y), np.maximum(hi[ok], floor_y), color=COLOURS["fnir"],
                    alpha=0.18, lw=0, label="95% interval (FNIR)")
    ax.plot(fpir[ok], np.maximum(fnir[ok], floor_y), color=COLOURS["fnir"], lw=1.8, label="FNIR at rank 1")
    for op in ops:
        x, y = op["fpir"]["value"], max(op["fnir"]["1"]["value"], floor_y)
        ax.plot(x, y, "o", color=COLOURS["op"], ms=6, zorder=5)
        ax.annotate(f"FPIR target {op['target_fpir']:g}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FPIR (share of non-mated searches returning someone)")
    ax.set_ylabel("FNIR at rank 1 (share of mated searches missed)")
    ax.set_title("Identification DET (threshold varies)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def cmc(ident: dict):
    ranks = np.array(ident["cmc"]["rank"])
    rate = _num(ident["cmc"]["identification_rate"])
    fig, ax = subplots(figsize=(5.0, 4.0))
    ax.plot(ranks, rate, "o-", color=COLOURS["fpir"], ms=3)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (mate within rank)")
    ax.set_title("CMC (no threshold)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lo = np.nanmin(rate) if np.isfinite(rate).any() else 0
    ax.set_ylim(max(0, lo - 0.05), 1.0)
    ax.grid(True, alpha=0.3)
    return fig


def rates_vs_threshold(ident: dict, units: str = "cosine"):
    curve = ident["curve"]
    t = to_user(_num(curve["threshold"]), units)
    fig, ax = subplots(figsize=(5.0, 4.0))
    step = "steps-pre" if units == "neg_euclidean" else "steps-post"
    ax.plot(t, _num(curve["fpir"]), color=COLOURS["fpir"], label="FPIR(T)", drawstyle=step)
    ax.plot(t, _num(curve["fnir_rank1"]), color=COLOURS["fnir"], label="FNIR(rank 1, T)", drawstyle=step)
    for op in ident["operating_points"]:
        thr = op.get("threshold")
        if isinstance(thr, (int, float)) and np.isfinite(thr):
            ax.axvline(float(to_user([thr], units)[0]), color=COLOURS["op"], lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("threshold T, " + score_label(units))
    ax.set_ylabel("error rate")
    ax.set_title("FPIR and FNIR against threshold")
    ax.legend(loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def calibration(cal: dict, units: str = "cosine"):
    bins = cal["bins"]
    mid = to_user([(b["score_low"] + b["score_high"]) / 2 for b in bins], units)
    obs = np.array([b["observed"] for b in bins])
    olo = np.array([b["observed_ci"][0] for b in bins])
    ohi = np.array([b["observed_ci"][1] for b in bins])
    ex = np.array([np.nan if b["explain"] is None else b["explain"] for b in bins], float)
    elo = np.array([np.nan if b["explain_ci"][0] is None else b["explain_ci"][0] for b in bins])
    ehi = np.array([np.nan if b["explain_ci"][1] is None else b["explain_ci"][1] for b in bins])
    ind = np.array([b["independence_model"] for b in bins])
    order = np.argsort(mid)
    fig, ax = subplots(figsize=(5.0, 4.0))
    ax.fill_between(mid[order], elo[order], ehi[order], color=COLOURS["fpir"], alpha=0.2, lw=0)
    held = bool(cal.get("held_out"))
    ax.plot(mid[order], ex[order], "-", color=COLOURS["fpir"],
            label="explain fitted on other people (95% band)" if held else "explain (95% band)")
    ax.plot(mid[order], ind[order], "--", color=COLOURS["impostor"], label="if look-alikes were independent")
    ax.errorbar(mid, obs, yerr=[np.clip(obs - olo, 0, None), np.clip(ohi - obs, 0, None)], fmt="o",
                color=COLOURS["fnir"], ms=5, capsize=3, label="observed (95% CI)")
    ax.set_xlabel("top candidate's " + score_label(units).split(" (")[0] + " (bin middle)")
    ax.set_ylabel("share whose top candidate was the person")
    ax.set_title(f"Calibration on held-out people (half gallery, {cal['gallery_size']:,} people)" if held else
                 f"Calibration at the audited gallery ({cal['gallery_size']:,} people)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return fig


def score_distributions(dist: dict, units: str = "cosine"):
    raw = np.array(dist["edges"], dtype=float)
    fig, ax = subplots(figsize=(5.0, 4.4))
    for key, label, colour in (("impostor", "impostor comparisons", COLOURS["impostor"]),
                               ("best_nonmate", "best non-mate per non-mated search", COLOURS["best"]),
                               ("genuine", "genuine comparisons", COLOURS["genuine"])):
        counts = np.array(dist[key], dtype=float)
        if counts.sum() == 0:
            continue
        cells, cell_edges = dealiased(counts, raw)
        density = cells / counts.sum() / np.diff(cell_edges)
        shown = to_user(cell_edges, units)
        if shown[0] > shown[-1]:
            shown, density = shown[::-1], density[::-1]
        ax.stairs(density, shown, color=colour, label=label, lw=1.4)
    ax.set_xlabel(score_label(units))
    ax.set_ylabel("density")
    ax.set_title("Score distributions")
    # legend below the axes: it never covers a peak
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(True, alpha=0.3)
    return fig


def det_verification(verif: dict):
    """Log-log DET of verification, with the pointwise 95% Clopper-Pearson band of FNMR (from the
    number of genuine comparisons). An FNMR of 0 is drawn at half of one in the genuine comparisons."""
    curve = verif["curve"]
    fmr, fnmr = _num(curve["fmr"]), _num(curve["fnmr"])
    n_gen = int(verif.get("n_genuine") or 0)
    floor_y = 0.5 / max(n_gen, 1)
    fig, ax = subplots(figsize=(5.0, 4.0))
    ok = (fmr > 0) & np.isfinite(fnmr)
    lo, hi = _stored_band(curve, "fnmr_ci_low", "fnmr_ci_high", ok)
    if np.isfinite(lo).any():
        ax.fill_between(fmr[ok], np.maximum(lo, floor_y), np.maximum(hi, floor_y), color=COLOURS["fpir"], alpha=0.18,
                        lw=0, step="post", label="95% interval (FNMR)")
    ax.plot(fmr[ok], np.maximum(fnmr[ok], floor_y), color=COLOURS["fpir"], lw=1.6, drawstyle="steps-post", label="FNMR")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FMR (impostor comparisons matched)")
    ax.set_ylabel("FNMR (genuine comparisons not matched)")
    ax.set_title("Verification DET (threshold varies)")
    ax.grid(True, which="both", alpha=0.3)
    if ok.any():
        ax.legend(loc="lower left")
    return fig

"""Report figures, drawn from ``results.json`` contents only (no metric is computed here)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from auditcore.report import to_data_uri  # noqa: E402,F401  (the shared figure embedding)

COLOURS = {"fnir": "#c0392b", "fpir": "#2c3e80", "genuine": "#1e8449", "impostor": "#7f8c8d",
           "best": "#c0392b", "op": "#555555"}


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _floor_log(values: np.ndarray, floor: float) -> np.ndarray:
    return np.where(values > 0, values, np.nan) if floor is None else np.maximum(values, floor)


def det_identification(ident: dict):
    curve = ident["curve"]
    fpir, fnir = _num(curve["fpir"]), _num(curve["fnir_rank1"])
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ok = fpir > 0
    ax.plot(fpir[ok], fnir[ok], color=COLOURS["fnir"], lw=1.8, drawstyle="steps-post")
    for op in ident["operating_points"]:
        if op.get("threshold") is None or op["fpir"]["value"] in (None, 0):
            continue
        ax.plot(op["fpir"]["value"], op["fnir"]["1"]["value"], "o", color=COLOURS["op"], ms=5)
        ax.annotate(f"FPIR target {op['target_fpir']:g}", (op["fpir"]["value"], op["fnir"]["1"]["value"]),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("FPIR (share of non-mated searches returning someone)")
    ax.set_ylabel("FNIR at rank 1 (share of mated searches missed)")
    ax.set_title("Identification DET (threshold varies)")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def cmc(ident: dict):
    ranks = np.array(ident["cmc"]["rank"])
    rate = _num(ident["cmc"]["identification_rate"])
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ax.plot(ranks, rate, "o-", color=COLOURS["fpir"], ms=3)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (mate within rank, no threshold)")
    ax.set_title("CMC")
    lo = np.nanmin(rate) if np.isfinite(rate).any() else 0
    ax.set_ylim(max(0, lo - 0.05), 1.0)
    ax.grid(True, alpha=0.3)
    return fig


def rates_vs_threshold(ident: dict):
    curve = ident["curve"]
    t = _num(curve["threshold"])
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ax.plot(t, _num(curve["fpir"]), color=COLOURS["fpir"], label="FPIR(T)", drawstyle="steps-post")
    ax.plot(t, _num(curve["fnir_rank1"]), color=COLOURS["fnir"], label="FNIR(rank 1, T)", drawstyle="steps-post")
    for op in ident["operating_points"]:
        thr = op.get("threshold")
        if isinstance(thr, (int, float)) and np.isfinite(thr):
            ax.axvline(thr, color=COLOURS["op"], lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("threshold T (score >= T is a match)")
    ax.set_ylabel("error rate")
    ax.set_title("FPIR and FNIR against threshold")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def score_distributions(dist: dict):
    edges = np.array(dist["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    width = np.diff(edges)
    fig, ax = plt.subplots(figsize=(5.2, 4))
    for key, label, colour in (("impostor", "impostor comparisons", COLOURS["impostor"]),
                               ("best_nonmate", "best non-mate per non-mated search", COLOURS["best"]),
                               ("genuine", "genuine comparisons", COLOURS["genuine"])):
        counts = np.array(dist[key], dtype=float)
        if counts.sum() == 0:
            continue
        density = counts / counts.sum() / width
        ax.plot(centres, density, color=colour, label=label, drawstyle="steps-mid")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.set_title("Score distributions")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def det_verification(verif: dict):
    curve = verif["curve"]
    fmr, fnmr = _num(curve["fmr"]), _num(curve["fnmr"])
    fig, ax = plt.subplots(figsize=(5.2, 4))
    ok = fmr > 0
    ax.plot(fmr[ok], fnmr[ok], color=COLOURS["fpir"], drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlabel("FMR (impostor comparisons matched)")
    ax.set_ylabel("FNMR (genuine comparisons not matched)")
    ax.set_title("Verification DET")
    ax.grid(True, which="both", alpha=0.3)
    return fig

"""The pipeline a user would otherwise assemble: numpy scores + bob.measure (run by bench_vs_bob.py).

    BOB_VENV/bin/python benchmarks/bob_pipeline.py FOLDER --threshold T --out figures.json

Runs in a virtual environment of its own (bob.measure pins numpy < 2) and does not import
faceaudit. On the evaluation set that bench_vs_bob.py writes (``templates.npy``,
``manifest.parquet``, ``protocol.parquet``) it does what the bob.measure documentation shows:

1. load the templates (``numpy.load``) and the manifest and protocol (``pandas.read_parquet``);
2. normalise the probe and gallery rows (float32) and score every pair with one float32 matrix
   product (cosine similarity, ``S = P @ G.T``);
3. split the scores by the manifest's subjects into genuine (``positives``) and impostor
   (``negatives``) arrays, and into bob's open-set ``cmc_scores`` list: one
   ``(negatives, positives)`` pair per probe, positives empty for a probe with no mate;
4. call bob.measure: ``detection_identification_rate(cmc_scores, T)`` (DIR at rank 1),
   ``false_alarm_rate(cmc_scores, T)`` (FPIR), ``cmc`` on the mated probes, ``farfrr(negatives,
   positives, T)`` (verification FAR/FRR) and ``eer_threshold`` + ``farfrr`` at it (the body of
   ``bob.measure.eer``, keeping the threshold).

It writes the figures, the error counts behind them, and per step the wall time and the peak
resident memory so far (``getrusage``) to ``--out``. If an allocation fails (for example under a
memory cap set by the parent) it writes the step it reached and exits with status 3.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

T0 = time.perf_counter()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    steps: list[dict] = []
    out: dict = {"steps": steps}
    last = [T0]

    def step(name: str) -> None:
        now = time.perf_counter()
        steps.append({"step": name, "s": round(now - last[0], 3),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
        last[0] = now

    current = "import"
    try:
        import numpy as np
        import pandas as pd
        import bob.measure
        from importlib.metadata import version
        out["versions"] = {"bob.measure": version("bob.measure"), "numpy": np.__version__,
                           "python": sys.version.split()[0]}
        try:
            import threadpoolctl
            out["blas"] = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')} x{i['num_threads']}"
                           for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        except ImportError:
            out["blas"] = ["unknown (threadpoolctl not installed)"]
        step(current)

        current = "load"
        folder = args.folder.rstrip("/")
        x = np.load(f"{folder}/templates.npy")
        manifest = pd.read_parquet(f"{folder}/manifest.parquet")
        protocol = pd.read_parquet(f"{folder}/protocol.parquet")
        row = pd.Series(np.arange(len(manifest)), index=manifest["template_id"].to_numpy())
        gal = row[protocol.loc[protocol["role"] == "gallery", "template_id"]].to_numpy()
        prb = row[protocol.loc[protocol["role"] == "probe", "template_id"]].to_numpy()
        subject_code = pd.factorize(manifest["subject_id"])[0]
        step(current)

        current = "scores"
        G = x[gal]
        G /= np.linalg.norm(G, axis=1, keepdims=True)
        P = x[prb]
        P /= np.linalg.norm(P, axis=1, keepdims=True)
        S = P @ G.T  # float32, probes x gallery
        step(current)

        current = "split"
        mate = subject_code[prb][:, None] == subject_code[gal][None, :]
        positives = S[mate]
        negatives = S[~mate]
        cmc_scores = [(S[i][~mate[i]], S[i][mate[i]]) for i in range(S.shape[0])]
        step(current)

        T = args.threshold
        current = "bob.measure DIR + FPIR"
        mated = [pair for pair in cmc_scores if pair[1].size]
        n_mated, n_nonmated = len(mated), len(cmc_scores) - len(mated)
        dir_ = bob.measure.detection_identification_rate(cmc_scores, T, rank=1)
        fpir = bob.measure.false_alarm_rate(cmc_scores, T)
        step(current)

        current = "bob.measure CMC"
        cmc = bob.measure.cmc(mated)
        step(current)

        current = "bob.measure FAR/FRR"
        far, frr = bob.measure.farfrr(negatives, positives, T)
        step(current)

        current = "bob.measure EER"
        eer_t = float(bob.measure.eer_threshold(negatives, positives))
        eer_far, eer_frr = bob.measure.farfrr(negatives, positives, eer_t)
        step(current)

        n_neg, n_pos = int(negatives.size), int(positives.size)
        out["figures"] = {
            "threshold": T, "n_mated": n_mated, "n_nonmated": n_nonmated,
            "n_genuine": n_pos, "n_impostor": n_neg,
            "dir_rank1": float(dir_), "dir_misses": n_mated - round(dir_ * n_mated),
            "fpir": float(fpir), "fpir_errors": round(fpir * n_nonmated),
            "cmc": [float(v) for v in cmc[:50]],
            "cmc_misses": [n_mated - round(v * n_mated) for v in cmc[:50]],
            "far": float(far), "far_errors": round(far * n_neg),
            "frr": float(frr), "frr_errors": round(frr * n_pos),
            "eer": float((eer_far + eer_frr) / 2), "eer_threshold": eer_t,
            "eer_far": float(eer_far), "eer_far_errors": round(eer_far * n_neg),
            "eer_frr": float(eer_frr), "eer_frr_errors": round(eer_frr * n_pos),
        }
        status = 0
    except MemoryError as e:
        step(current + " (failed)")
        out["error"] = f"MemoryError in step '{current}': {e}"
        status = 3
    out["wall_s_inside"] = round(time.perf_counter() - T0, 3)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``faceaudit claim``: a vendor's claims tested against a results folder (registered, guarded, on the
app in :mod:`faceaudit.cli`). The rules are in :mod:`faceaudit.analyses.vendor_claims` and docs/claims.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def claim(
    results: Path = typer.Argument(..., help="A results folder from `faceaudit audit` or `faceaudit audit-lists`."),
    fpir: List[str] = typer.Option([], help="Claim: FPIR at most this (0.001, 0.1%, 1/1000, '1 in 1000') at --threshold. Repeatable."),
    fnir: List[str] = typer.Option([], help="Claim: FNIR at --rank at most this, at --at-fpir or --threshold. Repeatable."),
    fmr: List[str] = typer.Option([], help="Claim: FMR (1:1) at most this at --threshold. Repeatable."),
    fnmr: List[str] = typer.Option([], help="Claim: FNMR (1:1) at most this at --threshold or --at-fmr. Repeatable."),
    rank1: List[str] = typer.Option([], "--rank1", help="Claim: rank-1 identification rate (no threshold) at least this. Repeatable."),
    threshold: Optional[str] = typer.Option(None, help="The threshold the claims are stated at, in the audit's score units."),
    distance: Optional[str] = typer.Option(None, help="For a distance audit (score neg_euclidean): the distance threshold."),
    at_fpir: Optional[str] = typer.Option(None, help="FNIR claims: at the operating point for this FPIR."),
    at_fmr: Optional[str] = typer.Option(None, help="FNMR claims: at the threshold for this FMR."),
    rank: int = typer.Option(1, help="FNIR claims: the rank (1 = the mate must be the top candidate)."),
    group: Optional[str] = typer.Option(None, help="One verdict per group of this --group-by column; supported overall only if for every group."),
    operational_gallery_size: Optional[str] = typer.Option(None, help="The gallery size the claim is for (1e6, 1,000,000): checked against 90% (NIST SP 800-63A-4); below it FPIR is tested against the scale band."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one entry per claim."),
    out: Optional[Path] = typer.Option(None, help="Also write a small claims report folder (atomically): claims.json, claims.html."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out folder written by faceaudit."),
) -> None:
    """Test a vendor's claims: supported, contradicted or not shown, and how large a test would settle it.

    Supported: the audit's whole interval for the figure is on the claimed side; contradicted: all of
    it on the other side; not shown: otherwise. Exit 0 whatever the verdicts (read them, or --json).
    """
    from auditcore.serialize import to_json
    from faceaudit.analyses.vendor_claims import evaluate, make_claims, parse_number
    claims = make_claims(fpir=fpir, fnir=fnir, fmr=fmr, fnmr=fnmr, rank1=rank1, threshold=threshold,
                         distance=distance, at_fpir=at_fpir, at_fmr=at_fmr, rank=rank)
    n_op = None if operational_gallery_size is None else parse_number(operational_gallery_size,
                                                                       "--operational-gallery-size")
    if out is not None:
        from auditcore.outdir import check_target
        check_target(out, overwrite=overwrite)
    result = evaluate(results, claims, group=group, operational_gallery_size=n_op)
    if out is not None:
        from faceaudit.analyses.vendor_claims import write_claims
        write_claims(result, out, overwrite=overwrite)
    if as_json:
        print(json.dumps(to_json(result["claims"]), indent=1, allow_nan=False))
    else:
        sysinfo = result["system"]
        name = " ".join(x for x in (sysinfo.get("name"), sysinfo.get("version")) if x)
        print(f"claims tested against {results}{' (' + name + ')' if name else ''}:")
        for entry in result["claims"]:
            print(f"- {entry['sentence']}")
    if out is not None:
        print(f"claims report: {out / 'claims.html'}")

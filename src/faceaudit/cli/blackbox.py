"""Black-box commands: ``import-lists``, ``audit-lists`` and ``query`` (registered in :mod:`faceaudit.cli`)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from auditcore.cli import console
from auditcore.errors import InputError
from faceaudit.cli.audit import count


@contextmanager
def _progress(label: str) -> Iterator:
    """A progress bar (count, rate, ETA) fed by ``progress(done, total)``; silent when not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _write_file_atomically(path: Path, overwrite: bool, writer) -> None:
    if path.exists() and not overwrite:
        raise InputError("file exists (use --overwrite to replace it)", path)
    if path.exists() and not path.is_file():
        raise InputError("output path exists and is not a file", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_lists(
    responses: Path = typer.Argument(..., help="Saved responses, JSON Lines: one search per line, "
                                               "{search_id, probe_id, request: {...}, response: {...}}."),
    adapter: str = typer.Option(..., help="rekognition, azure, nist, or an adapter .toml file."),
    out: Path = typer.Option(..., help="Candidate lists to write: .parquet, .csv or .jsonl."),
    list_length: Optional[int] = typer.Option(None, help="List length asked for, where the requests do not say."),
    threshold: Optional[float] = typer.Option(None, help="System threshold applied, where the requests do not say."),
    id_map: Optional[Path] = typer.Option(None, help="CSV system_id,template_id translating the system's ids."),
    system_version: Optional[str] = typer.Option(None, help="System version, where the responses do not say."),
    overwrite: bool = typer.Option(False, help="Replace an existing file."),
) -> None:
    """Read a search service's saved responses into candidate lists in faceaudit's schema."""
    from faceaudit.blackbox.adapters import import_responses, read_id_map
    from faceaudit.data.candidates import write_lists
    mapping = read_id_map(id_map) if id_map is not None else None
    lists = import_responses(responses, adapter, list_length=list_length, threshold=threshold,
                             id_map=mapping, system_version=system_version)
    _write_file_atomically(out, overwrite, lambda p: write_lists(lists, p))
    print(f"{lists.n_searches:,} searches, {len(lists.candidates):,} candidates -> {out}")
    print(f"next: faceaudit audit-lists --lists {out} --manifest MANIFEST --protocol PROTOCOL --out RESULTS")


def audit_lists(
    lists: Path = typer.Option(..., help="Candidate lists in faceaudit's schema (.parquet, .csv, .jsonl)."),
    manifest: Path = typer.Option(..., help="Manifest: template_id, subject_id (and attribute columns)."),
    protocol: Path = typer.Option(..., help="Protocol file: template_id, role; role=gallery rows are the enrolled templates."),
    out: Path = typer.Option(..., help="Results folder to write (atomically)."),
    fpir: List[float] = typer.Option([0.1, 0.01, 0.001], help="Target FPIR operating points (repeatable)."),
    threshold: List[float] = typer.Option([], help="Also report at these thresholds, on the system's scale (repeatable)."),
    group_by: List[str] = typer.Option([], help="Demographics: manifest column(s) to group by; 'a*b' for a combination."),
    min_group_size: int = typer.Option(30, parser=count(1), help="Demographics: groups with fewer searches are shown greyed."),
    scale: bool = typer.Option(False, help="Also model FPIR against gallery size from the top of each list."),
    system_name: Optional[str] = typer.Option(None, help="The system under test's name, recorded in results.json (provenance.system)."),
    system_version: Optional[str] = typer.Option(None, help="The system's version, recorded in results.json; must agree with "
                                                            "the version the lists record (system_version column), if any."),
    overwrite: bool = typer.Option(False, help="Replace an existing results folder."),
) -> None:
    """Audit a system from the candidate lists it returned (what is not observed is reported as such)."""
    options = dict(locals())  # every option's value, defaults included (provenance)
    from auditcore.provenance import command_from_context
    bb = run_audit_lists_command(options, command_from_context("faceaudit"))
    _print_lists_summary(bb.results, Path(out))


def run_audit_lists_command(options: dict, argv: list[str] | None):
    """The body of ``faceaudit audit-lists`` from its options (``faceaudit verify`` re-runs a
    recorded black-box audit through here); prints nothing on stdout."""
    from auditcore.outdir import check_target
    from auditcore.provenance import collect, inputs_from
    from auditcore.validation import finite
    from faceaudit.blackbox.audit import audit_lists as run
    from faceaudit.blackbox.audit import write_blackbox_results
    from faceaudit.data.candidates import read_lists
    from faceaudit.engine.observed import read_gallery, read_manifest
    o = dict(options)
    out = Path(o["out"])
    finite("--fpir", list(o["fpir"]))
    finite("--threshold", list(o["threshold"]))
    check_target(out, overwrite=o["overwrite"])
    provenance = collect(argv, o, inputs_from([("candidate lists", o["lists"]), ("manifest", o["manifest"]),
                                              ("protocol", o["protocol"])]),
                         system={"name": o["system_name"], "version": o["system_version"]})
    with _progress("reading candidate lists") as progress:
        progress(0, 3)
        man = read_manifest(o["manifest"])
        gallery = read_gallery(o["protocol"], man)
        progress(1, 3)
        lists = read_lists(o["lists"])
        progress(2, 3)
    bb = run(lists, man, gallery, fpir_targets=list(o["fpir"]), thresholds=list(o["threshold"]),
             system_name=o["system_name"], system_version=o["system_version"], provenance=provenance)
    if o["group_by"]:
        from faceaudit.blackbox.groups import add_demographics_from_lists
        add_demographics_from_lists(bb, list(o["group_by"]), min_group_size=o["min_group_size"])
    if o["scale"]:
        from faceaudit.blackbox.scale import add_scale_from_lists
        add_scale_from_lists(bb)
    write_blackbox_results(bb, out, overwrite=o["overwrite"])
    return bb


def _print_lists_summary(results: dict, out: Path) -> None:
    """The black-box audit's figures in lines, thousands separated; the system and its version,
    the score's scale and any warning."""
    prov = results.get("provenance") or {}
    system = prov.get("system") or {}
    named = " ".join(str(v) for v in (system.get("name"), system.get("version")) if v)
    scales = [s.get("score_scale") for s in (results.get("blackbox") or {}).get("systems", []) if s.get("score_scale")]
    print("score: the system's own" + (f" (scale {', '.join(scales)})" if scales else "")
          + ": a match at or above the threshold" + (f"; system: {named}" if named else ""))
    ident = results["identification"]
    for op in ident["operating_points"]:
        if op.get("threshold") is None:
            print(f"FPIR target {op['target_fpir']:g}: not measurable from these lists"
                  + (f" ({op['not_measurable']})" if op.get("not_measurable") else ""))
            continue
        f, m = op["fpir"], op["fnir"]["1"]
        fn = "not measurable" if m.get("value") is None else f"{m['value']:.4g} ({m['errors']:,}/{m['trials']:,})"
        print(f"FPIR target {op['target_fpir']:g}: threshold {op['threshold']:.6g}, FPIR {f['value']:.4g} "
              f"({f['errors']:,}/{f['trials']:,}), FNIR@1 {fn}")
    sys_point = ident.get("at_system_threshold")
    if sys_point:
        f, m = sys_point["fpir"], sys_point["fnir"]["1"]
        print(f"at the system's own threshold: FPIR {f['value']:.4g} ({f['errors']:,}/{f['trials']:,})"
              + ("" if m.get("value") is None else f", FNIR@1 {m['value']:.4g} ({m['errors']:,}/{m['trials']:,})"))
    for warning in results.get("warnings") or []:
        print(f"warning: {warning.get('text')}")
    print(f"report: {out / 'report.html'}")


def query(
    endpoint: str = typer.Option(..., help="The system under test: the ONE base URL every request goes to."),
    adapter: Path = typer.Option(..., help="Adapter file (TOML): requests, where candidates are, score scale."),
    manifest: Path = typer.Option(..., help="Manifest: template_id, subject_id (image for image systems)."),
    protocol: Path = typer.Option(..., help="Protocol file: template_id, role=gallery|probe."),
    out: Path = typer.Option(..., help="Folder to write: lists.parquet, lists.jsonl, requests.jsonl, query.json."),
    templates: Optional[Path] = typer.Option(None, help="Templates (.npy), for systems that take templates ({{template}})."),
    images_root: Optional[Path] = typer.Option(None, help="Folder that the manifest's image paths start from and must "
                                                          "stay inside (default: the manifest's folder)."),
    allow_images_outside: bool = typer.Option(False, "--allow-images-outside",
                                              help="Also read and send image files the manifest names by absolute "
                                                   "path or outside the images folder (refused by default)."),
    journal: Optional[Path] = typer.Option(None, help="Journal file (default OUT.journal.jsonl beside OUT); rerun to resume."),
    enrol: bool = typer.Option(True, help="Enrol the gallery first (if the adapter has [enrol])."),
    concurrency: int = typer.Option(4, min=1, help="Requests in flight at once."),
    rate: Optional[float] = typer.Option(None, help="At most this many requests per second."),
    timeout: float = typer.Option(30.0, help="Seconds before a request counts as timed out (and is retried): "
                                             "connecting, sending and the whole answer, in all."),
    max_attempts: int = typer.Option(6, min=1, help="Attempts per request (timeouts, 429, 5xx, unparseable answers)."),
    backoff: float = typer.Option(0.5, help="First retry delay, seconds; doubles each attempt (with jitter)."),
    ca_bundle: Optional[Path] = typer.Option(None, help="CA certificates to verify the endpoint's TLS certificate with."),
    allow_plain_http: bool = typer.Option(False, "--allow-plain-http",
                                          help="Send the adapter's credentials over plain http:// to a host that is "
                                               "not this machine (refused by default: use https)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder."),
) -> None:
    """Send the evaluation set to a system under test over HTTP and collect its candidate lists."""
    from faceaudit.blackbox.query import QueryConfig, load_adapter, run_query
    spec = load_adapter(adapter)
    config = QueryConfig(endpoint, concurrency=concurrency, rate=rate, timeout_s=timeout,
                         max_attempts=max_attempts, backoff_s=backoff,
                         ca_bundle=None if ca_bundle is None else str(ca_bundle), allow_plain_http=allow_plain_http)
    with _progress("querying") as progress:
        summary = run_query(spec, endpoint, manifest, protocol, out, templates_path=templates,
                            images_root=images_root, journal_path=journal, enrol=enrol, overwrite=overwrite,
                            config=config, progress=progress, allow_images_outside=allow_images_outside,
                            announce=lambda line: console.print(line, highlight=False, soft_wrap=True))
    print(f"{summary['searches']:,} searches collected ({summary['requests_this_run']:,} requests this run, "
          f"{summary['retries_this_run']:,} retried) -> {out}")
    print(f"next: faceaudit audit-lists --lists {out / 'lists.parquet'} --manifest {manifest} --protocol {protocol} --out RESULTS")

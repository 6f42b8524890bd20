"""``faceaudit embed``: images to templates (registered, guarded, on the app in :mod:`faceaudit.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def embed(
    source: Path = typer.Argument(..., help="A folder of subject sub-folders, or a manifest (.csv/.parquet) "
                                            "with image and subject_id columns (other columns are carried through)."),
    out: Path = typer.Option(..., help="Output folder: templates.npy, manifest.csv, failures.csv, embed.json."),
    model: str = typer.Option("dlib", help="dlib (reference: dlib's own pipeline, HOG + 5 landmarks + ResNet, 128-d), "
                                           "sface (OpenCV's YuNet + SFace, 128-d, as OpenCV runs them) or onnx."),
    upsample: int = typer.Option(1, help="dlib, onnx: HOG detector upsampling (dlib's upsample_num_times; 1 as in "
                                         "dlib's examples; 0 misses faces under ~80 px, 2 finds them down to ~20 px)."),
    fast_detect: bool = typer.Option(False, "--fast-detect", help="dlib, onnx: try upsampling 0 first, then up to "
                                     "--upsample (faster detection; NOT dlib's pipeline: templates differ)."),
    jitter: int = typer.Option(0, help="dlib: average over this many jittered crops (dlib's num_jitters; ~N times slower)."),
    yunet_threshold: float = typer.Option(0.9, help="sface: YuNet's minimum face score (0.9 as OpenCV's samples)."),
    onnx_path: Optional[Path] = typer.Option(None, help="onnx: the embedding model file."),
    input_size: int = typer.Option(112, help="onnx: square input size in pixels."),
    channel_order: str = typer.Option("RGB", help="onnx: RGB or BGR."),
    mean: float = typer.Option(127.5, help="onnx: subtracted from each pixel value (0..255)."),
    std: float = typer.Option(127.5, help="onnx: then divided by this."),
    layout: str = typer.Option("NCHW", help="onnx: NCHW or NHWC."),
    workers: int = typer.Option(2, min=1, help="Worker processes."),
    cache: bool = typer.Option(True, help="Reuse and store templates in the cache ($FACEAUDIT_CACHE or ~/.cache/faceaudit)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Cache folder (overrides $FACEAUDIT_CACHE)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder."),
) -> None:
    """Enrol images: detect, align and embed each face; record every failure to enrol."""
    from faceaudit.models import registry
    from faceaudit.models.embed import DEFAULT, embed_images
    options = registry.options_for(model, dict(
        upsample=upsample, fast_detect=fast_detect, jitter=jitter, yunet_threshold=yunet_threshold,
        onnx_path=onnx_path, input_size=input_size, channel_order=channel_order, mean=mean, std=std, layout=layout))
    summary = embed_images(source, model, out, model_options=options, workers=workers,
                           cache_dir=(cache_dir or DEFAULT) if cache else None, overwrite=overwrite)
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["failure_reasons"].items()) or "none"
    print(f"enrolled {summary['enrolled']:,} of {summary['images']:,} images; "
          f"failure to enrol (FTE) {summary['fte_rate']:.2%} ({summary['failed']:,}; {reasons})")
    print(f"{summary['seconds']:.1f} s, {summary['from_cache']:,} from cache, {summary['embedded']:,} embedded "
          f"with {summary['model']['name']} ({summary['model']['version']})")
    score = registry.get(model).score
    print(f"wrote {out}/ (templates.npy, manifest.csv, failures.csv, embed.json); next: "
          f"faceaudit audit --evalset {out} --score {score} --out RESULTS")

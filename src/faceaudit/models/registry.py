"""The model registry: every face model ``faceaudit embed --model NAME`` can use, by name.

Built-in names (``dlib``, ``sface``, ``onnx``) plus any adapter another installed package
declares in the entry-point group ``faceaudit.models``, so that a third party ships an adapter
as its own package without editing faceaudit::

    # the other package's pyproject.toml
    [project.entry-points."faceaudit.models"]
    arcface = "arcface_faceaudit:ArcFaceAdapter"

The entry point names a :class:`~faceaudit.models.base.ModelAdapter` subclass (or any callable
returning one); its class attribute ``score`` says which comparison score its templates are
made for (``"cosine"`` unless it says otherwise). Only installed packages can add names: a
model *file* (ONNX weights, say) never names code to run. A built-in name cannot be taken over
by a plug-in (the built-in wins, and the plug-in is listed under ``shadowed``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from auditcore.errors import InputError
from faceaudit.models.base import ModelAdapter

ENTRY_POINT_GROUP = "faceaudit.models"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: where its adapter is, the score its templates use, and which of
    ``faceaudit embed``'s options it takes (adapter keyword -> command-line option name)."""

    name: str
    target: str
    score: str = "cosine"
    options: dict = field(default_factory=dict)
    source: str = "built-in"

    def adapter_class(self):
        """Import and return the adapter (class or factory) this entry names."""
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


_DETECT = {"upsample": "upsample", "fast_detect": "fast_detect"}

BUILTIN: dict[str, ModelEntry] = {
    "dlib": ModelEntry("dlib", "faceaudit.models.dlib_adapter:DlibAdapter", "neg_euclidean",
                       {**_DETECT, "jitter": "jitter"}),
    "sface": ModelEntry("sface", "faceaudit.models.sface_adapter:SFaceAdapter", "cosine",
                        {"score_threshold": "yunet_threshold"}),
    "onnx": ModelEntry("onnx", "faceaudit.models.onnx_adapter:OnnxAdapter", "cosine",
                       {"onnx_path": "onnx_path", "input_size": "input_size", "channel_order": "channel_order",
                        "mean": "mean", "std": "std", "layout": "layout", **_DETECT}),
}


def _plugins() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def models() -> dict[str, ModelEntry]:
    """Every usable model name: the built-ins, then installed plug-ins (in name order)."""
    found = dict(BUILTIN)
    for ep in _plugins():
        if ep.name not in found:
            dist = getattr(ep, "dist", None)
            found[ep.name] = ModelEntry(ep.name, ep.value, source=f"plug-in ({dist.name if dist else 'entry point'})")
    return found


def shadowed() -> list[str]:
    """Plug-in names ignored because a built-in has the same name."""
    return [ep.name for ep in _plugins() if ep.name in BUILTIN]


def _choices(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def get(model: str) -> ModelEntry:
    """The registered entry for ``model`` (InputError naming the choices if there is none)."""
    known = models()
    if model not in known:
        raise InputError(f"unknown model '{model}' (choose {_choices(known)})")
    entry = known[model]
    if entry.source != "built-in":
        try:
            score = getattr(entry.adapter_class(), "score", "cosine")
        except Exception as exc:  # a broken plug-in is the plug-in's fault: one line, not a traceback
            raise InputError(f"model '{model}' ({entry.source}, {entry.target}) cannot be loaded: "
                             f"{exc.__class__.__name__}: {exc}") from None
        if score not in ("cosine", "neg_euclidean"):
            raise InputError(f"model '{model}' ({entry.source}) declares score {score!r}; "
                             "expected cosine or neg_euclidean")
        entry = ModelEntry(entry.name, entry.target, score, entry.options, entry.source)
    return entry


def options_for(model: str, values: dict[str, Any]) -> dict:
    """The adapter keyword arguments that apply to ``model``, from the command line's ``values``
    (by option name); the others are ignored. A path becomes a string (or None)."""
    out = {}
    for keyword, option in get(model).options.items():
        value = values.get(option)
        out[keyword] = str(value) if option == "onnx_path" and value is not None else value
    return out


def load_adapter(model: str = "dlib", **options: Any) -> ModelAdapter:
    """An adapter for ``model``: ``dlib`` (the reference model), ``sface`` (OpenCV's SFace),
    ``onnx`` (``onnx_path=...``) or an installed plug-in's name (see :func:`models`)."""
    return get(model).adapter_class()(**options)

"""Choosing a landmark backend by name: a picklable spec that each worker process builds."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exprgan.preprocessing.landmarks import LandmarkBackend

# name -> "module:Class"; imported only when used, so a missing package hurts only its backend
BACKENDS: dict[str, str] = {
    "face_alignment": "exprgan.preprocessing.face_alignment_backend:FaceAlignmentBackend",
    "dlib": "exprgan.preprocessing.dlib_backend:DlibBackend",
}


def resolve_backend(name: str) -> type:
    """The backend class for a registered ``name`` or a ``"package.module:Class"`` path."""
    target = BACKENDS.get(name, name)
    if ":" not in target:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown landmark backend {name!r}: use one of {known} or 'package.module:Class'")
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class BackendSpec:
    """A backend by name and constructor options; picklable, so worker processes build their own.

    Args:
        name: ``"face_alignment"``, ``"dlib"`` or ``"package.module:Class"``.
        options: keyword arguments of the backend's constructor.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def prepared(self) -> BackendSpec:
        """This spec with its weights located (or fetched) once, before any worker starts.

        A backend class may define ``prepare(**options) -> dict`` that checks its weights files
        and returns the options with explicit paths; it raises ``BackendWeightsError`` early.
        """
        prepare = getattr(resolve_backend(self.name), "prepare", None)
        return BackendSpec(self.name, dict(self.options if prepare is None else prepare(**self.options)))

    def build(self) -> LandmarkBackend:
        """A new backend instance (loads its weights)."""
        return resolve_backend(self.name)(**self.options)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly ``{"name": ..., "options": ...}`` for ``meta.json``."""
        return {"name": self.name, "options": {key: _jsonable(value) for key, value in sorted(self.options.items())}}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)

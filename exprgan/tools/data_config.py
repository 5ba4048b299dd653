"""A DataModule from the ``data:`` section of experiment configs, as ``exprgan fit`` would build it.

The tools (``exprgan fid``, ``exprgan synthesize``) take the same ``--config`` files as
training, plus ``--data.*`` overrides in LightningCLI's syntax; everything outside ``data:``
(trainer, model) is ignored. Parsing is jsonargparse's, so ``class_path`` / ``init_args``,
composed configs and overrides behave exactly as on the training command line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentParser

from exprgan.datamodules.base import PairDataModule


def data_section(config: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``data:`` section of a YAML config (``None`` when it has none).

    Raises:
        FileNotFoundError: no such config file.
    """
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"no such config file: {path}")
    content = yaml.safe_load(path.read_text()) or {}
    if not isinstance(content, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping")
    return content.get("data")


def load_datamodule(configs: Sequence[str | os.PathLike[str]], overrides: Sequence[str] = ()) -> PairDataModule:
    """The DataModule of ``configs`` (later ones override earlier ones) and ``--data.*`` overrides.

    Args:
        configs: YAML files, e.g. ``["experiments/multipie.yaml"]``; only their ``data:``
            sections are read.
        overrides: LightningCLI-style arguments, e.g. ``["--data.root=/data/mpie",
            "--data.init_args.fold", "2"]``.

    Raises:
        ValueError: no config has a ``data:`` section, or an override is not a ``--data`` one.
    """
    sections = [section for section in (data_section(c) for c in configs) if section is not None]
    if not sections:
        raise ValueError(f"no 'data:' section in {[str(c) for c in configs]}")
    for arg in overrides:
        if arg.startswith("-") and not arg.startswith("--data"):
            raise ValueError(f"unknown option {arg!r}: only --data.* overrides are accepted besides the tool's own")
    parser = ArgumentParser(prog="exprgan", exit_on_error=False)
    parser.add_subclass_arguments(PairDataModule, "data", required=True)
    args: list[str] = []
    for section in sections:
        args += ["--data", yaml.safe_dump(section)]
    namespace = parser.parse_args([*args, *overrides])
    return parser.instantiate(namespace).data

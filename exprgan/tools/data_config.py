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

import yaml
from jsonargparse import ArgumentParser

from exprgan.datamodules.base import PairDataModule


def load_datamodule(configs: Sequence[str | os.PathLike[str]], overrides: Sequence[str] = ()) -> PairDataModule:
    """The DataModule of ``configs`` (later ones override earlier ones) and ``--data.*`` overrides.

    Args:
        configs: YAML files, e.g. ``["experiments/multipie.yaml"]``; only their ``data:``
            sections are read.
        overrides: LightningCLI-style arguments, e.g. ``["--data.root=/data/mpie",
            "--data.init_args.fold", "2"]``.

    Raises:
        FileNotFoundError: no such config file.
        ValueError: a config is not a mapping, none has a ``data:`` section, or an override is
            not a ``--data`` one.
    """
    args: list[str] = []
    for path in map(Path, configs):
        if not path.is_file():
            raise FileNotFoundError(f"no such config file: {path}")
        content = yaml.safe_load(path.read_text()) or {}
        if not isinstance(content, dict):
            raise ValueError(f"{path}: a config must be a YAML mapping")
        if content.get("data") is not None:
            args += ["--data", yaml.safe_dump(content["data"])]
    if not args:
        raise ValueError(f"no 'data:' section in {[str(c) for c in configs]}")
    for arg in overrides:
        if arg.startswith("-") and not arg.startswith("--data"):
            raise ValueError(f"unknown option {arg!r}: only --data.* overrides are accepted besides the tool's own")
    parser = ArgumentParser(prog="exprgan", exit_on_error=False)
    parser.add_subclass_arguments(PairDataModule, "data", required=True)
    return parser.instantiate(parser.parse_args([*args, *overrides])).data

"""``exprgan report``: finished runs gathered into tables shaped like the paper's Tables II-VII.

A *run* is a folder holding ``results/test_results.json`` (what ``exprgan test`` writes into
the logger's folder) or ``test_results.json`` itself; the run's ``config.yaml`` (saved by
LightningCLI) is read when present. Every ``RUN_DIR`` given is searched recursively, so one
folder of runs (or of cross-validation folds) gives one row per run.

Tables (accuracies in percent, best of each column in bold in markdown):

- **per pose** (Tables II and VII, Multi-PIE): one column per pose, then ``average``, the
  accuracy over all test images (the paper's "Average");
- **per class** (Tables III-IV give the overall accuracy; Fig. 5-7 the per-class values):
  one column per class, then ``mean class`` (the mean of the per-class accuracies) and
  ``accuracy`` (over all test images);
- **settings**: the model options in which the runs' configs differ (the ablation switches
  of Table VII, the backbone, ...), when configs were found.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from exprgan.evaluation.tables import markdown_table

RESULTS_FILE = "test_results.json"
CONFIG_FILE = "config.yaml"


@dataclass
class RunResult:
    """One finished run.

    Attributes:
        name: its row name.
        directory: the run folder.
        results: the contents of its ``test_results.json`` (accuracies as fractions).
        config: its LightningCLI config, when one was found.
    """

    name: str
    directory: Path
    results: dict[str, Any]
    config: dict[str, Any] | None = field(default=None, repr=False)


def run_directory(results_file: Path) -> Path:
    """The run folder of a ``test_results.json``: the folder above ``results/``, else its own."""
    folder = results_file.parent
    return folder.parent if folder.name == "results" else folder


def find_config(directory: Path) -> Path | None:
    """The run's ``config.yaml``: in its folder, else the newest one below it (e.g. a logger's version_k/)."""
    direct = directory / CONFIG_FILE
    if direct.is_file():
        return direct
    found = sorted(directory.rglob(CONFIG_FILE), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def load_run(directory: str | os.PathLike[str], name: str | None = None) -> RunResult:
    """The run in ``directory`` (its ``results/test_results.json`` or ``test_results.json``).

    Raises:
        FileNotFoundError: no results file there.
    """
    directory = Path(directory)
    for candidate in (directory / "results" / RESULTS_FILE, directory / RESULTS_FILE):
        if candidate.is_file():
            break
    else:
        raise FileNotFoundError(f"no {RESULTS_FILE} in {directory} or {directory / 'results'}: has it been tested?")
    config_path = find_config(run_directory(candidate))
    config = yaml.safe_load(config_path.read_text()) if config_path is not None else None
    return RunResult(
        name or run_directory(candidate).name, run_directory(candidate), json.loads(candidate.read_text()), config
    )


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[RunResult]:
    """Every run under ``paths``, in the order given (runs below one path: sorted by folder).

    A run's name is its folder relative to the path given (the path's own name when the
    path is the run itself).

    Raises:
        FileNotFoundError: a path holds no ``test_results.json``.
    """
    runs: list[RunResult] = []
    for path in paths:
        root = Path(path)
        files = sorted(root.rglob(RESULTS_FILE)) if root.is_dir() else []
        if not files:
            raise FileNotFoundError(f"no {RESULTS_FILE} under {root}: has the run been tested (exprgan test)?")
        for file in files:
            directory = run_directory(file)
            relative = directory.relative_to(root) if directory != root and root in directory.parents else None
            name = relative.as_posix() if relative is not None else (directory.name or str(directory))
            runs.append(load_run(directory, name))
    return runs


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100.0 * float(value)


def _unique_index(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def pose_table(runs: Sequence[RunResult]) -> pd.DataFrame | None:
    """Per-pose accuracy (%) of every run with poses, then ``average`` (Tables II, VII); None without poses."""
    with_poses = [run for run in runs if run.results.get("per_pose")]
    if not with_poses:
        return None
    rows = []
    for run in with_poses:
        poses = {str(k): _percent(v) for k, v in run.results["per_pose"].items() if k != "mean"}
        rows.append({**poses, "average": _percent(run.results.get("accuracy"))})
    table = pd.DataFrame(rows, index=_unique_index([run.name for run in with_poses]))
    poses = [c for c in table.columns if c != "average"]
    try:
        poses = sorted(poses, key=float)  # "-30", "-15", "0", "+15", "+30"
    except ValueError:
        pass
    table = table[[*poses, "average"]]
    table.index.name = "run"
    return table


def class_table(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Per-class accuracy (%), ``mean class`` and overall ``accuracy`` of every run (Tables III-IV)."""
    rows, classes = [], []
    for run in runs:
        per_class = run.results.get("per_class") or {}
        classes += [c for c in run.results.get("class_names", per_class) if c not in classes]
        rows.append(
            {
                **{c: _percent(v) for c, v in per_class.items()},
                "mean class": _percent(run.results.get("mean_class_accuracy")),
                "accuracy": _percent(run.results.get("accuracy")),
            }
        )
    table = pd.DataFrame(
        rows, index=_unique_index([run.name for run in runs]), columns=[*classes, "mean class", "accuracy"]
    )
    table.index.name = "run"
    return table.astype(float)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def settings_table(runs: Sequence[RunResult]) -> pd.DataFrame | None:
    """The model and data options in which the runs' configs differ (Table VII's ablation switches).

    Only runs with a config are listed; ``data`` is the DataModule class. None when fewer
    than two configs were found or they agree on everything.
    """
    with_config = [run for run in runs if run.config]
    if len(with_config) < 2:
        return None
    rows = []
    for run in with_config:
        config = run.config or {}
        model = {k: v for k, v in _flatten(config.get("model") or {}).items() if not isinstance(v, list | dict)}
        data = config.get("data") or {}
        class_path = data.get("class_path", "") if isinstance(data, dict) else ""
        rows.append({"data": class_path.rsplit(".", 1)[-1], **model})
    table = pd.DataFrame(rows, index=_unique_index([run.name for run in with_config]))
    varying = [c for c in table.columns if table[c].astype(str).nunique() > 1 and c != "results_dir"]
    if not varying:
        return None
    table = table[varying]
    table.index.name = "run"
    return table


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with two more rows: ``mean`` and ``std`` (sample standard deviation, ddof 1) of each column."""
    numbers = table.astype(float)
    summary = pd.DataFrame([numbers.mean(), numbers.std(ddof=1)], index=["mean", "std"])
    out = pd.concat([numbers, summary])
    out.index.name = table.index.name
    return out


def write_table(table: pd.DataFrame, directory: Path, stem: str, digits: int, bold: str | None) -> dict[str, Path]:
    """``<stem>.md`` and ``<stem>.csv`` of ``table`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": directory / f"{stem}.md", "csv": directory / f"{stem}.csv"}
    paths["markdown"].write_text(markdown_table(table, digits=digits, bold=bold))  # type: ignore[arg-type]
    table.to_csv(paths["csv"])
    return paths


def write_report(
    runs: Sequence[RunResult], directory: str | os.PathLike[str], digits: int = 2, summary: bool = False
) -> tuple[str, dict[str, Path]]:
    """Write the per-pose, per-class and settings tables (markdown + CSV) and ``report.md`` with all.

    Args:
        runs: from :func:`find_runs`.
        directory: created if missing.
        digits: decimals in markdown.
        summary: add ``mean`` and ``std`` rows over the runs (e.g. cross-validation folds).

    Returns:
        The text of ``report.md`` and ``{table name: path}`` of every file written.
    """
    if not runs:
        raise ValueError("no runs to report")
    out = Path(directory)
    sections, paths = [], {}
    tables = {"per_pose": pose_table(runs), "per_class": class_table(runs)}
    titles = {
        "per_pose": "Accuracy (%) per pose (Tables II, VII)",
        "per_class": "Accuracy (%) per class (Tables III-IV)",
    }
    for name, table in tables.items():
        if table is None:
            continue
        if summary:
            table = summarize(table)
        bold = "max" if len(runs) > 1 and not summary else None
        written = write_table(table, out, f"report_{name}", digits, bold)
        paths.update({f"{name}_{kind}": path for kind, path in written.items()})
        sections.append(f"## {titles[name]}\n\n{markdown_table(table, digits=digits, bold=bold)}")  # type: ignore[arg-type]
    settings = settings_table(runs)
    if settings is not None:
        written = write_table(settings, out, "report_settings", digits, None)
        paths.update({f"settings_{kind}": path for kind, path in written.items()})
        sections.append(f"## Settings that differ\n\n{markdown_table(settings, digits=digits)}")
    listing = "\n".join(f"- `{run.name}`: {run.directory}" for run in runs)
    text = "# Results\n\n" + "\n".join(sections) + f"\n## Runs\n\n{listing}\n"
    paths["report"] = out / "report.md"
    paths["report"].write_text(text)
    return text, paths


def report_main(args: Sequence[str]) -> None:
    """``exprgan report``: gather finished runs into the paper's tables (markdown and CSV)."""
    parser = argparse.ArgumentParser(
        prog="exprgan report",
        description=(
            "Gather finished runs (folders with results/test_results.json, written by `exprgan test`; searched "
            "recursively) into tables shaped like the paper's: accuracy per pose and average (Tables II, VII), "
            "per class, mean class and overall accuracy (Tables III-IV), and the config options in which the "
            "runs differ (from each run's config.yaml). Accuracies in percent; best value of a column in bold. "
            "Writes report.md, report_per_pose.{md,csv}, report_per_class.{md,csv}, report_settings.{md,csv}."
        ),
        epilog="example: exprgan report runs/multipie-ours runs/multipie-no_interl runs/multipie-no_synfi --out tables",
        allow_abbrev=False,
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or folders of runs")
    parser.add_argument("--out", default="report", help="output folder (report)")
    parser.add_argument("--name", action="append", help="row name per run found, in order (default: folder)")
    parser.add_argument("--summary", action="store_true", help="add mean and std rows (e.g. over CV folds)")
    parser.add_argument("--digits", type=int, default=2, help="decimals in markdown (2)")
    options = parser.parse_args(args)
    try:
        runs = find_runs(options.runs)
    except FileNotFoundError as error:
        parser.error(str(error))
    if options.name is not None:
        if len(options.name) != len(runs):
            parser.error(f"{len(options.name)} --name for {len(runs)} runs found ({[r.name for r in runs]})")
        for run, name in zip(runs, options.name):
            run.name = name
    text, paths = write_report(runs, options.out, options.digits, options.summary)
    print(text, end="")
    print(f"exprgan report: {len(runs)} runs; wrote {', '.join(str(p) for p in paths.values())}")


__all__ = [
    "RunResult",
    "class_table",
    "find_runs",
    "load_run",
    "pose_table",
    "settings_table",
    "summarize",
    "write_report",
]

"""``exprgan report``: finished runs gathered into tables shaped like the paper's Tables II-VII.

A *run* is a folder holding ``results/test_results.json`` (what ``exprgan test`` writes into
the logger's folder) or ``test_results.json`` itself; the run's ``config.yaml`` (saved by
LightningCLI) is read when present. Every ``RUN_DIR`` given is searched recursively, so one
folder of runs (or of cross-validation folds) gives one row per run.

Tables (accuracies in percent, best of each column in bold in markdown):

- **per pose** (Tables II and VII, Multi-PIE): one column per pose, then ``average``, the
  accuracy over all test images (the paper's "Average");
- **per class** (Tables III-IV give the overall accuracy; Fig. 5-7 the per-class values):
  one column per class, then ``mean class`` and ``accuracy`` (over all test images);
- **settings**: the options in which the runs' configs differ (the ablation switches of
  Table VII, the backbone, ...), when configs were found.

Written into ``--out``: ``report.md`` (all tables) and ``report_<table>.md`` / ``.csv`` for each.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from exprgan.evaluation.tables import markdown_table
from exprgan.tools import tool_parser

RESULTS_FILE = "test_results.json"
CONFIG_FILE = "config.yaml"


@dataclass
class RunResult:
    """One finished run: its row name, folder, ``test_results.json`` (fractions) and config (when found)."""

    name: str
    directory: Path
    results: dict[str, Any]
    config: dict[str, Any] | None = field(default=None, repr=False)


def load_run(directory: str | os.PathLike[str], name: str | None = None) -> RunResult:
    """The run in ``directory`` (its ``results/test_results.json`` or ``test_results.json``; else FileNotFoundError).

    Its config is ``directory/config.yaml``, else the newest ``config.yaml`` below it (e.g. a logger's ``version_k/``).
    """
    directory = Path(directory)
    files = [f for f in (directory / "results" / RESULTS_FILE, directory / RESULTS_FILE) if f.is_file()]
    if not files:
        raise FileNotFoundError(f"no {RESULTS_FILE} in {directory} or {directory / 'results'}: has it been tested?")
    configs = [directory / CONFIG_FILE] if (directory / CONFIG_FILE).is_file() else []
    configs = configs or sorted(directory.rglob(CONFIG_FILE), key=lambda p: p.stat().st_mtime)[-1:]
    config = yaml.safe_load(configs[0].read_text()) if configs else None
    return RunResult(name or directory.name, directory, json.loads(files[0].read_text()), config)


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[RunResult]:
    """Every run under ``paths``, in the order given (below one path: sorted), named by its folder relative to
    that path (or the path's name when it is the run). Raises FileNotFoundError for a path without results.
    """
    runs = []
    for path in map(Path, paths):
        files = sorted(path.rglob(RESULTS_FILE)) if path.is_dir() else []
        if not files:
            raise FileNotFoundError(f"no {RESULTS_FILE} under {path}: has the run been tested (exprgan test)?")
        for file in files:
            run = file.parent.parent if file.parent.name == "results" else file.parent
            name = run.relative_to(path).as_posix() if path in run.parents else (run.name or str(run))
            runs.append(load_run(run, name))
    return runs


def _percent(value: float | None) -> float:
    return float("nan") if value is None else 100.0 * float(value)


def _frame(rows: list[dict[str, Any]], runs: Sequence[RunResult], columns: list[str] | None = None) -> pd.DataFrame:
    """One row per run, named by the runs (repeated names numbered: ``a``, ``a (2)``)."""
    names = [run.name for run in runs]
    index = [n if names[:k].count(n) == 0 else f"{n} ({names[:k].count(n) + 1})" for k, n in enumerate(names)]
    table = pd.DataFrame(rows, index=index, columns=columns)
    table.index.name = "run"
    return table


def pose_table(runs: Sequence[RunResult]) -> pd.DataFrame | None:
    """Per-pose accuracy (%) of every run with poses, then ``average`` (Tables II, VII); None without poses."""
    runs = [run for run in runs if run.results.get("per_pose")]
    if not runs:
        return None
    rows = [
        {str(k): _percent(v) for k, v in run.results["per_pose"].items() if k != "mean"}
        | {"average": _percent(run.results.get("accuracy"))}
        for run in runs
    ]
    poses = list(dict.fromkeys(k for row in rows for k in row if k != "average"))
    with contextlib.suppress(ValueError):  # names that are not numbers keep their order
        poses.sort(key=float)  # "-30", "-15", "0", "+15", "+30"
    return _frame(rows, runs, [*poses, "average"])


def class_table(runs: Sequence[RunResult]) -> pd.DataFrame:
    """Per-class accuracy (%), ``mean class`` and overall ``accuracy`` of every run (Tables III-IV)."""
    rows = [
        {c: _percent(v) for c, v in (run.results.get("per_class") or {}).items()}
        | {"mean class": _percent(run.results.get("mean_class_accuracy"))}
        | {"accuracy": _percent(run.results.get("accuracy"))}
        for run in runs
    ]
    names = [c for run in runs for c in run.results.get("class_names", run.results.get("per_class") or {})]
    return _frame(rows, runs, [*dict.fromkeys(names), "mean class", "accuracy"]).astype(float)


def settings_table(runs: Sequence[RunResult]) -> pd.DataFrame | None:
    """The model and data options in which the runs' configs differ (Table VII's ablation switches).

    Only runs with a config are listed; ``data`` is the DataModule class. None when fewer
    than two configs were found or they agree on everything.
    """
    runs = [run for run in runs if run.config]
    if len(runs) < 2:
        return None
    rows = []
    for run in runs:
        model = pd.json_normalize(run.config.get("model") or {}).iloc[0].to_dict() if run.config.get("model") else {}
        data = run.config.get("data") or {}
        class_path = data.get("class_path", "") if isinstance(data, dict) else ""
        model = {k: v for k, v in model.items() if k != "results_dir" and not isinstance(v, list | dict)}
        rows.append({"data": class_path.rsplit(".", 1)[-1]} | model)
    table = _frame(rows, runs)
    varying = [c for c in table.columns if table[c].astype(str).nunique() > 1]
    return table[varying] if varying else None


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with two more rows: ``mean`` and ``std`` (sample standard deviation, ddof 1) of each column."""
    numbers = table.astype(float)
    out = pd.concat([numbers, pd.DataFrame([numbers.mean(), numbers.std(ddof=1)], index=["mean", "std"])])
    out.index.name = table.index.name
    return out


def write_report(
    runs: Sequence[RunResult], directory: str | os.PathLike[str], digits: int = 2, summary: bool = False
) -> tuple[str, dict[str, Path]]:
    """Write the per-pose, per-class and settings tables (``report_<table>.md``, ``.csv``) and ``report.md``.

    ``summary`` adds ``mean`` and ``std`` rows over the runs (e.g. cross-validation folds); ``digits``
    are the decimals in markdown. Returns the text of ``report.md`` and
    ``{<table>_markdown | <table>_csv | report: path}`` of every file written.
    """
    if not runs:
        raise ValueError("no runs to report")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    bold = "max" if len(runs) > 1 and not summary else None
    sections = {
        "per_pose": ("Accuracy (%) per pose (Tables II, VII)", pose_table(runs), bold),
        "per_class": ("Accuracy (%) per class (Tables III-IV)", class_table(runs), bold),
        "settings": ("Settings that differ", settings_table(runs), None),
    }
    text, paths = "# Results\n\n", {}
    for name, (title, table, best) in sections.items():
        if table is None:
            continue
        if summary and name != "settings":
            table = summarize(table)
        markdown = markdown_table(table, digits=digits, bold=best)
        paths[f"{name}_markdown"], paths[f"{name}_csv"] = out / f"report_{name}.md", out / f"report_{name}.csv"
        paths[f"{name}_markdown"].write_text(markdown)
        table.to_csv(paths[f"{name}_csv"])
        text += f"## {title}\n\n{markdown}\n"
    text += "## Runs\n\n" + "".join(f"- `{run.name}`: {run.directory}\n" for run in runs)
    paths["report"] = out / "report.md"
    paths["report"].write_text(text)
    return text, paths


def report_main(args: Sequence[str]) -> None:
    """``exprgan report``: gather finished runs into the paper's tables (markdown and CSV)."""
    example = "example: exprgan report runs/multipie-ours runs/multipie-no_interl runs/multipie-no_synfi --out tables"
    parser = tool_parser("exprgan report", __doc__, epilog=example)
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

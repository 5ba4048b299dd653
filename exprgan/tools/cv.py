"""exprgan cv: subject-independent k-fold cross-validation (Multi-PIE, MMI), mean and std.

The training command line (--config files and every other option, passed to `exprgan fit`
unchanged: --data.root PATH, --trainer.max_steps N, ...) is resolved once (`exprgan fit ...
--print_config`). For each fold k a copy of it is written to RUNS/fold{k}/cv_config.yaml with
data.init_args.fold = k and every output of the run redirected into RUNS/fold{k}/: the
logger's save_dir (its name gets -fold{k}), the ModelCheckpoint folder (checkpoints/,
save_last, no -v1 versions), trainer.default_root_dir and report.results_dir (results/). Then
`exprgan fit --config RUNS/fold{k}/cv_config.yaml` and `exprgan test ... --ckpt_path
RUNS/fold{k}/checkpoints/last.ckpt` run in this process: the test uses the final model (the
paper reports the last model's test accuracy).

Resumable: a fold with results/test_results.json is not run again; a fold with a
checkpoints/last.ckpt but no results resumes its training from it (--overwrite starts folds
afresh). Finally the accuracy, mean class accuracy and per-pose accuracy of the folds, in
percent, with their mean and std (the sample standard deviation over the folds, ddof 1), are
printed and written to RUNS/cv.md and RUNS/cv.csv.

example:
  exprgan cv --config experiments/multipie.yaml --data.root /data/Multi-PIE \\
      --data.cache /data/cache/multipie --runs-dir runs/multipie-cv
"""

from __future__ import annotations

import contextlib
import copy
import io
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from exprgan.cli import cli_main
from exprgan.evaluation.tables import markdown_table
from exprgan.tools import tool_parser
from exprgan.tools.report import class_table, load_run, pose_table, summarize

CHECKPOINT_CLASS = "ModelCheckpoint"


def resolved_config(args: Sequence[str]) -> dict[str, Any]:
    """The full ``fit`` config of ``args``, what follows ``exprgan fit`` (``--config`` files and overrides)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):  # --print_config exits
        cli_main(["fit", *args, "--print_config"])
    config = yaml.safe_load(buffer.getvalue())
    if not isinstance(config, dict) or "data" not in config:
        raise ValueError(f"could not resolve the training config of {list(args)}")
    return config


def fold_config(config: dict[str, Any], fold: int, run_dir: str | Path) -> dict[str, Any]:
    """A resolved ``fit`` config for test fold ``fold``, every output of the run under ``run_dir``.

    Raises ``ValueError`` when the config's DataModule has no ``fold`` argument (no cross-validation).
    """
    config = copy.deepcopy(config)
    run_dir = Path(run_dir)
    data = config["data"]
    init_args = data.get("init_args") if isinstance(data, dict) else None
    if not isinstance(init_args, dict) or "fold" not in init_args:
        what = data.get("class_path") if isinstance(data, dict) else data
        raise ValueError(f"the data module {what} has no 'fold' argument: it has no cross-validation folds")
    num_folds = init_args.get("num_folds")
    if num_folds is not None and not 0 <= fold < int(num_folds):
        raise ValueError(f"fold {fold} is not in 0..{int(num_folds) - 1} (num_folds {num_folds})")
    init_args["fold"] = fold

    trainer = config.setdefault("trainer", {})
    trainer["default_root_dir"] = str(run_dir)
    loggers = trainer.get("logger") if isinstance(trainer.get("logger"), list) else [trainer.get("logger")]
    for logger in loggers:
        args = logger.get("init_args") if isinstance(logger, dict) else None
        if isinstance(args, dict):
            if "save_dir" in args:
                args["save_dir"] = str(run_dir)
            if args.get("name"):
                args["name"] = f"{args['name']}-fold{fold}"
    callbacks = trainer.get("callbacks") or []
    checkpoints = [
        c for c in callbacks if isinstance(c, dict) and str(c.get("class_path", "")).endswith(CHECKPOINT_CLASS)
    ]
    if not checkpoints:
        checkpoints = [{"class_path": f"exprgan.callbacks.{CHECKPOINT_CLASS}", "init_args": {}}]
        callbacks = [*callbacks, *checkpoints]
    for callback in checkpoints:
        args = callback.setdefault("init_args", {})
        args.update(dirpath=str(run_dir / "checkpoints"), save_last=True, enable_version_counter=False)
    trainer["callbacks"] = callbacks
    trainer["enable_checkpointing"] = True
    config["report"] = {**(config.get("report") or {}), "results_dir": str(run_dir / "results")}
    return config


def run_fold(config: dict[str, Any], fold: int, run_dir: str | Path, overwrite: bool = False) -> Path:
    """Fit then test fold ``fold`` of a resolved ``config`` in ``run_dir``; returns its ``test_results.json``.

    A finished fold is skipped and an interrupted one resumes from its ``last.ckpt``, unless ``overwrite``
    deletes the folder first.
    """
    run_dir = Path(run_dir)
    results = run_dir / "results" / "test_results.json"
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    if results.is_file():
        print(f"exprgan cv: fold {fold} already done ({results}), skipped")
        return results
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "cv_config.yaml"
    config_file.write_text(yaml.safe_dump(fold_config(config, fold, run_dir), sort_keys=False))
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = [f"--ckpt_path={last}"] if last.is_file() else []
    print(f"exprgan cv: fold {fold}: {'resuming ' if resume else ''}training in {run_dir}")
    for command, extra, output in (("fit", resume, last), ("test", [f"--ckpt_path={last}"], results)):
        try:
            cli_main([command, "--config", str(config_file), *extra])
        finally:  # end the W&B run the command left open (a CLI process would end it at exit)
            if getattr(sys.modules.get("wandb"), "run", None) is not None:
                sys.modules["wandb"].finish()
        if not output.is_file():
            raise FileNotFoundError(f"fold {fold}: {command} wrote no {output}")
    return results


def cross_validate(
    args: Sequence[str],
    runs_dir: str | Path,
    folds: Sequence[int] | None = None,
    overwrite: bool = False,
    digits: int = 2,
) -> pd.DataFrame:
    """Run every fold of a training command line and write ``cv.md`` / ``cv.csv`` in ``runs_dir``.

    Args:
        args: what follows ``exprgan fit`` (``--config`` files and overrides).
        runs_dir: one sub-folder per fold, and the summary.
        folds: the test folds to run (default: all, ``0 .. num_folds - 1``).
        overwrite: rerun folds that are done.
        digits: decimals in markdown.

    Returns:
        Accuracy, mean class accuracy and per-pose accuracy (%) of every fold (rows ``fold{k}``),
        then their ``mean`` and ``std``.
    """
    runs_dir = Path(runs_dir)
    config = resolved_config(args)
    if folds is None:
        num_folds = (config["data"].get("init_args") or {}).get("num_folds")
        if num_folds is None:
            raise ValueError("the data module has no num_folds argument: give the folds")
        folds = list(range(int(num_folds)))
    for fold in folds:
        run_fold(config, fold, runs_dir / f"fold{fold}", overwrite)
    runs = [load_run(runs_dir / f"fold{fold}", name=f"fold{fold}") for fold in folds]
    table, poses = class_table(runs)[["accuracy", "mean class"]], pose_table(runs)
    if poses is not None:
        table = table.join(poses.drop(columns="average").add_prefix("pose "))
    table = summarize(table.rename_axis("fold"))
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "cv.md").write_text(markdown_table(table, digits=digits))
    table.to_csv(runs_dir / "cv.csv")
    return table


def cv_main(args: Sequence[str]) -> None:
    """``exprgan cv``: fit and test every cross-validation fold, then report mean and std."""
    usage = "exprgan cv --config FILE [--config FILE ...] [fit options ...] [--folds K [K ...]] [--runs-dir DIR]"
    parser = tool_parser("exprgan cv", __doc__, usage=usage + " [--overwrite]")
    parser.add_argument("--folds", type=int, nargs="+", help="test folds to run (default: 0 .. num_folds - 1)")
    parser.add_argument("--runs-dir", type=Path, help="output folder (default: runs/cv-<first config's name>)")
    parser.add_argument("--overwrite", action="store_true", help="rerun folds already done (their folders deleted)")
    parser.add_argument("--digits", type=int, default=2, help="decimals in markdown (2)")
    options, passthrough = parser.parse_known_args(args)
    configs = [b for a, b in zip(passthrough, passthrough[1:]) if a in ("--config", "-c")]
    configs += [a.split("=", 1)[1] for a in passthrough if a.startswith("--config=")]
    if not configs:
        parser.error("give the training config: --config FILE (e.g. experiments/multipie.yaml)")
    runs_dir = options.runs_dir or Path("runs") / f"cv-{Path(configs[0]).stem}"
    try:
        table = cross_validate(passthrough, runs_dir, options.folds, options.overwrite, options.digits)
    except ValueError as error:
        parser.error(str(error))
    print(markdown_table(table, digits=options.digits), end="")
    print(f"exprgan cv: {len(table) - 2} folds; wrote {runs_dir / 'cv.md'} and {runs_dir / 'cv.csv'}")

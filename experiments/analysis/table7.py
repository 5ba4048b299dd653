"""The paper's Table VII and Fig. 12 in miniature: what do synthesis and each part of the model buy recognition?

Every run is an ``exprgan fit`` then an ``exprgan test`` (subprocesses) of the base configuration
(``--config``, default ``experiments/demo.yaml experiments/wild.yaml``) and of variants of it; the
test is on the data's held-out test identities. The variants (``--variants``):

- ``ours``: the configuration as it is: the classifier reads the encoder's representation R and
  trains on real faces and on the faces the GAN generates while it trains;
- ``no_synfi``, ``no_expr``, ``no_interl``, ``twostage``: the overlay of that name in
  ``experiments/ablations/`` added (Table VII); ``no_synfi``, real faces only, is the baseline
  every other variant is compared with;
- ``shuffled``: ``no_synfi`` with ``--data.init_args.sampling shuffled``: real faces only, drawn
  by a shuffled sampler instead of the cycling one (which draws every class equally often):
  a control separating synthesis from the cycling sampler's re-balancing (``I_b`` still comes
  from another class than ``I_a``, which flattens the skew a little: see
  :mod:`exprgan.datamodules.pairs`);
- ``quarter_synfi`` (not in the paper): ``ours`` with every generated face a quarter of a real
  one in the classifier's loss (``loss_weights.synthesized: 0.25``), a smaller share for labels
  that are noisy when the transfers are poor;
- ``0N``, ``1N``, ``2N``, ``4N``, ``6N`` (Fig. 12): ``no_synfi`` on the originals plus the first k
  transfers of every training image, written once per seed by ``exprgan synthesize --per-image K``
  (K the largest k asked for; the first k of K are a k-run) from the same seed's ``ours``
  checkpoint and read through ``exprgan.datamodules.SynthesizedDataModule``. As in every run,
  the GAN trains too, here on the enlarged set; only the classifier is judged. ``0N`` is the
  originals alone *through that pipeline* (the data wrapped, ``per_image: 0``): the same images,
  pair stream and initialisation as ``no_synfi`` but not the same command, so it is run, not
  reused; its paired difference from ``no_synfi`` checks that the wrapper changes nothing (for
  example a data option it does not pass on). It needs the seed's synthesis folder (for its
  training-set record), so it also waits for ``ours``.

A kN run asks for ``ours`` of its seed, which is run when it is not there. The seed is
``seed_everything`` (initialisation, dropout, synthesis targets); the data (data seed 0), their
split and the pair stream are the same in every run, so the variants of one seed are paired. Every
fit has the base configuration's budget, its ``trainer.max_steps`` and ``trainer.max_time`` (the
table flags a run that ``max_time`` stopped before ``max_steps``); an epoch is fixed at 100 batches
(validation after each) whatever the size of the training set; the oracle that judges every variant's
transfers is trained once (``RUNS/offline``) and shared by the tests.

Default seeds: 0-4 for ``ours``, ``no_synfi`` and the kN, 0-2 for the others; ``--seeds`` gives
every selected variant the same seeds. Run from the repository root; the whole experiment, 50 fits
(each at most the demo's 14 minutes on 2 CPU cores, its test about a minute more), about 12 h::

    python experiments/analysis/table7.py

Resumable: a finished fit (``fit.json``), synthesis (``index.csv``) or test
(``results/test_results.json``) is skipped; an unfinished fit starts again from scratch; runs of
other settings (configs, their content, --tiny) are refused (``RUNS/settings.json``). After every
test, from all the finished runs in ``--runs-dir`` (``runs/table7``):

- ``--json`` (``docs/table7.json``): every seed's figures on the test identities, fractions in
  [0, 1], ``{variant: {seed: {"acc": .., "mean_class_acc": .., "recall": {class: ..}}}}`` (a
  class without test faces: null); the top-level key ``"_meta"`` holds the rest: the settings,
  the training set's class counts and its two rarest classes, the test faces, each run's
  optimiser steps and the runs ``max_time`` cut, and under ``"synthesis"`` per variant and seed its
  transfers judged by the data's oracle (``target_acc``, ``edit_recall``, ``oracle_acc`` on the
  real test faces) when the data have one;
- ``--table`` (``docs/table7.md``): per variant mean ± 95% t-interval over seeds of accuracy, mean
  per-class accuracy and the recall of the two rarest training classes, and the paired per-seed
  difference from ``no_synfi`` (the seeds both have, n stated) with its mean and 95% t-interval;
- ``--plot`` (``docs/table7.png``): Fig. 12 (mean class accuracy against k, with 95% intervals)
  and the Table VII differences from ``no_synfi``.

``--dry-run`` prints the commands; ``--tiny`` (32 px, 2 validation and test identities, a narrow
model, 2 batches) is a smoke test of the pipeline, its numbers mean nothing::

    python experiments/analysis/table7.py --tiny --variants ours no_synfi 1N --seeds 0 \\
        --runs-dir /tmp/table7 --table /tmp/table7.md --json /tmp/table7.json --plot /tmp/table7.png

This script was ``low_data.py`` (``git show 45f30ac:experiments/analysis/low_data.py``):
``docs/low_data.md`` and its reading in docs/experiments.md record that earlier design: 15
training identities of the rendered faces, ``joint`` (today's ``ours``), ``no_synfi`` and ``2N``,
3 seeds, mean ± std.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPRGAN = [sys.executable, "-m", "exprgan.cli"]  # the `exprgan` command of this interpreter
ABLATIONS = ROOT / "experiments" / "ablations"
DEFAULT_CONFIGS = ("demo.yaml", "wild.yaml")  # in experiments/
EPOCH_BATCHES = 100  # validation after every 100 batches, whatever the training set's size
DATA_SEED = 0  # the rendered faces, their split and the pair stream: the same in every run
BASELINE = "no_synfi"
TINY_DATA = {
    "image_size": 32,
    "val_identities": 2,
    "test_identities": 2,
    "batch_size": 2,
    "eval_batch_size": 16,
    "steps_per_epoch": 2,
}
TINY_MODEL = {"networks.gan_width": 8, "networks.classifier_hidden_features": 32}
TINY_STEPS = 6  # 2 batches


@dataclass(frozen=True)
class Variant:
    """One row of the table: overlays of ``experiments/ablations/``, data options, transfers per image (kN)."""

    name: str
    about: str
    overlays: tuple[str, ...] = ()
    data: Mapping[str, object] = field(default_factory=dict)
    per_image: int | None = None  # kN: k transfers of each training image
    seeds: int = 3  # seeds 0 .. seeds - 1 unless --seeds says otherwise


def _variants() -> dict[str, Variant]:
    rows = [
        Variant("ours", "real + generated faces, reads R (the configuration as it is)", seeds=5),
        Variant(BASELINE, "real faces only", ("no_synfi.yaml",), seeds=5),
        Variant("no_expr", "real + generated faces, no R", ("no_expr.yaml",)),
        Variant("no_interl", "real + generated faces, no interpolation loss", ("no_interl.yaml",)),
        Variant("twostage", "real + generated faces, no L_C into G", ("twostage.yaml",)),
        Variant("shuffled", "real faces only, shuffled sampler", ("no_synfi.yaml",), {"sampling": "shuffled"}),
        Variant("quarter_synfi", "real + generated faces, each generated a quarter", ("synthesized_quarter.yaml",)),
    ]
    for k in (0, 1, 2, 4, 6):
        about = "originals through the kN pipeline" if k == 0 else f"originals + {k} transfers each by `ours`"
        rows.append(Variant(f"{k}N", about, ("no_synfi.yaml",), per_image=k, seeds=5))
    return {row.name: row for row in rows}


VARIANTS = _variants()


def default_seeds(name: str) -> list[int]:
    return list(range(VARIANTS[name].seeds))


def run_plan(names: Sequence[str], seeds: Sequence[int] | None = None) -> list[tuple[int, list[str]]]:
    """``[(seed, [variant, ...])]``, seed by seed (each finished seed completes a paired row), the
    variants in table order; ``ours`` added to a seed whose kN need its checkpoint."""
    wanted = {name: list(seeds) if seeds is not None else default_seeds(name) for name in names}
    plan = []
    for seed in sorted({s for chosen in wanted.values() for s in chosen}):
        here = [name for name in VARIANTS if seed in wanted.get(name, ())]
        if "ours" not in here and any(VARIANTS[name].per_image is not None for name in here):
            here.insert(0, "ours")
        plan.append((seed, here))
    return plan


# --- the configuration ---------------------------------------------------------------------------
def read_configs(configs: Sequence[str]) -> list[dict[str, Any]]:
    return [yaml.safe_load(Path(config).read_text()) or {} for config in configs]


def merge_data(sections: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The ``data:`` sections of composed configs as one: a later ``class_path`` starts the data
    afresh, later ``init_args`` override earlier ones option by option."""
    merged: dict[str, Any] = {}
    for section in sections:
        if not section:
            continue
        if "class_path" in section and section["class_path"] != merged.get("class_path"):
            merged = {"class_path": section["class_path"], "init_args": {}}
        merged["init_args"] = {**merged.get("init_args", {}), **(section.get("init_args") or {})}
    return merged


def budget(contents: Sequence[Mapping[str, Any]]) -> tuple[int, str | None]:
    """``(trainer.max_steps, trainer.max_time)`` of composed configs (the last that sets each)."""
    trainer: dict[str, Any] = {}
    for content in contents:
        trainer.update(content.get("trainer") or {})
    steps = trainer.get("max_steps")
    if not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"the configs set no trainer.max_steps ({steps!r}): every run needs the same finite budget")
    return steps, trainer.get("max_time")


@dataclass(frozen=True)
class Settings:
    """What every run of one runs folder shares (``settings.json``): results from other settings do not mix."""

    configs: tuple[str, ...]
    digests: tuple[str, ...]  # of the configs' text: an edited config is another setting
    max_steps: int
    max_time: str | None
    tiny: bool

    @classmethod
    def of(cls, configs: Sequence[str], tiny: bool) -> Settings:
        steps, max_time = budget(read_configs(configs))
        digests = tuple(hashlib.sha256(Path(c).read_bytes()).hexdigest()[:16] for c in configs)
        return cls(tuple(configs), digests, TINY_STEPS if tiny else steps, max_time, tiny)

    def data(self) -> dict[str, object]:
        """The ``data.init_args`` every run sets on top of the configs'."""
        data: dict[str, object] = {"seed": DATA_SEED, "steps_per_epoch": EPOCH_BATCHES}
        return {**data, **TINY_DATA} if self.tiny else data

    def record(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # as settings.json reads back (lists)


def default_configs() -> list[str]:
    return [os.path.relpath(ROOT / "experiments" / name) for name in DEFAULT_CONFIGS]


# --- the commands --------------------------------------------------------------------------------
def lightning_args(settings: Settings, name: str, seed: int, run: Path) -> list[str]:
    """The options ``exprgan fit`` and ``exprgan test`` of one run share."""
    variant = VARIANTS[name]
    configs = [*settings.configs, *(os.path.relpath(ABLATIONS / overlay) for overlay in variant.overlays)]
    args = [arg for config in configs for arg in ("--config", config)]
    if variant.per_image is not None:  # the data are wrapped: their options live in the run's data.yaml
        args += ["--config", str(run / "data.yaml")]
    else:
        args += [f"--data.init_args.{key}={value}" for key, value in {**settings.data(), **variant.data}.items()]
    args += [f"--model.{key}={value}" for key, value in (TINY_MODEL.items() if settings.tiny else [])]
    # the checkpoint is saved once, at the end (also when max_time stops the run first)
    args += [f"--seed_everything={seed}", f"--trainer.callbacks.init_args.dirpath={run / 'checkpoints'}"]
    return args + [f"--trainer.callbacks.init_args.every_n_train_steps={settings.max_steps}"]


def fit_args(settings: Settings, name: str, seed: int, run: Path) -> list[str]:
    args = ["fit", *lightning_args(settings, name, seed, run), f"--trainer.max_steps={settings.max_steps}"]
    args += ["--trainer.logger=pytorch_lightning.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={run}"]
    return args + ["--trainer.logger.init_args.name=logs", "--trainer.enable_progress_bar=false"]


def test_args(settings: Settings, name: str, seed: int, run: Path) -> list[str]:
    """On the data's test split; the oracle is cached in the runs folder's ``offline/``, one for every run."""
    args = ["test", *lightning_args(settings, name, seed, run), f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"]
    args += [f"--report.results_dir={run / 'results'}", f"--trainer.default_root_dir={run.parent}"]
    return args + ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]


def synthesize_args(settings: Settings, seed: int, per_image: int, ours: Path, out: Path) -> list[str]:
    """``per_image`` transfers of every training image by the seed's ``ours`` checkpoint."""
    args = ["synthesize", "--ckpt", str(ours / "checkpoints" / "last.ckpt")]
    args += [arg for config in settings.configs for arg in ("--config", config)]
    args += [f"--data.init_args.{key}={value}" for key, value in settings.data().items()]
    return args + ["--per-image", str(per_image), "--seed", str(seed), "--out", str(out), "--no-progress"]


def kn_data(settings: Settings, synthesized: Path, per_image: int) -> dict[str, object]:
    """The ``data:`` section of a kN run: the configs' data, as the other runs have them, plus k transfers each."""
    inner = merge_data([content.get("data") for content in read_configs(settings.configs)])
    inner = {**inner, "init_args": {**inner.get("init_args", {}), **settings.data()}}
    wrapped = {"data": inner, "synthesized": str(synthesized), "per_image": per_image}
    return {"data": {"class_path": "exprgan.datamodules.SynthesizedDataModule", "init_args": wrapped}}


class Runner:
    """Runs (or with ``dry_run`` prints) the exprgan commands, each logged to a file."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run

    def __call__(self, args: list[str], log: Path) -> float:
        """Run ``exprgan ARGS``, output to ``log``; returns the seconds it took. Exits on failure."""
        print("$ exprgan " + shlex.join(args), flush=True)
        if self.dry_run:
            return 0.0
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with log.open("w") as out:
            code = subprocess.call([*EXPRGAN, *args], stdout=out, stderr=subprocess.STDOUT, cwd=Path.cwd())
        seconds = time.perf_counter() - start
        if code:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
            sys.exit(f"{tail}\ntable7: exprgan {args[0]} failed (exit {code}); the whole output is in {log}")
        print(f"  done in {seconds / 60:.1f} min (output: {log})", flush=True)
        return seconds


def fit(run_cmd: Runner, settings: Settings, name: str, seed: int, run: Path) -> None:
    """``exprgan fit`` of one run unless ``fit.json`` says it finished; records its steps and time."""
    if (run / "fit.json").is_file():
        return
    if not run_cmd.dry_run:  # an unfinished run starts again: no stale last.ckpt (or last-v1.ckpt), no old test
        for stale in ("checkpoints", "results", "logs"):
            shutil.rmtree(run / stale, ignore_errors=True)
    seconds = run_cmd(fit_args(settings, name, seed, run), run / "fit.log")
    if run_cmd.dry_run:
        return
    import torch  # only here: --dry-run and the report need no torch

    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    record = {"variant": name, "seed": seed, "global_step": int(state["global_step"]), "seconds": seconds}
    (run / "fit.json").write_text(json.dumps(record, indent=2) + "\n")


def test(run_cmd: Runner, settings: Settings, name: str, seed: int, run: Path) -> None:
    if not (run / "results" / "test_results.json").is_file():
        run_cmd(test_args(settings, name, seed, run), run / "test.log")


def synthesize(run_cmd: Runner, settings: Settings, seed: int, per_image: int, ours: Path, out: Path) -> None:
    """``exprgan synthesize`` unless ``out`` holds at least ``per_image`` transfers of each image."""
    meta = out / "synthesis.json"
    if (out / "index.csv").is_file() and meta.is_file() and json.loads(meta.read_text())["per_image"] >= per_image:
        return
    run_cmd(synthesize_args(settings, seed, per_image, ours, out), out.parent / f"{out.name}.log")


# --- the figures ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A mean and the half-width of its t-interval (NaN for fewer than 2 values)."""

    mean: float
    half_width: float
    n: int


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean ± ``t((1 + confidence) / 2, n - 1) * s / sqrt(n)`` (s: the sample std)."""
    n = len(values)
    if n < 2:
        return Interval(values[0] if n else math.nan, math.nan, n)
    from scipy.stats import t

    half = float(t.ppf((1 + confidence) / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return Interval(statistics.fmean(values), half, n)


def paired_differences(values: Mapping[int, float], baseline: Mapping[int, float]) -> dict[int, float]:
    """``values - baseline`` seed by seed, over the seeds both have."""
    return {seed: values[seed] - baseline[seed] for seed in sorted(values) if seed in baseline}


def rarest_classes(counts: Mapping[str, int], k: int = 2) -> list[str]:
    """The ``k`` classes with the fewest training faces (ties: in class order)."""
    return sorted(counts, key=lambda name: counts[name])[:k]  # sorted is stable: ties keep the class order


def train_class_counts(settings: Settings, cache: Path) -> dict[str, int]:
    """Training faces per class of the runs' data (every variant's originals), cached in ``cache``."""
    if cache.is_file():
        return json.loads(cache.read_text())
    from exprgan.tools.data_config import load_datamodule

    data = load_datamodule(settings.configs, [f"--data.init_args.{k}={v}" for k, v in settings.data().items()])
    data.setup("fit")
    labels = [int(y) for y in data.train_labels()]
    counts = {name: labels.count(c) for c, name in enumerate(data.class_names)}
    cache.write_text(json.dumps(counts, indent=2) + "\n")
    return counts


def run_figures(results: Mapping[str, Any]) -> dict[str, Any]:
    """A test's ``test_results.json`` as ``{"acc", "mean_class_acc", "recall": {class: ..}}`` (fractions)."""
    return {
        "acc": results["accuracy"],
        "mean_class_acc": results["mean_class_accuracy"],
        "recall": results["per_class"],
    }


def collect(runs: Path, max_steps: int) -> tuple[dict[str, dict[int, dict[str, Any]]], dict[str, Any]]:
    """The figures of every finished run in ``runs`` (``{variant: {seed: figures}}``) and what ``_meta`` records."""
    figures: dict[str, dict[int, dict[str, Any]]] = {}
    meta: dict[str, Any] = {"test_faces": set(), "global_step": {}, "cut_by_max_time": {}, "synthesis": {}}
    for name in VARIANTS:
        for run in runs.glob(f"{name}-s*"):
            seed = run.name[len(name) + 2 :]
            results, record = run / "results" / "test_results.json", run / "fit.json"
            if not (seed.isdigit() and results.is_file() and record.is_file()):
                continue
            seed, report = int(seed), json.loads(results.read_text())
            figures.setdefault(name, {})[seed] = run_figures(report)
            meta["test_faces"].add(report["num_samples"])
            steps = json.loads(record.read_text())["global_step"]
            meta["global_step"].setdefault(name, {})[seed] = steps
            if steps < max_steps:
                meta["cut_by_max_time"].setdefault(name, []).append(seed)
            transfer = run / "results" / "test_transfer.json"
            if transfer.is_file():  # the variants whose GAN transfers, judged by the data's oracle
                judged = json.loads(transfer.read_text())
                keys = ("target_acc", "edit_recall", "oracle_acc")
                meta["synthesis"].setdefault(name, {})[seed] = {key: judged[key] for key in keys if key in judged}
    figures = {name: dict(sorted(by_seed.items())) for name, by_seed in figures.items()}
    meta["synthesis"] = {name: dict(sorted(by_seed.items())) for name, by_seed in meta["synthesis"].items()}
    meta["test_faces"] = sorted(meta["test_faces"])
    return figures, meta


def table7_json(figures: Mapping[str, Mapping[int, Mapping[str, Any]]], meta: Mapping[str, Any]) -> dict[str, Any]:
    """``{variant: {"seed": {"acc", "mean_class_acc", "recall"}}, "_meta": meta}`` (JSON keys: strings)."""
    out: dict[str, Any] = {
        name: {str(s): dict(f) for s, f in sorted(by_seed.items())} for name, by_seed in figures.items()
    }
    return {**out, "_meta": json.loads(json.dumps(meta))}


def write_json(path: Path, figures: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table7_json(figures, meta), indent=2) + "\n")


def metric(by_seed: Mapping[int, Mapping[str, Any]], key: str, recall_of: str | None = None) -> dict[int, float]:
    """``{seed: value}`` of one figure (``recall_of``: that class's recall), seeds without it left out."""
    values = {seed: (f["recall"].get(recall_of) if recall_of else f[key]) for seed, f in by_seed.items()}
    return {seed: value for seed, value in values.items() if value is not None}


def interval_text(values: Sequence[float], sign: str = "") -> str:
    """``"61.2 ± 3.4"`` in percent (points): mean ± 95% half-width; the value alone for one, ``–`` for none."""
    interval = t_interval(values)
    if interval.n == 0:
        return "–"
    text = f"{100 * interval.mean:{sign}.1f}"
    return text if interval.n < 2 else f"{text} ± {100 * interval.half_width:.1f}"


def write_table(
    path: Path, figures: Mapping[str, Any], meta: Mapping[str, Any], settings: Settings, json_path: Path
) -> None:
    import pandas as pd

    from exprgan.evaluation.tables import markdown_table

    counts, rare = meta.get("train_counts") or {}, meta.get("rarest") or []
    faces = " or ".join(map(str, meta["test_faces"])) or "no"
    command = "python experiments/analysis/table7.py"
    command += "".join(f" --config {c}" for c in settings.configs) * (list(settings.configs) != default_configs())
    command += " --tiny" * settings.tiny
    when = f", at most {settings.max_time}" if settings.max_time else ""
    rarest = ", ".join(f"{c}: {counts[c]}" for c in rare)
    if counts and len(set(counts.values())) == 1:
        rarest += ", every class as frequent: the first two in class order"
    lines = [
        "# Table VII and Fig. 12 in miniature",
        "",
        f"Expression recognition on the held-out test identities ({faces} faces) of the classifier of "
        f"`{' '.join(settings.configs)}` and its variants, {settings.max_steps} optimiser steps each{when}. "
        "Percent: mean ± 95% t-interval over seeds (n); *Δ*: the paired per-seed difference from "
        f"{BASELINE} (a seed gives every variant the same initialisation and data) over the seeds both have, "
        f"in points, mean ± 95% t-interval (n pairs). Recall of the two rarest training classes ({rarest} of "
        f"{sum(counts.values())} training faces). Every seed's figures: `{json_path}`. Made by `{command}`"
        + (": **--tiny, a smoke test, the numbers mean nothing**." if settings.tiny else "."),
    ]
    baseline, rows = figures.get(BASELINE, {}), []
    for name, by_seed in figures.items():
        row = {"the classifier trains on": VARIANTS[name].about, "n": len(by_seed)}
        row["accuracy"], row["mean class acc."] = (
            interval_text(list(metric(by_seed, key).values())) for key in ("acc", "mean_class_acc")
        )
        row |= {f"recall {c}": interval_text(list(metric(by_seed, "recall", c).values())) for c in rare}
        for key, column in (("acc", "Δ accuracy"), ("mean_class_acc", "Δ mean class acc.")):
            diffs = list(paired_differences(metric(by_seed, key), metric(baseline, key)).values())
            row[column] = "" if name == BASELINE else f"{interval_text(diffs, sign='+')} (n={len(diffs)})"
        cut = meta["cut_by_max_time"].get(name, [])
        row["cut by max_time"] = f"seeds {', '.join(map(str, cut))}" if cut else ""
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(list(figures), name="variant"))
    lines += ["", markdown_table(table).rstrip("\n")]
    keys = ("target_acc", "edit_recall")
    for name, by_seed in (meta.get("synthesis") or {}).items():
        judged = {key: [v[key] for v in by_seed.values() if v.get(key) is not None] for key in keys}
        if any(judged.values()):
            lines += [
                "",
                f"The transfers of `{name}` on the test faces, judged by the data's oracle ({len(by_seed)} seeds): "
                f"target accuracy {interval_text(judged['target_acc'])}%, edit recall "
                f"{interval_text(judged['edit_recall'])}% (mean ± 95% t-interval).",
            ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: Path, figures: Mapping[str, Mapping[int, Mapping[str, Any]]], tiny: bool) -> None:
    """Fig. 12 (mean class accuracy against k) and the differences from no_synfi, on the Agg canvas (no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.5, 3.6), dpi=120)
    FigureCanvasAgg(figure)
    curve, bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})

    def half(interval: Interval) -> float:
        return 0.0 if math.isnan(interval.half_width) else 100 * interval.half_width

    ks, means, halves = [], [], []
    for name, variant in VARIANTS.items():
        values = list(metric(figures.get(name, {}), "mean_class_acc").values())
        if variant.per_image is None or not values:
            continue
        curve.scatter([variant.per_image] * len(values), [100 * v for v in values], s=10, color="0.65", zorder=2)
        interval = t_interval(values)
        ks.append(variant.per_image)
        means.append(100 * interval.mean)
        halves.append(half(interval))
    if ks:
        curve.errorbar(ks, means, yerr=halves, fmt="o-", color="k", capsize=4, zorder=3, label="kN (mean ± 95% CI)")
    for name, style in (("ours", "--"), (BASELINE, ":")):
        values = list(metric(figures.get(name, {}), "mean_class_acc").values())
        if values:
            curve.axhline(100 * statistics.fmean(values), linestyle=style, color="C0", label=name)
    kn = [v.per_image for v in VARIANTS.values() if v.per_image is not None]
    curve.set_xticks(kn, [f"{k}N" for k in kn])
    curve.set_xlabel("transfers per training image")
    curve.set_ylabel("mean class accuracy (%)")
    curve.set_title("Fig. 12", fontsize=10)
    curve.grid(axis="y", alpha=0.3)
    curve.legend(fontsize=7)

    baseline = metric(figures.get(BASELINE, {}), "mean_class_acc")
    names = [n for n, v in VARIANTS.items() if v.per_image is None and n != BASELINE and n in figures]
    for x, name in enumerate(names):
        diffs = list(paired_differences(metric(figures[name], "mean_class_acc"), baseline).values())
        if not diffs:
            continue
        interval = t_interval(diffs)
        bars.bar(x, 100 * interval.mean, yerr=half(interval), capsize=4, color="0.75", zorder=2)
        bars.scatter([x] * len(diffs), [100 * d for d in diffs], s=10, color="k", zorder=3)
        bars.annotate(f"n={len(diffs)}", (x, 0), xytext=(0, -12), textcoords="offset points", ha="center", fontsize=7)
    bars.axhline(0, color="k", linewidth=0.8)
    bars.set_xticks(range(len(names)), names, fontsize=8)
    bars.set_ylabel(f"Δ mean class acc. vs {BASELINE} (points)")
    bars.set_title("Table VII: paired differences (mean ± 95% CI, dots: seeds)", fontsize=10)
    bars.grid(axis="y", alpha=0.3)
    if tiny:
        figure.suptitle("tiny smoke test: the numbers mean nothing", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def report(runs: Path, settings: Settings, table: Path, json_path: Path, plot: Path) -> None:
    """The JSON, the table and the plot, from every finished run in ``runs``."""
    figures, meta = collect(runs, settings.max_steps)
    counts = train_class_counts(settings, runs / "train_counts.json")
    meta = {"settings": settings.record(), "train_counts": counts, "rarest": rarest_classes(counts), **meta}
    write_json(json_path, figures, meta)
    write_table(table, figures, meta, settings, json_path)
    write_plot(plot, figures, settings.tiny)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=default_configs(), help="the base configuration, composed")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds of every variant (0-4: ours, no_synfi, kN; 0-2)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/table7"))
    parser.add_argument("--table", type=Path, default=Path("docs/table7.md"))
    parser.add_argument("--json", type=Path, default=Path("docs/table7.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/table7.png"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--tiny", action="store_true", help="32 px, a narrow model, 2 batches: a smoke test")
    options = parser.parse_args(argv)
    try:
        settings = Settings.of(options.config, options.tiny)
    except (OSError, ValueError) as error:  # a missing config, no finite budget
        parser.error(str(error))
    runs = options.runs_dir
    recorded = runs / "settings.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != settings.record():
        sys.exit(f"table7: {runs} holds runs of other settings ({recorded}): use another --runs-dir")
    if not options.dry_run:
        runs.mkdir(parents=True, exist_ok=True)
        recorded.write_text(json.dumps(settings.record(), indent=2) + "\n")

    run_cmd = Runner(options.dry_run)
    for seed, names in run_plan(options.variants, options.seeds):
        synthesized = runs / f"synth-s{seed}"
        transfers = [k for k in (VARIANTS[n].per_image for n in names) if k is not None]
        for name in names:
            run, per_image = runs / f"{name}-s{seed}", VARIANTS[name].per_image
            if per_image is not None:
                if per_image == transfers[0]:  # once a seed, after ours, for its largest k
                    synthesize(run_cmd, settings, seed, max(transfers), runs / f"ours-s{seed}", synthesized)
                data = yaml.safe_dump(kn_data(settings, synthesized, per_image), sort_keys=False)
                if options.dry_run:
                    print(f"# {run / 'data.yaml'}:\n" + "".join(f"#   {line}\n" for line in data.splitlines()))
                else:
                    run.mkdir(parents=True, exist_ok=True)
                    (run / "data.yaml").write_text(data)
            fit(run_cmd, settings, name, seed, run)
            test(run_cmd, settings, name, seed, run)
            if not options.dry_run:
                report(runs, settings, options.table, options.json, options.plot)
    if not options.dry_run:
        print(f"table7: {options.json}, {options.plot}\n" + options.table.read_text())


if __name__ == "__main__":
    main()

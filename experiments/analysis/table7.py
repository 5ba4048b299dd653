"""Does synthesis help recognition with few training identities? The paper's claim, in miniature.

The classifier is trained three ways on the same N training identities of the rendered faces
and tested on the 100 held-out identities (the data's default test split, 700 faces):

- ``joint``: ``experiments/demo.yaml`` as it is: the classifier trains on real faces and on
  the faces the GAN generates while it trains (``synthesized_images: true``);
- ``no_synfi``: the same run with ``--model.synthesized_images false`` (Table VII's No_SynFI);
- ``kN`` (``2N`` for ``--k 2``): originals plus k transfers of every training image (Fig. 12),
  written by ``exprgan synthesize`` from the same seed's ``joint`` checkpoint and read through
  ``exprgan.datamodules.SynthesizedDataModule``, with ``--model.synthesized_images false``.

Every run is an ``exprgan fit`` then an ``exprgan test`` (subprocesses), with the same number
of optimiser steps (``--max-steps``; ``--max-minutes`` is a hard stop, and the table names any
run it cut short). The seed is ``seed_everything`` (initialisation, dropout, synthesis
targets); the rendered faces, their split and the pair stream are those of data seed 0 in
every run, so the variants of one seed are paired and the table also gives each variant's
per-seed difference from ``no_synfi``. An epoch is fixed at 100 batches (validation after
each), whatever the size of the training set.

Resumable: a finished fit (``fit.json``), synthesis (``index.csv``) or test
(``results/test_results.json``) is skipped; an unfinished fit is started again from scratch.
The table (``--table``, default ``docs/low_data.md``) and the plot (``--plot``,
``docs/low_data.png``) are rewritten from the results present after every test. Run from the
repository root; the full experiment (9 fits of 500 batches, ~1.5 h on 2 CPU cores)::

    python experiments/analysis/low_data.py --identities 15 --seeds 0 1 2 --k 2

``--dry-run`` prints the commands; ``--tiny`` (32 px, 2 validation and test identities, a
narrow model, 2 batches) is a smoke test of the pipeline, its numbers mean nothing::

    python experiments/analysis/low_data.py --tiny --seeds 0 --runs-dir /tmp/low_data \\
        --table /tmp/low_data.md --plot /tmp/low_data.png
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPRGAN = [sys.executable, "-m", "exprgan.cli"]  # the `exprgan` command of this interpreter
EPOCH_BATCHES = 100  # validation after every 100 batches, whatever the training set's size
ABOUT = {
    "joint": "real + generated faces, while the GAN trains (the paper)",
    "no_synfi": "real faces only (`synthesized_images: false`)",
    "kN": "real faces + {k} transfers of each by the `joint` model (Fig. 12)",
}
TINY_DATA = {
    "image_size": 32,
    "val_identities": 2,
    "test_identities": 2,
    "batch_size": 2,
    "eval_batch_size": 16,
    "steps_per_epoch": 2,
}
TINY_MODEL = {"networks.gan_width": 8, "networks.classifier_hidden_features": 32}


@dataclass(frozen=True)
class Settings:
    """What every run of one runs folder shares (``settings.json``): results from other settings do not mix."""

    config: str
    identities: int
    max_steps: int
    max_minutes: float
    tiny: bool

    def data(self) -> dict[str, object]:
        """The ``data.init_args`` set here on top of the config's."""
        data: dict[str, object] = {"train_identities": self.identities, "steps_per_epoch": EPOCH_BATCHES}
        return {**data, **TINY_DATA} if self.tiny else data

    def max_time(self) -> str:
        seconds = round(self.max_minutes * 60)
        return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS


def default_config() -> str:
    return os.path.relpath(ROOT / "experiments" / "demo.yaml")


def variants(k: int) -> list[str]:
    return ["joint", "no_synfi", f"{k}N"]


def lightning_args(settings: Settings, variant: str, seed: int, run: Path) -> list[str]:
    """The options ``exprgan fit`` and ``exprgan test`` of one run share."""
    args = ["--config", settings.config]
    if variant.endswith("N"):  # the data are wrapped: its options live in the run's data.yaml
        args += ["--config", str(run / "data.yaml")]
    else:
        args += [f"--data.init_args.{key}={value}" for key, value in settings.data().items()]
    args += [f"--model.{key}={value}" for key, value in (TINY_MODEL.items() if settings.tiny else [])]
    if variant != "joint":
        args.append("--model.synthesized_images=false")
    # the checkpoint is saved once, at the end (also when max_time stops the run first)
    args += [f"--seed_everything={seed}", f"--trainer.callbacks.init_args.dirpath={run / 'checkpoints'}"]
    return args + [f"--trainer.callbacks.init_args.every_n_train_steps={settings.max_steps}"]


def kn_data(settings: Settings, synthesized: Path, k: int) -> dict[str, object]:
    """The ``data:`` section of a kN run: the config's data, as the other runs have it, plus k transfers each."""
    inner = yaml.safe_load(Path(settings.config).read_text())["data"]
    inner = {**inner, "init_args": {**(inner.get("init_args") or {}), **settings.data()}}
    wrapped = {"data": inner, "synthesized": str(synthesized), "per_image": k}
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
            sys.exit(f"{tail}\nlow_data: exprgan {args[0]} failed (exit {code}); the whole output is in {log}")
        print(f"  done in {seconds / 60:.1f} min (output: {log})", flush=True)
        return seconds


def fit(run_cmd: Runner, settings: Settings, variant: str, seed: int, run: Path) -> None:
    """``exprgan fit`` of one run unless ``fit.json`` says it finished; records steps and time."""
    if (run / "fit.json").is_file():
        return
    if not run_cmd.dry_run:  # an unfinished run starts again: no stale last.ckpt (or last-v1.ckpt), no old test
        for stale in ("checkpoints", "results", "logs"):
            shutil.rmtree(run / stale, ignore_errors=True)
    args = ["fit", *lightning_args(settings, variant, seed, run)]
    args += [f"--trainer.max_steps={settings.max_steps}", f"--trainer.max_time={settings.max_time()}"]
    args += ["--trainer.logger=pytorch_lightning.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={run}"]
    args += ["--trainer.logger.init_args.name=logs", "--trainer.enable_progress_bar=false"]
    seconds = run_cmd(args, run / "fit.log")
    if run_cmd.dry_run:
        return
    import torch  # only here: --dry-run and the report need no torch

    from exprgan.joint import OPTIMIZER_STEPS_PER_BATCH

    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    record = {"variant": variant, "seed": seed, "global_step": int(state["global_step"]), "seconds": seconds}
    record["batches"] = record["global_step"] // OPTIMIZER_STEPS_PER_BATCH
    (run / "fit.json").write_text(json.dumps(record, indent=2) + "\n")


def test(run_cmd: Runner, settings: Settings, variant: str, seed: int, run: Path) -> None:
    """``exprgan test`` of one fitted run on the data's test split, unless its results are there."""
    if (run / "results" / "test_results.json").is_file():
        return
    args = ["test", *lightning_args(settings, variant, seed, run), f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"]
    args += [f"--report.results_dir={run / 'results'}", f"--trainer.default_root_dir={run}"]  # oracle: run/offline
    args += ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    run_cmd(args, run / "test.log")


def synthesize(run_cmd: Runner, settings: Settings, seed: int, k: int, joint: Path, out: Path) -> None:
    """``exprgan synthesize``: k transfers of every training image by the seed's joint model."""
    meta = out / "synthesis.json"
    if (out / "index.csv").is_file() and meta.is_file() and json.loads(meta.read_text())["per_image"] >= k:
        return
    args = ["synthesize", "--ckpt", str(joint / "checkpoints" / "last.ckpt"), "--config", settings.config]
    args += [f"--data.init_args.{key}={value}" for key, value in settings.data().items()]
    args += ["--per-image", str(k), "--seed", str(seed), "--out", str(out), "--no-progress"]
    run_cmd(args, out.parent / f"{out.name}.log")


# --- the report --------------------------------------------------------------------------------
def collect(runs: Path, names: list[str], seeds: list[int]) -> dict[str, dict[int, dict[str, float]]]:
    """``{variant: {seed: {"accuracy": %, "faces": tested, "batches": trained}}}`` of the tests finished so far."""
    found: dict[str, dict[int, dict[str, float]]] = {name: {} for name in names}
    for name in names:
        for seed in seeds:
            run = runs / f"{name}-s{seed}"
            results, record = run / "results" / "test_results.json", run / "fit.json"
            if results.is_file() and record.is_file():
                report, batches = json.loads(results.read_text()), json.loads(record.read_text())["batches"]
                found[name][seed] = {
                    "accuracy": 100 * report["accuracy"],
                    "faces": report["num_samples"],
                    "batches": batches,
                }
    return found


def mean_std(values: list[float], sign: str = "") -> str:
    """``"61.2 ± 1.3"`` (sample std; the value alone for one, ``–`` for none); ``sign="+"``: ``+`` before gains."""
    if not values:
        return "–"
    spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):{sign}.1f}{spread}"


def write_table(path: Path, found: dict, settings: Settings, seeds: list[int], k: int) -> None:
    from exprgan.joint import OPTIMIZER_STEPS_PER_BATCH

    batches = settings.max_steps // OPTIMIZER_STEPS_PER_BATCH
    test_faces = " or ".join(sorted({str(v["faces"]) for by_seed in found.values() for v in by_seed.values()}))
    command = f"--identities {settings.identities} --seeds {' '.join(map(str, seeds))} --k {k} "
    command += f"--max-steps {settings.max_steps} --max-minutes {settings.max_minutes:g}"
    command += f" --config {settings.config}" * (Path(settings.config) != Path(default_config()))
    command += " --tiny" * settings.tiny
    lines = [
        "# Synthesis and recognition with few training identities",
        "",
        f"Expression accuracy (%) on the held-out identities of the rendered faces ({test_faces} faces) of a "
        f"classifier trained with {settings.identities} training identities ({7 * settings.identities} faces), "
        f"{batches} batches each (at most {settings.max_minutes:g} minutes), `{settings.config}` otherwise. "
        "Mean ± std (n - 1) over seeds; *vs no_synfi*: the per-seed difference (a seed gives every "
        "variant the same initialisation, and joint and no_synfi the same pairs). Made by "
        f"`python experiments/analysis/low_data.py {command}`"
        + (": **--tiny, a smoke test, the numbers mean nothing**." if settings.tiny else "."),
        "",
        "| " + " | ".join(["variant", "the classifier trains on", *(f"seed {s}" for s in seeds)]) + " | mean ± std |"
        " vs no_synfi |",
        "|---|---|" + "---|" * len(seeds) + "---|---|",
    ]
    short = []
    baseline = found["no_synfi"]
    for name, by_seed in found.items():
        cells = [f"{by_seed[s]['accuracy']:.1f}" if s in by_seed else "–" for s in seeds]
        paired = [by_seed[s]["accuracy"] - baseline[s]["accuracy"] for s in seeds if s in by_seed and s in baseline]
        delta = "" if name == "no_synfi" else mean_std(paired, sign="+")
        about = ABOUT["kN" if name.endswith("N") else name].format(k=k)
        accuracy = mean_std([v["accuracy"] for v in by_seed.values()])
        lines.append("| " + " | ".join([name, about, *cells, accuracy, delta]) + " |")
        short += [f"{name} seed {s} ({v['batches']} batches)" for s, v in by_seed.items() if v["batches"] < batches]
    if short:
        lines += ["", "Stopped by the time limit before the last batch: " + ", ".join(short) + "."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: Path, found: dict, settings: Settings) -> None:
    """Every seed's accuracy (dots) and each variant's mean ± std (bar), on the Agg canvas (no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.5, 3.2), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = {"seed": "a seed", "mean": "mean ± std"}  # in the legend once
    for x, by_seed in enumerate(found.values()):
        values = [v["accuracy"] for v in by_seed.values()]
        if not values:
            continue
        axes.scatter([x] * len(values), values, s=14, color="0.6", zorder=2, label=labels.pop("seed", None))
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        mean, label = statistics.mean(values), labels.pop("mean", None)
        axes.errorbar(x + 0.12, mean, yerr=std, fmt="o", color="k", capsize=4, zorder=3, label=label)
    axes.set_xticks(range(len(found)), list(found))
    axes.set_xlim(-0.5, len(found) - 0.5)
    axes.set_ylabel("test accuracy (%)")
    title = f"{settings.identities} training identities" + (" (tiny smoke test)" if settings.tiny else "")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, help="training identities (15; 3 with --tiny)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seed_everything of each run (0 1 2)")
    parser.add_argument("--k", type=int, default=2, help="transfers per training image of the kN variant (2)")
    parser.add_argument("--max-steps", type=int, help="optimiser steps per fit, 3 a batch (1500; 6 with --tiny)")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="hard stop of each fit (trainer.max_time, 10)")
    parser.add_argument(
        "--config", default=default_config(), help=f"experiment config of every run ({default_config()})"
    )
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/low_data"))
    parser.add_argument("--table", type=Path, default=Path("docs/low_data.md"))
    parser.add_argument("--plot", type=Path, default=Path("docs/low_data.png"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--tiny", action="store_true", help="32 px, a narrow model, 2 batches: a smoke test")
    options = parser.parse_args(argv)
    settings = Settings(
        config=options.config,
        identities=options.identities or (3 if options.tiny else 15),
        max_steps=options.max_steps or (6 if options.tiny else 1500),
        max_minutes=options.max_minutes,
        tiny=options.tiny,
    )
    runs, k = options.runs_dir, options.k
    recorded = runs / "settings.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != asdict(settings):
        sys.exit(f"low_data: {runs} holds runs with other settings ({recorded}): use another --runs-dir")
    if not options.dry_run:
        runs.mkdir(parents=True, exist_ok=True)
        recorded.write_text(json.dumps(asdict(settings), indent=2) + "\n")

    run_cmd = Runner(options.dry_run)
    names = variants(k)
    for seed in options.seeds:  # seed by seed: each finished seed completes a paired row
        joint = runs / f"joint-s{seed}"
        for name in names:
            run = runs / f"{name}-s{seed}"
            if name.endswith("N"):
                synthesized = runs / f"synth-s{seed}"
                synthesize(run_cmd, settings, seed, k, joint, synthesized)
                data = yaml.safe_dump(kn_data(settings, synthesized, k), sort_keys=False)
                if options.dry_run:
                    print(f"# {run / 'data.yaml'}:\n" + "".join(f"#   {line}\n" for line in data.splitlines()))
                else:
                    run.mkdir(parents=True, exist_ok=True)
                    (run / "data.yaml").write_text(data)
            fit(run_cmd, settings, name, seed, run)
            test(run_cmd, settings, name, seed, run)
            if not options.dry_run:
                found = collect(runs, names, options.seeds)
                write_table(options.table, found, settings, options.seeds, k)
                write_plot(options.plot, found, settings)
    if not options.dry_run:
        print(f"low_data: {options.table}, {options.plot}\n" + options.table.read_text())


if __name__ == "__main__":
    main()

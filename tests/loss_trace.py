"""The loss terms of a config's first training batches, recorded, or compared with a recording.

A change that must not change what the training step computes (a restructuring, an exact speed-up)
gives, with the same seed and config, the same loss terms batch by batch. In float32 the GAN's
dynamics amplify rounding about tenfold every few batches (1e-7 at the first batch, ~1e-2 by the
20th for an equal computation summed in another order), so the recordings are in float64
(``--precision 64-true``), where an exact change stays within ~1e-14 over 20 batches.

    python tests/loss_trace.py compare tests/loss_trace_demo.json        # this tree against the recording
    python tests/loss_trace.py compare tests/loss_trace_synthesis.json
    python tests/loss_trace.py record OUT.json --precision 64-true \
        --config experiments/demo.yaml --config experiments/synthesis.yaml

``tests/loss_trace_demo.json`` and ``tests/loss_trace_synthesis.json`` were recorded on
2026-12-07 (2 CPU cores, one thread) at the commit before the objective moved to
``exprgan/objective.py`` (the synthesis configuration then one file, since an overlay on the
demo's; two terms had other names, ``g/tv`` and ``c/loss``, renamed in the files). A term
computed every k-th batch (lazy R1) repeats its last value in between, as Lightning logs it.
Nothing is logged or saved. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import Logger

from exprgan.cli import exprgan_cli
from exprgan.joint import OPTIMIZER_STEPS_PER_BATCH


class MemoryLogger(Logger):
    """Keeps every logged loss term (``d/``, ``g/``, ``c/``) of every training batch."""

    name, version = "memory", 0

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, dict[str, float]] = {}

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        terms = {k: float(v) for k, v in metrics.items() if k[:2] in ("d/", "g/", "c/")}
        if terms:
            self.rows.setdefault(int(step or 0), {}).update(terms)


def trace(configs: list[str], batches: int, seed: int, precision: str = "32-true") -> list[dict[str, float]]:
    """Every loss term of the first ``batches`` training batches of ``configs`` (composed) with ``seed``."""
    torch.set_num_threads(1)
    args = [
        *(f"--config={config}" for config in configs),
        f"--seed_everything={seed}",
        f"--trainer.precision={precision}",
        f"--trainer.max_steps={OPTIMIZER_STEPS_PER_BATCH * batches}",
        "--trainer.max_time=null",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=false",
        "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.log_every_n_steps=1",
    ]
    cli = exprgan_cli(args, run=False, save_config_callback=None)
    logger = MemoryLogger()
    cli.trainer.loggers = [logger]
    cli.trainer.fit(cli.model, cli.datamodule)
    return [dict(sorted(row.items())) for _, row in sorted(logger.rows.items())]


def compare(recorded: list[dict[str, float]], now: list[dict[str, float]], rtol: float, atol: float) -> int:
    """Print the largest differences; 0 when every term matches to ``rtol``/``atol``, else 1."""
    if len(recorded) != len(now):
        print(f"{len(recorded)} batches recorded, {len(now)} now")
        return 1
    worst, failures = 0.0, 0
    for batch, (old, new) in enumerate(zip(recorded, now)):
        if old.keys() != new.keys():
            print(
                f"batch {batch}: terms differ: only recorded {sorted(old.keys() - new.keys())}, "
                f"only now {sorted(new.keys() - old.keys())}"
            )
            failures += 1
            continue
        for key in old:
            error = abs(new[key] - old[key])
            worst = max(worst, error / max(abs(old[key]), 1e-12))
            if not math.isclose(new[key], old[key], rel_tol=rtol, abs_tol=atol):
                print(f"batch {batch}: {key} recorded {old[key]:.8g}, now {new[key]:.8g}")
                failures += 1
    terms = sum(len(row) for row in recorded)
    print(
        f"{terms} terms over {len(recorded)} batches; largest relative difference {worst:.2e}; "
        f"{failures} outside rtol {rtol:g} / atol {atol:g}"
    )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument("path", type=Path, help="the recording (JSON)")
    parser.add_argument(
        "--config", action="append", help="record: a config, repeat to compose (default: experiments/demo.yaml)"
    )
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="32-true", help="record: the trainer's precision (64-true: float64)")
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance (float64 recordings)")
    parser.add_argument("--atol", type=float, default=1e-12)
    args = parser.parse_args(argv)
    if args.action == "record":
        configs = args.config or ["experiments/demo.yaml"]
        rows = trace(configs, args.batches, args.seed, args.precision)
        record = {"configs": configs, "seed": args.seed, "precision": args.precision, "batches": rows}
        args.path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"{len(rows)} batches of {' + '.join(configs)} (seed {args.seed}) recorded in {args.path}")
        return 0
    record = json.loads(args.path.read_text())
    now = trace(record["configs"], len(record["batches"]), record["seed"], record.get("precision", "32-true"))
    return compare(record["batches"], now, args.rtol, args.atol)


if __name__ == "__main__":
    sys.exit(main())

"""Where a training batch's time goes: per phase, per network, per operator, against its FLOPs.

The model of one or more composed configs (their ``model:`` sections, as ``exprgan fit`` reads
them; no pretrained weights) trains on fixed in-memory batches of the configs' size (no data
loading), under a Lightning ``Trainer`` as in ``exprgan fit``. Measured after a warm-up:

- **phases**: wall time from the batch's start to D's optimiser step, to G's, to C's, and to the
  batch's end (logging and the configs' weight averaging, if any), read from optimiser step
  hooks: public torch API, so any checkout works (``--repo``), which is how two commits are
  compared back to back;
- **networks**: wall time of each network's forward calls (G, D, C's backbone and head);
- **operators** (``--ops``): ``torch.profiler``'s top operators by self time and the number of
  operators dispatched a batch (each costs a few microseconds of Python and dispatch);
- **FLOPs** of one batch (``torch.utils.flop_counter``) and the FLOP/s achieved.

    python benchmarks/profile_step.py                                    # the demo, 2 threads
    python benchmarks/profile_step.py --config experiments/demo.yaml --config experiments/synthesis.yaml
    python benchmarks/profile_step.py --threads 1 --ops
    python benchmarks/profile_step.py --repo /tmp/base                   # an older checkout's code and configs

Prints one table per run; figures are medians over ``--batches`` batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def merged_model_options(repo: Path, configs: list[str]) -> dict[str, Any]:
    """The ``model:`` sections of ``configs`` (in ``repo``) merged as composed configs are (nested mappings)."""

    def merge(into: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
        for key, value in update.items():
            into[key] = merge(dict(into.get(key) or {}), value) if isinstance(value, dict) else value
        return into

    options: dict[str, Any] = {}
    for config in configs:
        merge(options, (yaml.safe_load((repo / config).read_text()) or {}).get("model") or {})
    return options


def training_callbacks(repo: Path, configs: list[str]) -> list[Any]:
    """The configs' ``trainer.callbacks`` that change training (weight averaging), instantiated (the last
    config listing callbacks wins, as when they compose); checkpoints and image logs are left out."""
    import importlib

    from pytorch_lightning.callbacks import WeightAveraging

    entries: list[dict[str, Any]] = []
    for config in configs:
        listed = ((yaml.safe_load((repo / config).read_text()) or {}).get("trainer") or {}).get("callbacks")
        entries = listed if listed is not None else entries
    callbacks = []
    for entry in entries:
        module, _, name = entry["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        if issubclass(cls, WeightAveraging):
            callbacks.append(cls(**(entry.get("init_args") or {})))
    return callbacks


def data_options(repo: Path, configs: list[str]) -> dict[str, Any]:
    """The rendered data's ``init_args`` of the composed configs (image size, pairs a batch)."""
    args: dict[str, Any] = {}
    for config in configs:
        data = (yaml.safe_load((repo / config).read_text()) or {}).get("data") or {}
        args.update(data.get("init_args") or {})
    return args


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", help="configs to compose (default experiments/demo.yaml)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code and configs run")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--batches", type=int, default=20, help="timed batches (after --warmup)")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--ops", action="store_true", help="also profile operators (torch.profiler)")
    args = parser.parse_args(argv)
    configs = args.config or ["experiments/demo.yaml"]
    sys.path.insert(0, str(args.repo.resolve()))

    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, IterableDataset
    from torch.utils.flop_counter import FlopCounterMode

    from exprgan.joint import JointExprGAN

    try:  # as the exprgan command does (older checkouts have no such setting)
        from exprgan.runtime import keep_freed_memory

        keep_freed_memory()
    except ImportError:
        pass

    if args.threads:
        torch.set_num_threads(args.threads)
    options = merged_model_options(args.repo, configs)
    data = data_options(args.repo, configs)
    size, pairs = int(data.get("image_size", 64)), int(data.get("batch_size", 8))
    torch.manual_seed(0)
    model = JointExprGAN(num_expressions=7, image_size=size, **options)

    class FixedBatches(IterableDataset):
        def __init__(self, count: int) -> None:
            generator = torch.Generator().manual_seed(0)
            self.items = []
            for step in range(count):
                label_a = torch.full((pairs,), step % 7)
                self.items.append(
                    {
                        "image_a": torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1,
                        "image_b": torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1,
                        "label_a": label_a,
                        "label_b": (label_a + 1 + torch.arange(pairs) % 6) % 7,
                        "step": torch.tensor(step),
                    }
                )

        def __iter__(self):
            yield from self.items

    networks = {
        "G encoder": model.generator.encoder,
        "G decoder": model.generator.decoder,
        "D": model.discriminator,
        "C backbone": model.classifier.backbone,
        "C head (MLP)": model.classifier.head,
    }
    forward_time: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, module: torch.nn.Module) -> None:
        start: list[float] = []
        module.register_forward_pre_hook(lambda m, a: start.append(time.perf_counter()))
        module.register_forward_hook(lambda m, a, o: forward_time[name].append(time.perf_counter() - start.pop()))

    for name, module in networks.items():
        timed(name, module)

    class Phases(pl.Callback):
        """Timestamps: batch start, each optimiser's step (D, G, C), batch end."""

        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []
            self.marks: dict[str, float] = {}
            self.forward_mark: dict[str, int] = {}

        def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            owners = {"G": pl_module.generator, "D": pl_module.discriminator, "C": pl_module.classifier}
            for optimizer in trainer.optimizers:
                params = {id(p) for group in optimizer.param_groups for p in group["params"]}
                (name,) = [n for n, net in owners.items() if params & {id(p) for p in net.parameters()}]
                optimizer.register_step_post_hook(
                    lambda *a, name=name: self.marks.__setitem__(name, time.perf_counter())
                )

        def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
            self.marks = {"start": time.perf_counter()}
            self.forward_mark = {name: len(times) for name, times in forward_time.items()}

        def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int) -> None:
            m = {**self.marks, "end": time.perf_counter()}
            row = {
                "D phase (G forward, D)": m["D"] - m["start"],
                "G phase (C backbone, G)": m["G"] - m["D"],
                "C phase": m["C"] - m["G"],
                "logging, weight averaging": m["end"] - m["C"],
                "batch": m["end"] - m["start"],
            }
            for name, times in forward_time.items():
                row[f"forward {name}"] = sum(times[self.forward_mark.get(name, 0) :])
            self.rows.append(row)

    phases = Phases()
    total = args.warmup + args.batches
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_steps=3 * total,
        callbacks=[*training_callbacks(args.repo, configs), phases],
    )
    trainer.fit(model, DataLoader(FixedBatches(total), batch_size=None))
    rows = phases.rows[args.warmup :]
    batch = statistics.median(r["batch"] for r in rows)

    # FLOPs of 4 more batches (steps 0-3: lazy R1 once, as every 4 batches), counted on the trained model
    flop_counter = FlopCounterMode(display=False)
    counted = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_steps=3 * 4,
    )
    with flop_counter:
        counted.fit(model, DataLoader(FixedBatches(4), batch_size=None))
    flops = flop_counter.get_total_flops() / 4

    print(f"\n{' + '.join(configs)} in {args.repo}: {pairs} pairs at {size} px, {torch.get_num_threads()} threads")
    print(f"{'':32} {'median s':>9} {'share':>7}")
    for key in rows[0]:
        value = statistics.median(r[key] for r in rows)
        print(f"{key:32} {value:9.3f} {value / batch:7.1%}")
    print(
        f"FLOPs a batch {flops / 1e9:.2f} G (mean of 4), {flops / batch / 1e9:.1f} GFLOP/s; {pairs / batch:.1f} pairs/s"
    )

    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            again = pl.Trainer(
                accelerator="cpu",
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                max_steps=3 * 4,
            )
            again.fit(model, DataLoader(FixedBatches(4), batch_size=None))
        events = prof.key_averages()
        aten = [e for e in events if e.key.startswith("aten::")]
        calls = sum(e.count for e in aten) / 4
        print(f"operators: {calls:.0f} aten calls a batch")
        print(events.table(sort_by="self_cpu_time_total", row_limit=18))


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    main()

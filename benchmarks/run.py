"""exprgan's benchmark: training and inference speed, the data pipeline, FLOPs and the machine's limit.

Run from the repository root::

    python benchmarks/run.py [--quick] [--device cpu|cuda] [--out FILE] [--base OTHER_CHECKOUT]

Every speed is set against a reference no config can change, measured in the same run: the
256 px training step (the paper's model, built here from explicit options) against
torchvision's VGG19 ``features`` forward + backward alone, and the data loader against what
that step consumes. Prints one table and writes every figure as JSON. See
``benchmarks/README.md`` for what is measured, how, and the figures of past runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # only for --base: older checkouts augment with albumentations

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import yaml  # noqa: E402
from pytorch_lightning.callbacks import WeightAveraging  # noqa: E402
from torch.utils.data import DataLoader, IterableDataset  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from exprgan.cli import exprgan_cli  # noqa: E402
from exprgan.joint import OPTIMIZER_STEPS_PER_BATCH, JointExprGAN  # noqa: E402
from exprgan.losses import LossWeights  # noqa: E402
from exprgan.options import Networks, Optimization  # noqa: E402
from exprgan.runtime import keep_freed_memory  # noqa: E402

# dense bf16 tensor-core peaks (FLOP/s) for model FLOP utilisation; others report None
PEAK_BF16: dict[str, float] = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
PAPER_MS = {"synthesis": 12.98, "recognition": 12.06}  # TITAN Xp, per image (paper Sec. IV)

# The paper's model (Table I, Sec. IV-B), spelled out so that no config or changed default moves
# the reference: VGG19 classifier with a 4096-wide head, GAN width 64, perceptual loss on
# relu1_1..relu5_1, the paper's loss weights, no R1. Random initialisation: nothing is downloaded.
PAPER_NETWORKS = Networks(
    backbone="vgg19",
    pretrained=False,
    classifier_hidden_features=4096,
    expression_representation=True,
    perceptual_pretrained=False,
    perceptual_layer_weights=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
    gan_width=64,
    decoder_negative_slope=0.2,
    generator_identity_init=True,
    decoder_output_block=False,
    discriminator_conditioning="concat",
)
PAPER_LOSS_WEIGHTS = LossWeights(
    reconstruction=10.0,
    perceptual=15.0,
    pixel_sum=5.0,
    total_variation=5.0,
    adversarial=1.0,
    interpolation=1.0,
    classification=1.0,
    r1=0.0,
)
PAPER_OPTIMIZATION = Optimization(gan_lr=2e-4, gan_betas=(0.5, 0.999), classifier_lr=1e-3, classifier_momentum=0.9)


# The rendered-face configurations as a user runs them (composed configs), timed as configured
CONFIGURATIONS: dict[str, list[str]] = {
    "demo": ["experiments/demo.yaml"],
    "synthesis": ["experiments/demo.yaml", "experiments/synthesis.yaml"],
}


# --- settings ------------------------------------------------------------------------------
def settings(quick: bool, device: str, paper_batch: int | None) -> dict[str, Any]:
    """Sizes, batches and repetitions of every measurement."""
    cuda = device == "cuda"
    if quick:
        return {
            "demo": {"image_size": 32, "batch": 2},
            "paper": {"image_size": 64, "batch": 1, "hidden": 64},
            "warmup": 1,
            "timed": 1,
            "inference": {"image_size": 32, "batches": [1, 8], "timed": 1},
            "data": {"crops": 64, "image_size": 64, "batch": 8, "batches": 3, "workers": 2},
        }
    return {
        "demo": {"image_size": 64, "batch": 8, "timed": 20 if cuda else 10},  # ~1 s steps: more of them
        "paper": {"image_size": 256, "batch": paper_batch or (16 if cuda else 2), "hidden": 4096},
        "warmup": 5 if cuda else 1,
        "timed": 10 if cuda else 3,
        "inference": {"image_size": 256, "batches": [1, 32, 64] if cuda else [1, 32], "timed": 10 if cuda else 3},
        "data": {"crops": 512, "image_size": 256, "batch": 32, "batches": 10, "workers": 2},
    }


def cuda_options(device: str, compile_: bool) -> tuple[dict[str, Any], str]:
    """``JointExprGAN``'s speed options and the Trainer precision on ``device`` (CUDA only)."""
    if device != "cuda":
        return {}, "32-true"
    return {"channels_last": True, "compile": compile_}, "bf16-mixed"  # cuDNN's tensor-core kernels are NHWC


def paper_model(image_size: int, hidden: int, **speed: Any) -> JointExprGAN:
    """The paper's model at ``image_size`` (``hidden``: the head's width; 4096 in the paper), random init."""
    return JointExprGAN(
        num_expressions=7,
        image_size=image_size,
        networks=replace(PAPER_NETWORKS, classifier_hidden_features=hidden),
        loss_weights=PAPER_LOSS_WEIGHTS,
        optimization=PAPER_OPTIMIZATION,
        interpolation_p=0.5,
        synthesized_images=True,
        r1_every=1,
        **speed,
    )


def config_run(
    configs: list[str], image_size: int, pairs: int, **speed: Any
) -> tuple[JointExprGAN, list[pl.Callback], Any]:
    """The model, training callbacks and data of composed ``configs`` as ``exprgan fit`` builds them,
    at ``image_size`` with ``pairs`` a batch, offline: no pretrained weights, and of the callbacks
    those that change training (weight averaging), so nothing is written or logged. With R1 on
    (compiled graphs have no double backward) the model runs eager even when asked to compile."""
    args = [f"--config={REPO / c}" for c in configs] + ["--model.networks.pretrained=false", "--trainer.logger=false"]
    args += [f"--data.init_args.image_size={image_size}", f"--data.init_args.batch_size={pairs}"]
    cli = exprgan_cli(args, run=False, save_config_callback=None)
    model = cli.model
    for name, value in speed.items():
        model.hparams[name] = value and not (name == "compile" and model.weights.r1 > 0)
    return model, [c for c in cli.trainer.callbacks if isinstance(c, WeightAveraging)], cli.datamodule


# --- measuring -----------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def cpu_peak_rss() -> int:
    """Peak resident set size of this process so far, bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cuda_peak() -> int | None:
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def reset_cuda_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def median_time(run: Callable[[], Any], device: str, warmup: int, timed: int) -> float:
    """Median seconds of ``run()`` over ``timed`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(timed):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs of one ``run()`` (forward and backward), counted by ``torch.utils.flop_counter``."""
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return int(counter.get_total_flops())


def autocast(device: str, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


# --- training --------------------------------------------------------------------------------
class FixedPairs(IterableDataset):
    """Random pair batches made once, served in the target-expression cycle (no data loading cost)."""

    def __init__(self, pairs: int, size: int, steps: int, n: int = 7) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = [torch.rand(2, pairs, 3, size, size, generator=generator) * 2 - 1 for _ in range(2)]
        self.pairs, self.steps, self.n = pairs, steps, n

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for step in range(self.steps):
            label_a = torch.full((self.pairs,), step % self.n)
            label_b = (label_a + 1 + torch.arange(self.pairs) % (self.n - 1)) % self.n
            images = self.images[step % 2]
            yield {"image_a": images[0], "image_b": images[1], "label_a": label_a, "label_b": label_b, "step": step}


class StepTimer(pl.Callback):
    """Times every training batch (all three phases); counts the FLOPs of batch ``count_at``."""

    def __init__(self, device: str, count_at: int | None) -> None:
        self.device, self.count_at = device, count_at
        self.times: list[float] = []
        self.flops: int | None = None
        self._counter: FlopCounterMode | None = None
        self._start = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, index: int) -> None:
        if index == self.count_at:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        synchronize(self.device)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        synchronize(self.device)
        self.times.append(time.perf_counter() - self._start)
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops = int(self._counter.get_total_flops())
            self._counter = None


def train_steps(
    build: Callable[[], tuple[JointExprGAN, list[pl.Callback]]],
    config: dict[str, Any],
    device: str,
    precision: str,
    steps: int,
    count_at: int | None,
) -> tuple[StepTimer, JointExprGAN]:
    """``steps`` batches of ``config``'s size through a fresh ``build()`` model (and its training
    callbacks) in a Lightning Trainer."""
    torch.manual_seed(0)
    model, callbacks = build()
    timer = StepTimer(device, count_at)
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        benchmark=device == "cuda",
        max_steps=OPTIMIZER_STEPS_PER_BATCH * steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[*callbacks, timer],
    )
    trainer.fit(model, DataLoader(FixedPairs(config["batch"], config["image_size"], steps), batch_size=None))
    return timer, model


def benchmark_training(
    build: Callable[..., tuple[JointExprGAN, list[pl.Callback]]],
    config: dict[str, Any],
    s: dict[str, Any],
    device: str,
    compile_: bool,
) -> dict[str, Any]:
    """Seconds and pairs per second, FLOPs and achieved FLOP/s of ``build(**speed options)``'s training
    batch (its callbacks included). Lazy R1 makes every k-th batch dearer: the mean over whole
    cycles is what a run pays, the median a typical batch; FLOPs are counted over one cycle."""
    speed, precision = cuda_options(device, compile_)
    compiled = bool(speed.get("compile"))
    warmup = s["warmup"] + (2 if compiled else 0)
    timed = config.get("timed", s["timed"])
    pairs = config["batch"]
    reset_cuda_peak()
    timer, model = train_steps(lambda: build(**speed), config, device, precision, warmup + timed, None)
    cycle = int(model.hparams.r1_every) if model.weights.r1 > 0 else 1
    eager = {**speed, "compile": False}  # (compiled: counted on an eager twin, the same FLOPs)
    counters = [train_steps(lambda: build(**eager), config, device, "32-true", cycle, k)[0] for k in range(cycle)]
    flops = sum(int(c.flops or 0) for c in counters) / cycle  # batch k of a fresh run: R1 at 0 only
    times = timer.times[warmup:]
    whole = times[: len(times) // cycle * cycle] or times
    step = statistics.median(times)
    return {
        "image_size": config["image_size"],
        "pairs_per_step": pairs,
        "options": {name: model.hparams[name] for name in speed},  # as the model took them
        "precision": precision,
        "step_s": step,
        "mean_step_s": statistics.mean(whole),  # over whole R1 cycles: what a run pays a batch
        "step_times_s": timer.times,
        "pairs_per_s": pairs / step,
        "images_read_per_s": 2 * pairs / step,  # a pair is two faces from the loader (I_a, I_b)
        "flops_per_step": flops,  # the mean over an R1 cycle
        "flop_per_s": flops / statistics.mean(whole),
        "cuda_peak_bytes": cuda_peak(),
        "cpu_peak_rss_bytes_so_far": cpu_peak_rss(),
    }


def batches_in_budget(configs: list[str], trained: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """How many batches a configuration trains on this machine: as many as its wall-clock budget
    (``trainer.max_time``) buys at its mean seconds a batch plus its validation's share (an epoch's
    validation, timed on its own data, spread over the epoch's batches), at most its ``max_steps``."""
    model, _, data = config_run(configs, config["image_size"], config["batch"])
    data.setup("fit")
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    start = time.perf_counter()
    trainer.validate(model, data, verbose=False)
    validation = time.perf_counter() - start
    epoch = len(data.train_dataloader())
    per_batch = trained["mean_step_s"] + validation / epoch
    settings: dict[str, Any] = {}
    for path in configs:  # the last config that sets a value wins
        settings.update(yaml.safe_load((REPO / path).read_text()).get("trainer") or {})
    budget = 0.0
    if settings.get("max_time"):
        days, hours, minutes, seconds = (int(v) for v in str(settings["max_time"]).split(":"))
        budget = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    configured = settings["max_steps"] // OPTIMIZER_STEPS_PER_BATCH if settings.get("max_steps") else None
    in_time = int(budget / per_batch) if budget else None
    reached = min((n for n in (in_time, configured) if n is not None), default=None)
    return {
        "budget_s": budget,
        "validation_s_per_epoch": validation,
        "batches_per_epoch": epoch,
        "s_per_batch_with_validation": per_batch,
        "configured_batches": configured,  # max_steps / optimiser steps a batch
        "batches_in_budget": in_time,  # what max_time alone would allow
        "batches_trained": reached,  # the first limit reached
        "minutes_to_train": (reached * per_batch / 60) if reached else None,
    }


def benchmark_networks_alone(
    configs: list[str], config: dict[str, Any], s: dict[str, Any], device: str
) -> dict[str, Any]:
    """The rendered-face step's reference: its networks' forward + backward (weights trained) alone,
    once each at the shapes of a batch: G on the pairs (with interpolation: six decodes a pair), D on
    the real and generated faces it judges in D's phase, C's backbone on four faces a pair. No
    losses, no optimiser, no Lightning: how fast this machine runs the step's kernels."""
    model, _, _ = config_run(configs, config["image_size"], config["batch"])
    model = model.to(device).train()
    pairs, size = config["batch"], config["image_size"]
    generator = torch.Generator().manual_seed(0)
    a, b = ((torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1).to(device) for _ in range(2))
    y_a = torch.arange(pairs, device=device) % 7
    y_b = (y_a + 1) % 7

    def step() -> None:
        out = model.generator(a, b, y_a, y_b, interpolate=True)
        made = [out.image_c, out.image_d, out.recon_a, out.recon_b, out.interp_c, out.interp_d]
        judged = torch.cat([a, b, out.image_c, out.image_d, out.interp_c, out.interp_d])
        logits = model.discriminator(judged, torch.cat([y_a, y_b] * 3))
        features = model.classifier.forward_features(torch.cat([a, b, out.image_c, out.image_d]))
        loss = torch.cat(made).mean() + sum(scale.mean() for scale in logits) + features.mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    flops = count_flops(step)
    seconds = median_time(step, device, s["warmup"], config.get("timed", s["timed"]))
    return {"configs": configs, "step_s": seconds, "flops": flops, "flop_per_s": flops / seconds}


# --- the limit -------------------------------------------------------------------------------
def benchmark_limit(config: dict[str, Any], s: dict[str, Any], device: str) -> dict[str, Any]:
    """VGG19 ``features`` forward + backward (weights trained) alone, at the classifier's batch of the step."""
    batch = 4 * config["batch"]  # the classifier sees I_a, I_b, I_c, I_d of every pair
    size = config["image_size"]
    torch.manual_seed(0)
    network = torchvision.models.vgg19().features.to(device)
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    results: dict[str, Any] = {"batch": batch, "image_size": size}
    formats = {"fp32": (torch.contiguous_format, False)}
    if device == "cuda":
        formats["bf16_channels_last"] = (torch.channels_last, True)

    for name, (memory_format, bf16) in formats.items():
        net = network.to(memory_format=memory_format)
        x = images.contiguous(memory_format=memory_format)

        def step(net: torch.nn.Module = net, x: torch.Tensor = x, bf16: bool = bf16) -> None:
            with autocast(device, bf16):
                loss = net(x).float().mean()
            loss.backward()
            net.zero_grad(set_to_none=True)

        flops = count_flops(step)
        seconds = median_time(step, device, s["warmup"], s["timed"])
        results[name] = {"step_s": seconds, "flops": flops, "flop_per_s": flops / seconds}
    results["vgg19_fwd_bwd_flop_per_s"] = max(results[name]["flop_per_s"] for name in formats)
    return results


# --- inference -------------------------------------------------------------------------------
def inference_runs(
    model: JointExprGAN, identity: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, other: torch.Tensor
) -> dict[str, Callable[[], Any]]:
    """Synthesis (labels given: G alone, no classifier) and recognition of one batch."""
    return {
        "synthesis": lambda: model.transfer(identity, reference, labels, other),
        "recognition": lambda: model.predict_expressions(identity),
    }


def benchmark_inference(s: dict[str, Any], device: str) -> dict[str, Any]:
    """Synthesis (``JointExprGAN.transfer``) and recognition (``predict_expressions``) ms/image, per batch."""
    config = s["inference"]
    size = config["image_size"]
    torch.manual_seed(0)
    model = paper_model(size, s["paper"]["hidden"]).to(device).eval()
    cuda = device == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    n = model.hparams.num_expressions
    results: dict[str, Any] = {"synthesis": {}, "recognition": {}}
    for batch in config["batches"]:
        generator = torch.Generator().manual_seed(batch)
        identity = (torch.rand(batch, 3, size, size, generator=generator) * 2 - 1).to(device)
        reference = identity.flip(0)
        if cuda:
            identity, reference = (t.contiguous(memory_format=torch.channels_last) for t in (identity, reference))
        labels = torch.arange(batch, device=device) % n
        other = (labels + 1 + torch.arange(batch, device=device) % (n - 1)) % n  # never equal to labels
        for task, run in inference_runs(model, identity, reference, labels, other).items():

            def call(run: Callable[[], Any] = run) -> None:
                with torch.no_grad(), autocast(device, cuda):
                    run()

            flops = count_flops(call)
            seconds = median_time(call, device, 3 if cuda else 1, config["timed"])
            results[task][str(batch)] = {
                "ms_per_image": 1000 * seconds / batch,
                "flops_per_image": flops / batch,
                "flop_per_s": flops / seconds,
            }
    results["precision"] = "bf16-autocast, channels_last" if cuda else "fp32"
    results["image_size"] = size
    results["paper_ms_per_image_titan_xp"] = PAPER_MS
    return results


# --- data pipeline ---------------------------------------------------------------------------
def make_crop_cache(folder: Path, count: int, size: int) -> Path:
    """A cache in ``exprgan preprocess``'s format (:mod:`exprgan.cache`): ``count`` PNG crops, photo-like entropy."""
    from exprgan.cache import INDEX, build_tables, crop_name, listing_frame, listing_keys, write_table
    from exprgan.datamodules.rafdb import RAFDB_CLASSES

    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        split = "test" if k % 8 == 0 else "train"
        label = k % len(RAFDB_CLASSES)
        path = f"Image/original/{split}_{k:05d}.jpg"
        rows.append({"path": path, "label": label, "label_name": RAFDB_CLASSES[label], "split": split})
    listing = listing_frame(rows)
    records = {}
    for path, frame in listing_keys(listing):
        crop = crop_name(path, frame)
        smooth = cv2.resize(rng.uniform(0, 255, (8, 8, 3)).astype(np.float32), (size, size), cv2.INTER_CUBIC)
        image = np.clip(smooth + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
        (folder / crop).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / crop), image)
        records[(path, frame)] = {"crop": crop, "score": 1.0, "box": "[0, 0, 1, 1]", "n_faces": 1, "other_faces": "[]"}
    index, _ = build_tables(listing, records)
    write_table(folder / INDEX, index)
    return folder


def benchmark_data(s: dict[str, Any], device: str) -> dict[str, Any]:
    """Training images/s through ``RAFDBDataModule``'s own loader over a crop cache, default augmentation.

    Counted as the model receives them: batches from the loader, copied to ``device``, then the
    DataModule's ``on_after_batch_transfer`` (what Lightning does before ``training_step``).
    """
    from exprgan.datamodules import RAFDBDataModule

    config = s["data"]
    results: dict[str, Any] = {k: config[k] for k in ("crops", "image_size", "batch", "workers", "batches")}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cache = make_crop_cache(Path(folder), config["crops"], config["image_size"])
        results["cache_write_s"] = time.perf_counter() - start
        module = RAFDBDataModule(
            "/not-read",
            cache=str(cache),
            image_size=config["image_size"],
            batch_size=config["batch"],
            num_workers=config["workers"],
            steps_per_epoch=10_000,
        )
        module.setup("fit")
        loader = iter(module.train_dataloader())
        for _ in range(max(1, config["workers"])):  # every worker started and delivering
            next(loader)
        start = time.perf_counter()
        for _ in range(config["batches"]):
            moved = {k: v.to(device, non_blocking=True) for k, v in next(loader).items()}
            batch = module.on_after_batch_transfer(moved, 0)
        synchronize(device)
        seconds = time.perf_counter() - start
        del loader
    images = 2 * config["batch"] * config["batches"]  # image_a and image_b of every pair
    results.update(
        images_per_s=images / seconds,
        device=device,
        model_input=f"{batch['image_a'].dtype} {tuple(batch['image_a'].shape)}",
    )
    return results


# --- another checkout's benchmark ------------------------------------------------------------
def fraction_of_vgg19(results: dict[str, Any]) -> float:
    """The 256 px step's achieved FLOP/s over VGG19-alone FLOP/s, both from one results JSON of this script."""
    return float(results["train"]["paper_256"]["flop_per_s"] / results["limit"]["vgg19_fwd_bwd_flop_per_s"])


def run_base(base: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``base``'s own ``benchmarks/run.py`` (another checkout, e.g. a worktree of an older commit).

    Same interpreter and environment, same ``--device``/``--quick``/``--paper-batch``/``--compile``;
    its table goes to this process's output. Returns its step's fraction of VGG19 FLOP/s and all
    its figures.
    """
    script = base / "benchmarks" / "run.py"
    commit = subprocess.run(["git", "-C", str(base), "rev-parse", "HEAD"], capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "base.json"
        command = [sys.executable, str(script), "--device", args.device, "--out", str(out)]
        command += ["--quick"] * args.quick + ["--compile"] * args.compile
        command += ["--paper-batch", str(args.paper_batch)] if args.paper_batch else []
        print(f"running the base's benchmark: {' '.join(command)} (in {base})", flush=True)
        start = time.perf_counter()
        subprocess.run(command, cwd=base, check=True)
        wall = time.perf_counter() - start
        results = json.loads(out.read_text())
    return {
        "checkout": str(base),
        "commit": commit.stdout.strip() or None,
        "command": command,
        "wall_s": wall,
        "fraction_of_vgg19_flop_per_s": fraction_of_vgg19(results),
        "paper_step": {
            k: results["train"]["paper_256"][k] for k in ("image_size", "pairs_per_s", "flops_per_step", "flop_per_s")
        },
        "results": results,
    }


# --- report ----------------------------------------------------------------------------------
def environment(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_start": os.getloadavg(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True)
    info["commit"] = commit.stdout.strip() or None
    info["uncommitted_changes"] = bool(dirty.stdout.strip())
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """This run's figures against its fixed references: the step against VGG19 alone, the loader against the step."""
    step = results["train"]["paper_256"]
    out: dict[str, Any] = {
        "fraction_of_vgg19_flop_per_s": {
            "value": fraction_of_vgg19(results),
            "step_flop_per_s": step["flop_per_s"],
            "vgg19_fwd_bwd_flop_per_s": results["limit"]["vgg19_fwd_bwd_flop_per_s"],
        }
    }
    if "base" in results:
        base = results["base"]["fraction_of_vgg19_flop_per_s"]
        out["fraction_of_vgg19_flop_per_s"].update(base=base, base_commit=results["base"]["commit"])
    demo = results["train"]["demo"]
    out["fraction_of_networks_alone"] = {
        "value": demo["flop_per_s"] / results["networks_alone"]["flop_per_s"],
        "step_flop_per_s": demo["flop_per_s"],
        "networks_alone_flop_per_s": results["networks_alone"]["flop_per_s"],
    }
    consumed = step["images_read_per_s"]
    delivered = results["data"]["images_per_s"]
    out["data_over_step"] = {
        "value": delivered / consumed,
        "loader_images_per_s": delivered,
        "step_consumes_images_per_s": consumed,
    }
    return out


def cuda_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The GPU's figures next to the paper's: model FLOP utilisation, synthesis and recognition ms/image."""
    step = results["train"]["paper_256"]
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return {
        "gpu": name,
        "precision": step["precision"],
        "pairs_per_s": step["pairs_per_s"],
        "mfu_bf16": step["flop_per_s"] / peak if peak else None,
        "synthesis_ms_per_image": {b: v["ms_per_image"] for b, v in results["inference"]["synthesis"].items()},
        "recognition_ms_per_image": {b: v["ms_per_image"] for b, v in results["inference"]["recognition"].items()},
        "paper_ms_per_image": PAPER_MS,
    }


def g(value: float | None, unit: str = "") -> str:
    """``value`` with a T/G/M prefix, three significant digits below a million."""
    if value is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def table(results: dict[str, Any]) -> str:
    """The one table: metric, value."""
    rows: list[tuple[str, str]] = []
    for name, entry in results["train"].items():
        label = f"train {name} ({entry['image_size']} px, {entry['pairs_per_step']} pairs): s/batch"
        rows.append((label, f"{entry['step_s']:.3f} (mean {entry['mean_step_s']:.3f})"))
        rows.append(("  pairs/s", g(entry["pairs_per_s"])))
        rows.append(("  FLOPs per step", g(entry["flops_per_step"])))
        rows.append(("  achieved FLOP/s", g(entry["flop_per_s"])))
        if entry["cuda_peak_bytes"] is not None:
            rows.append(("  CUDA peak memory", g(entry["cuda_peak_bytes"], "B")))
        budget = results["budgets"].get(name)
        if budget and budget["batches_trained"]:
            label = f"  batches it trains (validation {budget['validation_s_per_epoch']:.1f} s an epoch)"
            minutes = f"{budget['minutes_to_train']:.1f} of its {budget['budget_s'] / 60:.0f} minutes"
            rows.append((label, f"{budget['batches_trained']:,} of {budget['configured_batches']:,} in {minutes}"))
    alone = results["networks_alone"]
    rows.append(("rendered-face networks fwd+bwd alone: FLOP/s", g(alone["flop_per_s"])))
    rows.append(
        (
            "  train demo FLOP/s / networks-alone FLOP/s",
            f"{results['ratios']['fraction_of_networks_alone']['value']:.3f}",
        )
    )
    limit = results["limit"]
    label = f"VGG19 fwd+bwd alone (batch {limit['batch']}, {limit['image_size']} px): FLOP/s"
    rows.append((label, g(limit["vgg19_fwd_bwd_flop_per_s"])))
    fraction = results["ratios"]["fraction_of_vgg19_flop_per_s"]
    label = f"train paper_256 ({results['train']['paper_256']['image_size']} px) FLOP/s / VGG19-alone FLOP/s"
    rows.append((label, f"{fraction['value']:.3f}"))
    if "base" in results:
        commit = (fraction["base_commit"] or "?")[:7]
        rows.append((f"  base {commit}'s, its run just before", f"{fraction['base']:.3f}"))
        base_step = results["base"]["paper_step"]
        rows.append(("  base: FLOPs per step", g(base_step["flops_per_step"])))
        rows.append(("  base: pairs/s", g(base_step["pairs_per_s"])))
    inference = results["inference"]
    for task in ("synthesis", "recognition"):
        for batch, entry in inference[task].items():
            label = f"{task} ms/image, batch {batch} ({inference['image_size']} px)"
            rows.append((label, f"{entry['ms_per_image']:.2f}"))
    data = results["data"]
    label = f"data images/s ({data['image_size']} px, augmented, {data['workers']} workers, on {data['device']})"
    rows.append((label, g(data["images_per_s"])))
    ratio = results["ratios"]["data_over_step"]
    rows.append(("  over the images/s the paper_256 step reads", f"{ratio['value']:.3g}x"))
    rows.append(("peak CPU RSS", g(results["peak_memory"]["cpu_rss_bytes"], "B")))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'metric':<{width}}  {'value':>18}", "-" * (width + 20)]
    lines += [f"{a:<{width}}  {b:>18}" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in under a minute")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results-<device>[-quick].json)")
    parser.add_argument("--paper-batch", type=int, help="pairs per step at 256 px (default: 2 on CPU, 16 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="CUDA: torch.compile the model (eager otherwise)")
    parser.add_argument(
        "--base",
        type=Path,
        metavar="CHECKOUT",
        help="first run CHECKOUT's own benchmarks/run.py (e.g. a git worktree of an older commit) "
        "with the same options, and report its step's fraction of VGG19 FLOP/s next to this one's",
    )
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the exprgan command does
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    if args.compile and args.device != "cuda":
        parser.error("--compile is a CUDA option (use it with --device cuda)")
    if args.base and not (args.base / "benchmarks" / "run.py").is_file():
        parser.error(f"--base {args.base}: no benchmarks/run.py in that folder")
    out = args.out or REPO / "benchmarks" / f"results-{args.device}{'-quick' if args.quick else ''}.json"
    s = settings(args.quick, args.device, args.paper_batch)
    base = run_base(args.base, args) if args.base else None  # first: its run then ours, back to back
    started = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(args.device), "settings": s}
    results["paper_model"] = {
        "networks": asdict(PAPER_NETWORKS),
        "loss_weights": asdict(PAPER_LOSS_WEIGHTS),
        "optimization": asdict(PAPER_OPTIMIZATION),
    }
    results["data"] = benchmark_data(s, args.device)  # first: before the training runs fill memory
    demo, paper = s["demo"], s["paper"]

    def build_config(configs: list[str]) -> Callable[..., tuple[JointExprGAN, list[pl.Callback]]]:
        return lambda **speed: config_run(configs, demo["image_size"], demo["batch"], **speed)[:2]

    def build_paper(**speed: Any) -> tuple[JointExprGAN, list[pl.Callback]]:
        return paper_model(paper["image_size"], paper["hidden"], **speed), []

    results["train"] = {
        name: benchmark_training(build_config(configs), demo, s, args.device, args.compile)
        for name, configs in CONFIGURATIONS.items()
    }
    results["train"]["paper_256"] = benchmark_training(build_paper, paper, s, args.device, args.compile)
    results["budgets"] = {
        name: batches_in_budget(configs, results["train"][name], demo) for name, configs in CONFIGURATIONS.items()
    }
    results["networks_alone"] = benchmark_networks_alone(CONFIGURATIONS["demo"], demo, s, args.device)
    results["limit"] = benchmark_limit(paper, s, args.device)
    results["inference"] = benchmark_inference(s, args.device)
    results["peak_memory"] = {"cpu_rss_bytes": cpu_peak_rss(), "cuda_max_allocated_bytes": cuda_peak()}
    if base is not None:
        results["base"] = base
    results["ratios"] = ratios(results)
    if args.device == "cuda":
        results["cuda"] = cuda_summary(results)
    results["wall_s"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwall time {results['wall_s']:.0f} s; figures written to {out}")
    return results


if __name__ == "__main__":
    main()

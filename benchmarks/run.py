"""exprgan's benchmark: training and inference speed, the data pipeline, FLOPs and the machine's limit.

Run from the repository root::

    python benchmarks/run.py [--quick] [--device cpu|cuda] [--out benchmarks/results-<device>.json]

Prints one table and writes every figure as JSON. See ``benchmarks/README.md`` for what
is measured, how, and the figures of past runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torch.utils.data import DataLoader, IterableDataset  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from exprgan import fast  # noqa: E402
from exprgan.joint import JointExprGAN  # noqa: E402

# dense bf16 tensor-core peaks (FLOP/s) for model FLOP utilisation; others report None
PEAK_BF16: dict[str, float] = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
PAPER_MS = {"synthesis": 12.98, "recognition": 12.06}  # TITAN Xp, per image (paper Sec. IV)


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
            "inference": {"image_size": 32, "batches": [1, 32], "timed": 1},
            "data": {"crops": 64, "image_size": 64, "batch": 8, "batches": {"png": 3, "memmap": 6}, "workers": 2},
        }
    return {
        "demo": {"image_size": 64, "batch": 8, "timed": 20 if cuda else 10},  # ~1 s steps: more of them
        "paper": {"image_size": 256, "batch": paper_batch or (16 if cuda else 2), "hidden": 4096},
        "warmup": 5 if cuda else 1,
        "timed": 10 if cuda else 3,
        "inference": {"image_size": 256, "batches": [1, 32, 64] if cuda else [1, 32], "timed": 10 if cuda else 3},
        "data": {"crops": 512, "image_size": 256, "batch": 32, "batches": {"png": 6, "memmap": 30}, "workers": 2},
    }


def model_options(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """``JointExprGAN`` arguments of an experiment YAML, offline (no pretrained weights), plus ``config``."""
    path = REPO / "experiments" / ("demo.yaml" if name == "demo" else "rafdb.yaml")
    options = dict(yaml.safe_load(path.read_text())["model"])
    options.update(pretrained=False, perceptual_pretrained=False, image_log_every_n_steps=0)
    options["image_size"] = config["image_size"]
    if "hidden" in config:
        options["classifier_hidden_features"] = config["hidden"]
    return options


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
    options: dict[str, Any], pairs: int, device: str, precision: str, steps: int, count_at: int | None
) -> tuple[StepTimer, JointExprGAN]:
    """``steps`` training batches of a fresh model through a Lightning Trainer; their timer."""
    torch.manual_seed(0)
    model = JointExprGAN(**options)
    timer = StepTimer(device, count_at)
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        benchmark=device == "cuda",
        max_steps=3 * steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[timer],
    )
    data = DataLoader(FixedPairs(pairs, options["image_size"], steps), batch_size=None)
    trainer.fit(model, data)
    return timer, model


FAST_SWITCHES = ("reuse_features", "fused_norm", "channels_last", "compile")


def fast_options(device: str, compile_: bool) -> dict[str, Any]:
    """The fast path's ``JointExprGAN`` switches on ``device``."""
    options: dict[str, Any] = {"reuse_features": True, "fused_norm": True, "compile": compile_}
    if device == "cuda":
        options["channels_last"] = True  # cuDNN's tensor-core kernels are NHWC
    return options


def benchmark_training(name: str, config: dict[str, Any], s: dict[str, Any], device: str, compile_: bool) -> dict:
    """Plain eager fp32 path against the fast path, side by side: pairs/s, FLOPs, FLOP/s, memory."""
    base = model_options(name, config)
    paths = {
        "plain": (base, "32-true"),
        "fast": ({**base, **fast_options(device, compile_)}, "bf16-mixed" if device == "cuda" else "32-true"),
    }
    result: dict[str, Any] = {"image_size": config["image_size"], "pairs_per_step": config["batch"]}
    for path, (options, precision) in paths.items():
        reset_cuda_peak()
        warmup = s["warmup"] + (2 if options.get("compile") else 0)
        compiled = bool(options.get("compile"))
        timed = config.get("timed", s["timed"])
        timer, _ = train_steps(options, config["batch"], device, precision, warmup + timed, None if compiled else 0)
        flops = timer.flops
        if flops is None:  # compiled: count on an eager twin (same FLOPs, no recompilation under the counter)
            eager, _ = train_steps({**options, "compile": False}, config["batch"], device, "32-true", 1, 0)
            flops = eager.flops
        step = statistics.median(timer.times[warmup:])
        result[path] = {
            "options": {k: v for k, v in options.items() if k in FAST_SWITCHES},
            "precision": precision,
            "step_s": step,
            "step_times_s": timer.times,
            "pairs_per_s": config["batch"] / step,
            "flops_per_step": flops,
            "flop_per_s": flops / step,
            "cuda_peak_bytes": cuda_peak(),
            "cpu_peak_rss_bytes_so_far": cpu_peak_rss(),
        }
    result["speedup"] = result["fast"]["pairs_per_s"] / result["plain"]["pairs_per_s"]
    # the fast path's useful work at the plain path's FLOP count (the step's algorithmic work)
    result["fast"]["model_flop_per_s"] = result["plain"]["flops_per_step"] / result["fast"]["step_s"]
    return result


# --- the limit -------------------------------------------------------------------------------
def benchmark_limit(config: dict[str, Any], s: dict[str, Any], device: str) -> dict[str, Any]:
    """VGG19 ``features`` forward + backward (weights trained) alone, at the classifier's batch of the step."""
    import torchvision

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
    best = max(v["flop_per_s"] for k, v in results.items() if isinstance(v, dict))
    results["vgg19_fwd_bwd_flop_per_s"] = best
    return results


# --- inference -------------------------------------------------------------------------------
def inference_runs(
    model: JointExprGAN, identity: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, other: torch.Tensor
) -> dict[str, Callable[[], Any]]:
    """Synthesis (fast and plain ``transfer``) and recognition of one batch."""
    return {
        "synthesis": lambda: fast.transfer(model.generator, identity, reference, labels, other),
        "synthesis_plain": lambda: model.generator.transfer(identity, reference, labels, other),
        "recognition": lambda: model.predict_expressions(identity),
    }


def benchmark_inference(s: dict[str, Any], device: str) -> dict[str, Any]:
    """Synthesis (``transfer``) and recognition (``predict_expressions``) ms/image, per batch size."""
    config = s["inference"]
    options = model_options("paper", {"image_size": config["image_size"], "hidden": s["paper"]["hidden"]})
    torch.manual_seed(0)
    model = JointExprGAN(**options).to(device).eval()
    cuda = device == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    n = model.hparams.num_expressions
    results: dict[str, Any] = {"synthesis": {}, "recognition": {}, "synthesis_plain": {}}
    for batch in config["batches"]:
        generator = torch.Generator().manual_seed(batch)
        identity = (torch.rand(batch, 3, config["image_size"], config["image_size"], generator=generator) * 2 - 1).to(
            device
        )
        reference = identity.flip(0)
        if cuda:
            identity, reference = (t.contiguous(memory_format=torch.channels_last) for t in (identity, reference))
        labels = torch.arange(batch, device=device) % n
        other = (labels + 1 + torch.arange(batch, device=device) % (n - 1)) % n
        for task, run in inference_runs(model, identity, reference, labels, other).items():

            def call(run: Callable[[], Any] = run) -> None:
                with torch.no_grad(), autocast(device, cuda):
                    run()

            flops = count_flops(call)
            seconds = median_time(call, device, 1 if not cuda else 3, config["timed"])
            results[task][str(batch)] = {
                "ms_per_image": 1000 * seconds / batch,
                "flops_per_image": flops / batch,
                "flop_per_s": flops / seconds,
            }
    results["precision"] = "bf16-autocast, channels_last" if cuda else "fp32"
    results["image_size"] = config["image_size"]
    results["paper_ms_per_image_titan_xp"] = PAPER_MS
    return results


# --- data pipeline ---------------------------------------------------------------------------
def make_crop_cache(folder: Path, count: int, size: int) -> Path:
    """A cache in ``exprgan preprocess``'s format: ``count`` PNG crops with photo-like entropy."""
    import cv2

    from exprgan.datamodules.images import listing_frame
    from exprgan.datamodules.rafdb import RAFDB_CLASSES

    rng = np.random.default_rng(0)
    rows = []
    for k in range(count):
        split = "test" if k % 8 == 0 else "train"
        crop = f"crops/Image/original/{split}_{k:05d}_jpg.png"
        smooth = cv2.resize(rng.uniform(0, 255, (8, 8, 3)).astype(np.float32), (size, size), cv2.INTER_CUBIC)
        image = np.clip(smooth + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
        (folder / crop).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / crop), image)
        label = k % len(RAFDB_CLASSES)
        rows.append(
            {
                "path": f"Image/original/{split}_{k:05d}.jpg",
                "label": label,
                "label_name": RAFDB_CLASSES[label],
                "split": split,
                "crop": crop,
            }
        )
    index = listing_frame(rows, extra=("crop",))
    index = index.assign(score=1.0, box="[0, 0, 1, 1]", n_faces=1, other_faces="[]")
    index.to_csv(folder / "index.csv", index=False)
    return folder


def benchmark_data(s: dict[str, Any], device: str) -> dict[str, Any]:
    """Training images/s through ``RAFDBDataModule``'s own loader, from PNG crops and from the memmap.

    Two rates: batches as they leave the loader, and as the model receives them on ``device``
    (copied there, then the DataModule's ``on_after_batch_transfer``: memmap batches travel as
    uint8 and become float on the device).
    """
    from exprgan.datamodules import RAFDBDataModule

    config = s["data"]
    results: dict[str, Any] = {k: config[k] for k in ("crops", "image_size", "batch", "workers")}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cache = make_crop_cache(Path(folder), config["crops"], config["image_size"])
        results["cache_write_s"] = time.perf_counter() - start
        for source in ("png", "memmap"):
            module = RAFDBDataModule(
                "/not-read",
                cache=str(cache),
                cache_format=source,
                image_size=config["image_size"],
                batch_size=config["batch"],
                num_workers=config["workers"],
                steps_per_epoch=10_000,
            )
            start = time.perf_counter()
            module.setup("fit")  # memmap: builds the array (once per cache and size)
            setup_s = time.perf_counter() - start
            loader = iter(module.train_dataloader())
            next(loader)  # workers started
            batches = config["batches"][source]
            images = 2 * config["batch"] * batches
            # the pipeline's output: batches as they leave the loader for the device
            start = time.perf_counter()
            for _ in range(batches):
                raw = next(loader)
            loader_s = time.perf_counter() - start
            # and as the model receives them on the device (memmap: uint8 -> float there)
            start = time.perf_counter()
            for _ in range(batches):
                moved = {k: v.to(device, non_blocking=True) for k, v in next(loader).items()}
                batch = module.on_after_batch_transfer(moved, 0)
            synchronize(device)
            float_s = time.perf_counter() - start
            del loader
            results[source] = {
                "images_per_s": images / loader_s,
                "model_input_images_per_s": images / float_s,
                "model_input_device": device,
                "setup_s": setup_s,
                "loader_output": f"{raw['image_a'].dtype} {tuple(raw['image_a'].shape)}",
                "model_input": f"{batch['image_a'].dtype} {tuple(batch['image_a'].shape)}",
                "augmentation": "albumentations" if source == "png" else "FastAugmenter (numpy/cv2)",
            }
    return results


# --- report ----------------------------------------------------------------------------------
def environment(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def acceptance(results: dict[str, Any], device: str) -> dict[str, Any]:
    """The issue's four criteria, evaluated on this run's figures."""
    paper = results["train"]["paper_256"]
    limit = results["limit"]["vgg19_fwd_bwd_flop_per_s"]
    consumed = 2 * paper["fast"]["pairs_per_s"]  # images/s the training step takes in
    memmap = results["data"]["memmap"]["images_per_s"]
    out: dict[str, Any] = {
        "1_fraction_of_vgg19_flop_per_s": {
            "fast": paper["fast"]["flop_per_s"] / limit,
            "plain": paper["plain"]["flop_per_s"] / limit,
            "fast_model_flops": paper["fast"]["model_flop_per_s"] / limit,
            "target": 0.6,
        },
        "2_fast_over_plain": {"value": paper["speedup"], "target": 1.3},
        "3_data_images_per_s": {
            "value": memmap,
            "target": 1500,
            "training_step_consumes": consumed,
            "ratio": memmap / consumed,
            "ratio_target": 5,
            "as_model_input": results["data"]["memmap"]["model_input_images_per_s"],
        },
    }
    out["1_fraction_of_vgg19_flop_per_s"]["pass"] = out["1_fraction_of_vgg19_flop_per_s"]["fast"] >= 0.6
    out["2_fast_over_plain"]["pass"] = paper["speedup"] >= 1.3
    out["3_data_images_per_s"]["pass"] = memmap >= 1500 and memmap >= 5 * consumed
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        out["4_cuda"] = {
            "gpu": name,
            "precision": paper["fast"]["precision"],
            "pairs_per_s": paper["fast"]["pairs_per_s"],
            "mfu_bf16": paper["fast"]["model_flop_per_s"] / peak if peak else None,
            "synthesis_ms_per_image": {b: v["ms_per_image"] for b, v in results["inference"]["synthesis"].items()},
            "recognition_ms_per_image": {b: v["ms_per_image"] for b, v in results["inference"]["recognition"].items()},
            "paper_ms_per_image": PAPER_MS,
        }
    return out


def table(results: dict[str, Any]) -> str:
    """The one table: metric, plain, fast."""

    def g(value: float | None, unit: str = "") -> str:
        if value is None:
            return "-"
        for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
            if abs(value) >= scale:
                return f"{value / scale:.2f} {prefix}{unit}"
        return f"{value:.3g} {unit}".rstrip()

    rows: list[tuple[str, str, str]] = []
    for name, entry in results["train"].items():
        label = f"train {name} ({entry['image_size']} px, {entry['pairs_per_step']} pairs)"
        rows.append((f"{label}: Pairs/s", g(entry["plain"]["pairs_per_s"]), g(entry["fast"]["pairs_per_s"])))
        rows.append(("  FLOPs per step", g(entry["plain"]["flops_per_step"]), g(entry["fast"]["flops_per_step"])))
        rows.append(("  achieved FLOP/s", g(entry["plain"]["flop_per_s"]), g(entry["fast"]["flop_per_s"])))
        rows.append(("  speedup fast/plain", "", f"{entry['speedup']:.2f}x"))
        peak = [entry[p]["cuda_peak_bytes"] for p in ("plain", "fast")]
        if peak[0] is not None:
            rows.append(("  CUDA peak memory", g(peak[0], "B"), g(peak[1], "B")))
    limit = results["limit"]
    label = f"VGG19 fwd+bwd alone (batch {limit['batch']}, {limit['image_size']} px): FLOP/s"
    rows.append((label, "", g(limit["vgg19_fwd_bwd_flop_per_s"])))
    inference = results["inference"]
    for batch, entry in inference["recognition"].items():
        rows.append(
            (f"recognition ms/image, batch {batch} ({inference['image_size']} px)", "", f"{entry['ms_per_image']:.2f}")
        )
    for batch, entry in inference["synthesis"].items():
        plain = inference["synthesis_plain"][batch]["ms_per_image"]
        rows.append((f"synthesis ms/image, batch {batch}", f"{plain:.2f}", f"{entry['ms_per_image']:.2f}"))
    data = results["data"]
    label = f"data images/s ({data['image_size']} px, augmented, {data['workers']} workers): png | memmap"
    rows.append((label, g(data["png"]["images_per_s"]), g(data["memmap"]["images_per_s"])))
    floats = (data["png"]["model_input_images_per_s"], data["memmap"]["model_input_images_per_s"])
    label = f"  as float model input on {data['png']['model_input_device']}: png | memmap"
    rows.append((label, g(floats[0]), g(floats[1])))
    rows.append(("peak CPU RSS", "", g(results["peak_memory"]["cpu_rss_bytes"], "B")))
    for key, value in results["acceptance"].items():
        if "pass" in value:
            shown = value.get("fast", value.get("value"))
            rows.append((f"acceptance {key}", "", f"{shown:.3g} ({'pass' if value['pass'] else 'FAIL'})"))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'metric':<{width}}  {'plain':>14}  {'fast':>14}", "-" * (width + 32)]
    lines += [f"{a:<{width}}  {b:>14}  {c:>14}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in well under a minute")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results-<device>[-quick].json)")
    parser.add_argument("--paper-batch", type=int, help="pairs per step at 256 px (default: 2 on CPU, 16 on CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile on the fast path as well")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    out = args.out or REPO / "benchmarks" / f"results-{args.device}{'-quick' if args.quick else ''}.json"
    s = settings(args.quick, args.device, args.paper_batch)
    started = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(args.device), "settings": s}
    results["data"] = benchmark_data(s, args.device)  # first: before the training runs fill memory
    results["train"] = {
        "demo_64": benchmark_training("demo", s["demo"], s, args.device, args.compile),
        "paper_256": benchmark_training("paper", s["paper"], s, args.device, args.compile),
    }
    results["limit"] = benchmark_limit(s["paper"], s, args.device)
    results["inference"] = benchmark_inference(s, args.device)
    results["peak_memory"] = {"cpu_rss_bytes": cpu_peak_rss(), "cuda_max_allocated_bytes": cuda_peak()}
    results["acceptance"] = acceptance(results, args.device)
    results["wall_s"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwall time {results['wall_s']:.0f} s; figures written to {out}")
    return results


if __name__ == "__main__":
    main()

"""benchmarks/run.py: its reference is the paper's model, and a quick run writes every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from exprgan.losses import LossWeights
from exprgan.options import Networks, Optimization
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "run.py"

# stands in for an older checkout's benchmarks/run.py (this script's output format): records its
# arguments; its step runs at half its VGG19 figure
FAKE_BASE = """\
import json, sys
args = sys.argv[1:]
step = {"image_size": 64, "pairs_per_s": 0.25, "flops_per_step": 7e10, "flop_per_s": 1.75e10}
figures = {"argv": args, "train": {"paper_256": step}, "limit": {"vgg19_fwd_bwd_flop_per_s": 3.5e10}}
open(args[args.index("--out") + 1], "w").write(json.dumps(figures))
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The benchmark script, imported from its path (benchmarks/ is not a package)."""
    return load_script(SCRIPT, "benchmark_run")


def test_the_reference_step_is_the_papers_model_offline(bench: ModuleType) -> None:
    # spelled out in the script (no YAML), equal to the library's paper defaults but for the weights
    assert bench.PAPER_NETWORKS == replace(Networks(), pretrained=False, perceptual_pretrained=False)
    assert bench.PAPER_NETWORKS.backbone == "vgg19" and bench.PAPER_NETWORKS.gan_width == 64
    assert len(bench.PAPER_NETWORKS.perceptual_layer_weights) == 5  # relu1_1 .. relu5_1
    assert bench.PAPER_LOSS_WEIGHTS == LossWeights()
    assert bench.PAPER_OPTIMIZATION == Optimization()


def test_the_fraction_is_read_from_the_step_and_the_limit(bench: ModuleType) -> None:
    results = {"train": {"paper_256": {"flop_per_s": 7.0}}, "limit": {"vgg19_fwd_bwd_flop_per_s": 10.0}}
    assert bench.fraction_of_vgg19(results) == pytest.approx(0.7)


def test_quick_run_writes_every_figure_next_to_a_base_checkouts(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "benchmarks").mkdir(parents=True)
    (base / "benchmarks" / "run.py").write_text(FAKE_BASE)
    out = tmp_path / "results.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--out", str(out), "--base", str(base)]
    completed = subprocess.run(
        command,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # steady on a busy machine
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(out.read_text())
    expected = {"environment", "paper_model", "train", "limit", "inference", "data", "base", "ratios", "budgets"}
    assert expected | {"networks_alone"} <= results.keys()
    for name in ("demo", "synthesis", "paper_256"):
        entry = results["train"][name]
        assert entry["pairs_per_s"] > 0 and entry["flops_per_step"] > 0 and entry["flop_per_s"] > 0
    for name, minutes, batches in (("demo", 14, 2100), ("synthesis", 45, 6300)):  # each config's own limits
        budget = results["budgets"][name]
        assert budget["budget_s"] == 60 * minutes and budget["configured_batches"] == batches
        assert budget["batches_in_budget"] == int(budget["budget_s"] / budget["s_per_batch_with_validation"])
        assert budget["batches_trained"] == min(budget["batches_in_budget"], batches)
    alone = results["ratios"]["fraction_of_networks_alone"]
    assert alone["value"] == pytest.approx(
        results["train"]["demo"]["flop_per_s"] / results["networks_alone"]["flop_per_s"]
    )
    for task in ("synthesis", "recognition"):
        for figures in results["inference"][task].values():
            assert figures["ms_per_image"] > 0 and figures["flops_per_image"] > 0
    assert results["limit"]["vgg19_fwd_bwd_flop_per_s"] > 0
    assert results["data"]["images_per_s"] > 0

    step, check = results["train"]["paper_256"], results["ratios"]
    fraction = check["fraction_of_vgg19_flop_per_s"]
    assert fraction["value"] == pytest.approx(step["flop_per_s"] / results["limit"]["vgg19_fwd_bwd_flop_per_s"])
    assert step["images_read_per_s"] == pytest.approx(2 * step["pairs_per_s"])  # I_a and I_b of every pair
    ratio = check["data_over_step"]
    assert ratio["value"] == pytest.approx(results["data"]["images_per_s"] / step["images_read_per_s"])

    # the base ran first with this run's options; its fraction stands next to this one's
    assert results["base"]["results"]["argv"][:2] == ["--device", "cpu"] and "--quick" in results["base"]["command"]
    assert fraction["base"] == pytest.approx(0.5) and results["base"]["paper_step"]["flops_per_step"] == 7e10
    assert "VGG19-alone FLOP/s" in completed.stdout and "base" in completed.stdout  # the table
    assert "images/s the paper_256 step reads" in completed.stdout

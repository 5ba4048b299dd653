"""The CLI: every config parses, the demo config trains, W&B offline runs, DDP on 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import wandb
import yaml

from exprgan.cli import TOOLS, cli_main
from exprgan.datamodules import EXPRESSIONS
from exprgan.joint import JointExprGAN

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
# training configs; overlays and ablations are partial configs composed with one; sweeps are W&B's
OVERLAYS = {  # overlay: the config it goes on
    EXPERIMENTS / "synthesis.yaml": EXPERIMENTS / "demo.yaml",
    EXPERIMENTS / "wild.yaml": EXPERIMENTS / "demo.yaml",
}
CONFIGS = sorted(p for p in EXPERIMENTS.glob("*.yaml") if p not in OVERLAYS)
ABLATIONS = sorted((EXPERIMENTS / "ablations").glob("*.yaml"))
SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))

# the one place the tests spell the networks' flags: a narrow model, no ImageNet weights
NETWORKS = "--model.networks."
TINY_MODEL = [
    f"{NETWORKS}gan_width=8",
    f"{NETWORKS}classifier_hidden_features=32",
    f"{NETWORKS}perceptual_layer_weights=[1.0]",
    f"{NETWORKS}pretrained=false",
    f"{NETWORKS}perceptual_pretrained=false",
]
# the demo config shrunk to seconds: 32 px, few identities, a narrow model
TINY = [
    "--data.init_args.image_size=32",
    "--data.init_args.train_identities=6",
    "--data.init_args.val_identities=2",
    "--data.init_args.test_identities=2",
    "--data.init_args.batch_size=2",
    "--data.init_args.eval_batch_size=8",
    *TINY_MODEL,
    "--trainer.max_time=null",
]


def leaves(node: object, prefix: str = "") -> dict[str, object]:
    """A nested mapping's values by dotted key: ``{"a": {"b": 1}, "c": [{"d": 2}]}`` -> ``{"a.b": 1, "c.0.d": 2}``
    (a list of mappings, such as callbacks, by position)."""
    if isinstance(node, list) and node and all(isinstance(item, dict) for item in node):
        node = {str(k): item for k, item in enumerate(node)}
    if not isinstance(node, dict):
        return {prefix: node}
    return {k: v for key, child in node.items() for k, v in leaves(child, f"{prefix}.{key}" if prefix else key).items()}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_parses(config: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    assert "model:" in capsys.readouterr().out


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
@pytest.mark.parametrize("data_config", CONFIGS, ids=lambda p: p.stem)
def test_every_ablation_composes_with_every_data_config(data_config: Path, ablation: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(data_config), "--config", str(ablation), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = leaves(yaml.safe_load(capsys.readouterr().out))
    for key, value in leaves(yaml.safe_load(ablation.read_text())).items():
        assert printed[key] == value, (ablation.name, key)


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
def test_every_ablation_trains_one_fast_dev_run_step_on_the_demo_data(ablation: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli_main(
        [
            "fit",
            "--config",
            str(EXPERIMENTS / "demo.yaml"),
            "--config",
            str(ablation),
            *TINY,
            "--trainer.fast_dev_run=1",
            "--trainer.logger=false",
            "--trainer.callbacks=null",
            "--trainer.enable_progress_bar=false",
        ]
    )


@pytest.mark.parametrize("overlay", list(OVERLAYS), ids=lambda p: p.stem)
def test_every_overlay_composes_with_its_config(overlay: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(OVERLAYS[overlay]), "--config", str(overlay), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = leaves(yaml.safe_load(capsys.readouterr().out))
    for key, value in leaves(yaml.safe_load(overlay.read_text())).items():
        assert printed[key] == value, (overlay.name, key)


@pytest.mark.parametrize("paper", [False, True], ids=["synthesis", "paper_objective"])
def test_the_synthesis_config_trains_one_fast_dev_run_step(paper: bool, tmp_path, monkeypatch) -> None:
    """The 45-minute synthesis run and the paper's objective at its budget parse and train a step
    (the runs themselves are measurements, in docs/experiments.md)."""
    monkeypatch.chdir(tmp_path)
    configs = ["demo.yaml", "synthesis.yaml"] + (["ablations/paper_objective.yaml"] if paper else [])
    cli_main(
        [
            "fit",
            *(word for config in configs for word in ("--config", str(EXPERIMENTS / config))),
            *TINY,
            "--trainer.fast_dev_run=1",
            "--trainer.logger=false",
            "--trainer.callbacks=null",
            "--trainer.enable_progress_bar=false",
        ]
    )


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_every_sweep_names_the_cli_arguments(sweep: Path, capsys) -> None:
    """W&B passes ``--name=value`` for every swept parameter: each must parse and land."""
    definition = yaml.safe_load(sweep.read_text())
    command = definition["command"]
    assert command[:3] == ["${env}", "exprgan", "fit"] and command[-1] == "${args}"
    config = ROOT / command[command.index("--config") + 1]
    assert config.is_file(), f"{sweep.name} names a missing config {config}"
    overrides = {}
    for name, spec in definition["parameters"].items():
        value = spec["value"] if "value" in spec else spec["values"][0] if "values" in spec else spec["min"]
        overrides[name] = value
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(config), *(f"--{k}={v}" for k, v in overrides.items()), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = leaves(yaml.safe_load(capsys.readouterr().out))
    for name, value in overrides.items():
        assert printed[name] == value, (sweep.name, name)


def _history(run: Path, keys: tuple[str, ...], timeout: float = 60.0) -> None:
    """Assert that the offline run's history holds every key.

    W&B's service process writes the ``.wandb`` file in blocks and closes it after ``finish()``
    returns, so a small run's file may still hold only its header for a moment: poll.
    """
    deadline = time.monotonic() + timeout
    while True:
        history = next(run.glob("run-*.wandb")).read_bytes()
        missing = [key for key in keys if key.encode() not in history]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"{missing} not in {run}"


def _wandb_run(save_dir: Path) -> Path:
    runs = sorted((save_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    return runs[0]


def test_demo_config_trains_tests_and_writes_an_offline_wandb_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")  # not logged in: the logger must go offline by itself
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    config = str(ROOT / "experiments" / "demo.yaml")
    cli_main(
        [
            "fit",
            "--config",
            config,
            *TINY,
            "--trainer.max_steps=12",
            "--trainer.val_check_interval=2",
            "--trainer.callbacks+=exprgan.callbacks.TrainingImages",  # beside the config's (every 300 batches)
            "--trainer.callbacks.every_n_batches=2",
            "--trainer.enable_progress_bar=false",
            "--trainer.log_every_n_steps=1",
            "--model.loss_weights.perceptual=3",
        ]
    )
    wandb.finish()  # a CLI process finishes its run at exit; this test process lives on
    checkpoint = tmp_path / "runs" / "demo" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    run = _wandb_run(tmp_path / "runs" / "demo")  # the fit run (the test run comes later)
    keys = ("d/adversarial", "g/total", "g/reconstruction", "g/perceptual", "c/classification", "train/acc", "val/acc")
    _history(run, (*keys, "val/edit_recall", "val/transfer_l1"))
    assert list((run / "files" / "media" / "images").rglob("*.png"))

    results = tmp_path / "chosen-results"  # the report's folder, given on the command line
    cli_main(
        [
            "test",
            "--config",
            config,
            *TINY,
            f"--ckpt_path={checkpoint}",
            "--trainer.enable_progress_bar=false",
            f"--report.results_dir={results}",
        ]
    )
    wandb.finish()
    report = json.loads((results / "test_results.json").read_text())
    assert report["num_samples"] == 2 * 7  # 2 test identities x 7 expressions
    assert set(report["per_class"]) == set(EXPRESSIONS)
    confusion = torch.tensor(report["confusion_matrix"])
    assert torch.allclose(confusion.sum(1), torch.ones(7))
    assert (results / "test_confusion.png").stat().st_size > 0
    assert (results / "test_per_class.csv").is_file()
    (test_run,) = set((tmp_path / "runs" / "demo" / "wandb").glob("offline-run-*")) - {run}
    _history(test_run, ("test/confusion_matrix", "test/target_acc", "test/edit_recall", "test/oracle_acc"))
    assert json.loads((results / "test_transfer.json").read_text())["transfer_l1"] > 0
    assert list((tmp_path / "runs" / "demo" / "offline").glob("oracle-*.pt"))  # trained in the test run, under the run

    model = JointExprGAN.load_from_checkpoint(checkpoint, map_location="cpu")  # weights_only by default
    assert model.weights.perceptual == 3.0 and model.class_names[0] == "surprise"
    checkpoint_data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint_data["SyntheticFacesDataModule"]["next_step"] == 4  # the pair stream's position
    assert len(checkpoint_data["optimizer_states"]) == 3 and len(checkpoint_data["lr_schedulers"]) == 3


def test_ddp_on_two_cpu_processes_keeps_every_parameter_identical(tmp_path) -> None:
    out = tmp_path / "parameters"
    command = [
        sys.executable,
        "-m",
        "exprgan.cli",
        "fit",
        "--config",
        str(ROOT / "experiments" / "demo.yaml"),
        *TINY,
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        "--trainer.max_steps=6",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.callbacks=null",
        "--trainer.callbacks+=tests.helpers.SaveParametersPerRank",
        f"--trainer.callbacks.dirpath={out}",
        "--trainer.enable_progress_bar=false",
        "--trainer.limit_val_batches=0",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["state"].keys() == rank1["state"].keys()
    for name, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][name]), name


def test_version(capsys) -> None:
    cli_main(["--version"])
    assert "exprgan" in capsys.readouterr().out


def test_usage_lists_every_tool_and_each_has_its_help(capsys) -> None:
    cli_main([])
    usage = capsys.readouterr().out
    for command in TOOLS:
        assert f"  {command} " in usage
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, "--help"])
        assert exit_info.value.code == 0 and f"usage: exprgan {command}" in capsys.readouterr().out

"""``exprgan report``: tables of finished runs, from fake results with known answers and from a real tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from exprgan.cli import cli_main
from exprgan.tools.report import class_table, find_runs, pose_table, settings_table, summarize, write_report
from tests.test_cli import ROOT, TINY


def _results(accuracy: float, per_class: dict[str, float], per_pose: dict[str, float] | None = None) -> dict:
    present = [v for v in per_class.values() if v is not None]
    return {
        "num_samples": 10,
        "accuracy": accuracy,
        "mean_class_accuracy": sum(present) / len(present),
        "per_class": per_class,
        "support": {c: 5 for c in per_class},
        "per_pose": per_pose,
        "class_names": list(per_class),
    }


def _run(folder: Path, results: dict, model: dict | None = None, nested: bool = True) -> None:
    target = folder / "results" if nested else folder
    target.mkdir(parents=True)
    (target / "test_results.json").write_text(json.dumps(results))
    if model is not None:
        data = {"class_path": "exprgan.datamodules.MultiPIEDataModule", "init_args": {"fold": 0}}
        (folder / "config.yaml").write_text(yaml.safe_dump({"model": model, "data": data}))


@pytest.fixture
def fake_runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    # poses as the paper orders them, written in another order; "mean" is the per-pose mean
    _run(
        runs / "ours",
        _results(0.9, {"smile": 0.8, "scream": 1.0}, {"0": 0.95, "+30": 0.85, "-30": 0.9, "mean": 0.9}),
        {
            "networks": {"backbone": "vgg19"},
            "loss_weights": {"interpolation": 1.0},
            "layers": [1, 2],
            "interpolation_p": 0.5,
        },
    )
    _run(
        runs / "no_interl",
        _results(0.8, {"smile": 0.7, "scream": 0.9}, {"0": 0.85, "+30": 0.75, "-30": 0.8, "mean": 0.8}),
        {
            "networks": {"backbone": "vgg19"},
            "loss_weights": {"interpolation": 0.0},
            "layers": [1],
            "interpolation_p": 0.5,
        },
    )
    _run(runs / "rafdb", _results(0.5, {"smile": 0.25, "anger": 0.75}), nested=False)
    return runs


def test_tables_from_fake_results(fake_runs: Path) -> None:
    runs = find_runs([fake_runs])
    assert [r.name for r in runs] == ["no_interl", "ours", "rafdb"]

    poses = pose_table(runs)
    assert poses is not None
    assert list(poses.index) == ["no_interl", "ours"]  # runs without poses are left out
    assert list(poses.columns) == ["-30", "0", "+30", "average"]
    assert poses.loc["ours"].tolist() == pytest.approx([90.0, 95.0, 85.0, 90.0])
    assert poses.loc["no_interl", "average"] == pytest.approx(80.0)

    classes = class_table(runs)
    assert list(classes.columns) == ["smile", "scream", "anger", "mean class", "accuracy"]
    assert classes.loc["ours"].tolist() == pytest.approx([80.0, 100.0, math.nan, 90.0, 90.0], nan_ok=True)
    assert classes.loc["rafdb", "anger"] == pytest.approx(75.0)
    assert classes.loc["rafdb", "mean class"] == pytest.approx(50.0)

    settings = settings_table(runs)
    assert settings is not None and list(settings.columns) == ["loss_weights.interpolation"]  # only what differs
    assert settings["loss_weights.interpolation"].tolist() == [0.0, 1.0]

    summary = summarize(poses)
    assert summary.loc["mean", "-30"] == pytest.approx(85.0)
    assert summary.loc["std", "-30"] == pytest.approx(pd.Series([80.0, 90.0]).std())  # ddof 1: 7.07


def test_report_cli_writes_markdown_and_csv(fake_runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tables"
    cli_main(["report", str(fake_runs / "ours"), str(fake_runs / "no_interl"), "--out", str(out)])
    printed = capsys.readouterr().out
    pose_md = (out / "report_per_pose.md").read_text().splitlines()
    assert pose_md[0] == "| run | -30 | 0 | +30 | average |"
    assert pose_md[2] == "| ours | **90.00** | **95.00** | **85.00** | **90.00** |"  # best of each column in bold
    assert pose_md[3] == "| no_interl | 80.00 | 85.00 | 75.00 | 80.00 |"
    csv = pd.read_csv(out / "report_per_class.csv", index_col=0)
    assert csv.loc["no_interl", "accuracy"] == pytest.approx(80.0)
    assert (out / "report_settings.csv").is_file()
    assert "## Accuracy (%) per pose" in printed and (out / "report.md").read_text().startswith("# Results")

    cli_main(["report", str(fake_runs), "--out", str(out), "--name", "A", "--name", "B", "--name", "C"])
    assert pd.read_csv(out / "report_per_class.csv", index_col=0).index.tolist() == ["A", "B", "C"]
    with pytest.raises(SystemExit):
        cli_main(["report", str(tmp_path / "nothing"), "--out", str(out)])
    assert "no test_results.json under" in capsys.readouterr().err


def test_summary_rows_over_folds(fake_runs: Path, tmp_path: Path) -> None:
    text, paths = write_report(find_runs([fake_runs / "ours", fake_runs / "no_interl"]), tmp_path, summary=True)
    table = pd.read_csv(paths["per_pose_csv"], index_col=0)
    assert table.index.tolist() == ["ours", "no_interl", "mean", "std"]
    assert table.loc["mean", "average"] == pytest.approx(85.0)
    assert "| std |" in text


def test_report_of_a_real_tiny_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "tiny"
    common = [
        "--config",
        str(ROOT / "experiments" / "demo.yaml"),
        *TINY,
        "--trainer.logger=false",
        f"--trainer.default_root_dir={run}",
        "--trainer.enable_progress_bar=false",
    ]
    checkpoints = tmp_path / "ckpt"
    cli_main(
        ["fit", *common, "--trainer.max_steps=3", "--trainer.limit_val_batches=0"]
        + [f"--trainer.callbacks.init_args.dirpath={checkpoints}"]
    )
    cli_main(["test", *common, f"--ckpt_path={checkpoints / 'last.ckpt'}"])
    results = json.loads((run / "results" / "test_results.json").read_text())

    cli_main(["report", str(run), "--out", str(tmp_path / "tables")])
    (found,) = find_runs([run])
    assert found.name == "tiny" and found.config is not None and found.config["model"]["networks"]["gan_width"] == 8
    table = pd.read_csv(tmp_path / "tables" / "report_per_class.csv", index_col=0)
    assert table.index.tolist() == ["tiny"]
    assert table.loc["tiny", "accuracy"] == pytest.approx(100 * results["accuracy"])
    assert table.loc["tiny", "surprise"] == pytest.approx(100 * results["per_class"]["surprise"])
    assert not (tmp_path / "tables" / "report_per_pose.csv").exists()  # the demo data has no poses

"""``exprgan cv``: real folds of a tiny Multi-PIE tree, fit + test per fold, mean and std, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from exprgan.cli import cli_main
from exprgan.datamodules import MultiPIEDataModule
from exprgan.tools.cv import fold_config, resolved_config
from tests.data_trees import make_multipie
from tests.test_cli import NETWORKS, ROOT, TINY_MODEL

SUBJECTS = [f"{s:03d}" for s in range(1, 5)]  # every one attends all 4 sessions: all 6 expressions
CAMERAS = ["14_0", "05_1"]  # -15 and 0 degrees


def tiny_multipie_args(root: Path, elsewhere: Path) -> list[str]:
    """experiments/multipie.yaml on CPU in seconds: 32 px, 2 folds of 2 subjects, a narrow model, 2 batches."""
    return [
        "--config",
        str(ROOT / "experiments" / "multipie.yaml"),
        f"--data.root={root}",
        f"--data.init_args.cameras=[{', '.join(repr(c) for c in CAMERAS)}]",  # quoted: YAML reads 14_0 as 140
        "--data.init_args.num_folds=2",
        "--data.init_args.image_size=32",
        "--data.init_args.batch_size=2",
        "--data.init_args.eval_batch_size=16",
        "--data.init_args.num_workers=0",
        *TINY_MODEL,
        f"{NETWORKS}backbone=resnet18",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--trainer.max_steps=6",
        "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        # a CSV logger pointed elsewhere: cv must move it into the fold's folder
        "--trainer.logger=pytorch_lightning.loggers.CSVLogger",
        f"--trainer.logger.init_args.save_dir={elsewhere}",
        "--trainer.logger.init_args.name=mp",
    ]


def test_fold_config_moves_every_output_into_the_fold_folder(tmp_path: Path) -> None:
    config = resolved_config(["--config", str(ROOT / "experiments" / "multipie.yaml")])
    fold = fold_config(config, 3, tmp_path / "fold3")
    assert fold["data"]["init_args"]["fold"] == 3 and config["data"]["init_args"]["fold"] == 0  # a copy
    assert fold["trainer"]["logger"]["init_args"]["save_dir"] == str(tmp_path / "fold3")
    assert fold["trainer"]["logger"]["init_args"]["name"] == "multipie-fold0-fold3"
    (checkpoint,) = [c for c in fold["trainer"]["callbacks"] if c["class_path"].endswith("ModelCheckpoint")]
    assert checkpoint["init_args"]["dirpath"] == str(tmp_path / "fold3" / "checkpoints")
    assert checkpoint["init_args"]["save_last"] is True and checkpoint["init_args"]["enable_version_counter"] is False
    assert checkpoint["init_args"]["every_n_train_steps"] == 3000  # the rest is the config's
    assert fold["report"]["results_dir"] == str(tmp_path / "fold3" / "results")
    with pytest.raises(ValueError, match="not in 0..4"):
        fold_config(config, 5, tmp_path)
    demo = resolved_config(["--config", str(ROOT / "experiments" / "demo.yaml")])
    with pytest.raises(ValueError, match="no 'fold' argument"):
        fold_config(demo, 0, tmp_path)


def test_cv_runs_two_real_folds_and_reports_mean_and_std(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    make_multipie(tmp_path / "mpie", {s: (1, 2, 3, 4) for s in SUBJECTS}, cameras=CAMERAS, illuminations=(7,))
    args = tiny_multipie_args(tmp_path / "mpie", tmp_path / "elsewhere")
    runs = tmp_path / "cv"
    cli_main(["cv", *args, "--folds", "0", "1", "--runs-dir", str(runs)])
    printed = capsys.readouterr().out

    results = {}
    for k in (0, 1):
        fold = runs / f"fold{k}"
        assert yaml.safe_load((fold / "cv_config.yaml").read_text())["data"]["init_args"]["fold"] == k
        assert (fold / "checkpoints" / "last.ckpt").is_file()
        assert list(fold.rglob("metrics.csv")) and list(fold.rglob("config.yaml"))  # the CSV logger's, moved here
        results[k] = json.loads((fold / "results" / "test_results.json").read_text())
        # the fold's test set: its 2 subjects x 6 expressions x 2 poses
        data = MultiPIEDataModule(str(tmp_path / "mpie"), fold=k, num_folds=2, cameras=CAMERAS, image_size=32)
        data.setup("test")
        assert results[k]["num_samples"] == len(data.split("test")) == 2 * 6 * 2
        assert set(results[k]["per_pose"]) == {"-15", "0", "mean"}
    assert not (tmp_path / "elsewhere").exists()

    table = pd.read_csv(runs / "cv.csv", index_col=0)
    assert list(table.index) == ["fold0", "fold1", "mean", "std"]
    assert list(table.columns) == ["accuracy", "mean class", "pose -15", "pose 0"]
    a, b = (100 * results[k]["accuracy"] for k in (0, 1))
    assert table.loc["fold0", "accuracy"] == pytest.approx(a) and table.loc["fold1", "accuracy"] == pytest.approx(b)
    assert table.loc["mean", "accuracy"] == pytest.approx((a + b) / 2)
    assert table.loc["std", "accuracy"] == pytest.approx(abs(a - b) / 2**0.5)  # sample std of two values
    p0, p1 = (100 * results[k]["per_pose"]["0"] for k in (0, 1))
    assert table.loc["mean", "pose 0"] == pytest.approx((p0 + p1) / 2)
    assert "| mean |" in (runs / "cv.md").read_text() and "| std |" in printed

    # finished folds are not run again
    stamp = (runs / "fold0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    cli_main(["cv", *args, "--folds", "0", "1", "--runs-dir", str(runs)])
    assert "fold 0 already done" in capsys.readouterr().out
    assert (runs / "fold0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp


def test_cv_needs_a_config(capsys) -> None:
    with pytest.raises(SystemExit):
        cli_main(["cv", "--folds", "0"])
    assert "--config" in capsys.readouterr().err

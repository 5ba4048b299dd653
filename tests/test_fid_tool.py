"""``exprgan fid``: two demo checkpoints give one side-by-side per-expression table; errors name the cause."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from exprgan.cli import cli_main
from exprgan.tools.data_config import load_datamodule
from exprgan.tools.fid import default_names, evaluation_images, resolve_targets
from tests.test_cli import ROOT, TINY
from tests.test_fid import save_random_inception_weights

DEMO = str(ROOT / "experiments" / "demo.yaml")
# the faces FID is measured on: 2 test identities x 7 expressions at 32 px (Inception runs ~60 times)
DATA = ["--data.init_args.image_size=32", "--data.init_args.test_identities=2"]
TARGETS = ["happiness", "surprise"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """The tiny demo after 1 batch, with and without the interpolation loss (Table V's comparison).

    The generators start random, not as the identity map: after one batch an identity-initialised G
    still copies its input to within uint8 rounding, and both rows of the table would be equal.
    """
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in (
        ("no_interl", ["--config", str(ROOT / "experiments" / "ablations" / "no_interl.yaml")]),
        ("ours", []),
    ):
        cli_main(
            ["fit", "--config", DEMO, *extra, *TINY, "--model.networks.generator_identity_init=false"]
            + ["--trainer.max_steps=3", "--trainer.logger=false"]
            + ["--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false"]
            + [f"--trainer.default_root_dir={root / name}"]  # where LightningCLI saves config.yaml
            + [f"--trainer.callbacks.init_args.dirpath={root / name / 'checkpoints'}"]
        )
        out[name] = root / name / "checkpoints" / "last.ckpt"
    return out


@pytest.fixture(scope="module")
def inception(tmp_path_factory) -> Path:
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "inception.pth")


def test_fid_of_two_checkpoints_writes_one_side_by_side_table(checkpoints, inception, tmp_path, capsys) -> None:
    out = tmp_path / "fid"
    cli_main(
        ["fid", "--ckpt", str(checkpoints["no_interl"]), "--ckpt", str(checkpoints["ours"]), "--config", DEMO, *DATA]
        + ["--inception-weights", str(inception), "--targets", *TARGETS, "--out", str(out), "--no-progress"]
        + ["--inception-features", "64"]  # the 2048-d layer's covariances take a minute per FID on 2 cores
    )
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "fid.csv", index_col=0)
    assert table.index.tolist() == ["no_interl", "ours"]  # named by their run folders
    assert table.columns.tolist() == [*TARGETS, "mean"]
    assert table.notna().all().all() and (table > 0).all().all()
    assert table["mean"].tolist() == pytest.approx(table[TARGETS].mean(axis=1).tolist())
    for name in ("no_interl", "ours"):  # each checkpoint's own table: FID and image counts
        own = pd.read_csv(out / f"fid_{name}.csv", index_col=0)
        assert own["fid"].tolist() == pytest.approx(table.loc[name].tolist())
        assert own.loc["happiness", "real"] == 2 and own.loc["happiness", "generated"] == 12  # 2 ids x 6 others
    markdown = (out / "fid.md").read_text()
    assert markdown.splitlines()[0] == "| model | happiness | surprise | mean |"
    assert table.loc["no_interl", "mean"] != table.loc["ours", "mean"]  # each row is its own checkpoint's
    assert markdown.count("**") == 2 * 3  # the lowest FID of each column in bold
    assert "| no_interl |" in printed and "| ours |" in printed


def test_fid_errors_name_the_missing_file_and_the_mismatch(checkpoints, inception, tmp_path, capsys) -> None:
    missing = tmp_path / "no-such-inception.pth"
    args = ["fid", "--ckpt", str(checkpoints["ours"]), "--config", DEMO, "--out", str(tmp_path), "--no-progress"]
    with pytest.raises(SystemExit):
        cli_main([*args, *DATA, "--inception-weights", str(missing)])
    error = capsys.readouterr().err
    assert "InceptionWeightsError" in error and str(missing) in error
    with pytest.raises(SystemExit):  # the demo config's 64 px faces for a 32 px model
        cli_main([*args, "--data.init_args.test_identities=2", "--inception-weights", str(inception)])
    error = capsys.readouterr().err
    assert "trained on 7 expressions at 32 px, the data gives 7 (['surprise'" in error and "at 64 px" in error
    with pytest.raises(SystemExit):
        cli_main([*args, "--trainer.max_steps=3"])
    assert "only --data.* overrides" in capsys.readouterr().err


def test_helpers() -> None:
    names = default_names(["runs/a/checkpoints/last.ckpt", "runs/b/checkpoints/last.ckpt"])
    assert names == ["a", "b"]
    assert default_names(["runs/a/checkpoints/last.ckpt", "runs/a/checkpoints/step=300.ckpt"]) == ["last", "step=300"]
    assert resolve_targets(["happiness", "0"], ["surprise", "fear", "disgust", "happiness"]) == [3, 0]
    with pytest.raises(ValueError, match="unknown expression"):
        resolve_targets(["joy"], ["surprise"])
    data = load_datamodule([DEMO], [*DATA, "--data.init_args.eval_batch_size", "5"])
    images, labels = evaluation_images(data, "test")
    assert images.shape == (14, 3, 32, 32) and labels.tolist() == [e for _ in range(2) for e in range(7)]

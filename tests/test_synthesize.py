"""``exprgan synthesize`` and ``SynthesizedDataModule``: kN transfers, index, resume, training on originals + kN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from exprgan.cli import cli_main
from exprgan.datamodules import PairDataModule, SynthesizedDataModule
from exprgan.evaluation.fid import to_uint8
from exprgan.tools.checkpoints import load_model
from exprgan.tools.synthesize import synthesis_plan
from tests.conftest import reporting_trainer, tiny_data, tiny_model, tiny_trainer
from tests.test_cli import ROOT, TINY_MODEL

TRAIN_IDENTITIES = 2
N = TRAIN_IDENTITIES * 7  # every identity shows the 7 expressions
DATA = {
    "class_path": "exprgan.datamodules.SyntheticFacesDataModule",
    "init_args": {
        "image_size": 32,
        "train_identities": TRAIN_IDENTITIES,
        "val_identities": 2,
        "test_identities": 2,
        "batch_size": 2,
        "eval_batch_size": 8,
    },
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny model after one training batch, saved as Lightning saves it."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    trainer = tiny_trainer(max_steps=3)
    trainer.fit(tiny_model(), tiny_data(train_identities=TRAIN_IDENTITIES))
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def data_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "data.yaml"
    path.write_text(yaml.safe_dump({"data": DATA}))
    return path


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, checkpoint: Path, data_config: Path) -> Path:
    out = tmp_path_factory.mktemp("synth") / "out"
    cli_main(
        ["synthesize", "--ckpt", str(checkpoint), "--config", str(data_config), "--per-image", "2"]
        + ["--out", str(out), "--no-progress"]
    )
    return out


def test_plan_is_seeded_and_its_first_k_do_not_depend_on_k() -> None:
    labels = [e for _ in range(3) for e in range(7)]
    full = synthesis_plan(labels, 7, 6, seed=0)
    assert len(full) == 6 * len(labels)
    for source, rows in full.groupby("source"):
        assert sorted(rows["label"]) == sorted(set(range(7)) - {labels[source]})  # 6N: every other expression
        assert (labels_of := [labels[r] for r in rows["reference"]]) == rows["label"].tolist(), labels_of
    two = synthesis_plan(labels, 7, 2, seed=0)
    pd.testing.assert_frame_equal(two, full[full["rank"] < 2].reset_index(drop=True))
    assert not synthesis_plan(labels, 7, 2, seed=1).equals(two)
    with pytest.raises(ValueError, match="per_image"):
        synthesis_plan(labels, 7, 7)


def test_synthesize_writes_k_transfers_per_image_with_an_index(synthesized: Path, checkpoint: Path) -> None:
    index = pd.read_csv(synthesized / "index.csv", keep_default_na=False)
    assert len(index) == 2 * N
    assert list(index.groupby("source").size()) == [2] * N
    data = tiny_data(train_identities=TRAIN_IDENTITIES)
    data.setup("fit")
    labels = data.train_labels()
    assert (index["source_label"] == [labels[s] for s in index["source"]]).all()
    assert (index["label"] != index["source_label"]).all()
    assert (index["label_name"] == [data.class_names[y] for y in index["label"]]).all()
    assert (index["source_label_name"] == [data.class_names[y] for y in index["source_label"]]).all()
    assert ([labels[r] for r in index["reference"]] == index["label"]).all()  # reference shows the target
    files = sorted((synthesized / "images").rglob("*.png"))
    assert len(files) == 2 * N and {str(f.relative_to(synthesized)) for f in files} == set(index["path"])
    assert not list(synthesized.rglob("*.tmp"))

    # known answer: the PNG is the generator's transfer of the row's source, target and reference
    row = index.iloc[5]
    model = load_model(checkpoint)
    source, reference = (data.load_train_image(int(row[k])) for k in ("source", "reference"))
    labels_a, labels_b = torch.tensor([row["source_label"]]), torch.tensor([row["label"]])
    expected = to_uint8(model.transfer(source[None], reference[None], labels_a, labels_b))[0].permute(1, 2, 0).numpy()
    written = np.asarray(Image.open(synthesized / row["path"]))
    assert written.shape == (32, 32, 3)
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1


def test_resuming_writes_nothing_new_and_fills_a_gap(
    synthesized: Path, checkpoint: Path, data_config: Path, capsys
) -> None:
    files = sorted((synthesized / "images").rglob("*.png"))
    stamps = {f: f.stat().st_mtime_ns for f in files}
    args = ["synthesize", "--ckpt", str(checkpoint), "--config", str(data_config), "--per-image", "2"]
    args += ["--out", str(synthesized), "--no-progress"]
    cli_main(args)
    assert "(0 written now, 28 already there)" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    files[3].unlink()
    cli_main(args)
    assert "(1 written now, 27 already there)" in capsys.readouterr().out
    assert files[3].is_file()
    with pytest.raises(SystemExit):
        cli_main([*args, "--seed", "1"])
    assert "holds a synthesis with another seed" in capsys.readouterr().err


@pytest.mark.parametrize("k", [0, 1, 2])
def test_kn_datamodule_has_originals_plus_k_transfers_per_image(synthesized: Path, k: int) -> None:
    inner = tiny_data(train_identities=TRAIN_IDENTITIES)
    data = SynthesizedDataModule(inner, str(synthesized), per_image=k)
    data.setup("fit")
    labels = list(data.train_labels())
    assert len(labels) == (1 + k) * N
    assert labels[:N] == list(inner.train_labels())
    index = pd.read_csv(synthesized / "index.csv")
    chosen = index[index["rank"] < k].sort_values(["rank", "source"])
    assert labels[N:] == chosen["label"].tolist()
    assert data.num_expressions == 7 and data.image_size == 32 and data.class_names == list(inner.class_names)
    if k:
        image = data.load_train_image(N + 3)  # a synthesised image, as the PNG says (no augmentation here)
        png = np.asarray(Image.open(synthesized / chosen["path"].iloc[3]))
        assert image.shape == (3, 32, 32)
        assert torch.allclose(image, torch.from_numpy(png).permute(2, 0, 1).float() / 127.5 - 1)
    assert torch.equal(data.load_train_image(2), inner.load_train_image(2))


def test_kn_datamodule_refuses_more_than_synthesised_and_another_training_set(synthesized: Path) -> None:
    with pytest.raises(ValueError, match="holds only 2 transfers per image"):
        SynthesizedDataModule(tiny_data(train_identities=TRAIN_IDENTITIES), str(synthesized), per_image=3).setup("fit")
    with pytest.raises(ValueError, match="synthesised from 14 training images"):
        SynthesizedDataModule(tiny_data(train_identities=3), str(synthesized), per_image=1).setup("fit")


def test_kn_run_on_the_rendered_faces_is_tested_with_their_oracle(
    synthesized: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """The test of a kN run reports target accuracy, judged by the inner data's oracle (real faces only)."""
    inner = tiny_data(train_identities=TRAIN_IDENTITIES)
    data = SynthesizedDataModule(inner, str(synthesized), per_image=1)
    assert data.transfer_oracle == inner.transfer_oracle  # bound to the inner data, not to the enlarged set
    model = load_model(checkpoint)
    reporting_trainer(tmp_path).test(model, data, verbose=False)
    transfer = json.loads((tmp_path / "results" / "test_transfer.json").read_text())
    assert 0.0 <= transfer["target_acc"] <= 1.0 and 0.0 <= transfer["oracle_acc"] <= 1.0
    accuracy = json.loads((tmp_path / "results" / "test_results.json").read_text())
    assert sum(accuracy["support"].values()) == 2 * 7  # the inner test split: 2 identities x 7 expressions


def test_kn_datamodule_of_data_without_an_oracle_has_none() -> None:
    class NoOracle(PairDataModule):
        num_expressions, class_names, image_size = 7, list(tiny_data().class_names), 32

    assert SynthesizedDataModule(NoOracle(), "unused").transfer_oracle is None


def test_fit_on_originals_plus_2n_through_the_cli(synthesized: Path, tmp_path: Path, monkeypatch) -> None:
    """Fig. 12's setting: the classifier trains on the real images and the synthesised set only."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "synthesized.yaml"
    inner = {**DATA, "init_args": {**DATA["init_args"], "batch_size": 2}}
    config.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "class_path": "exprgan.datamodules.SynthesizedDataModule",
                    "init_args": {"data": inner, "synthesized": str(synthesized), "per_image": 2},
                }
            }
        )
    )
    cli_main(
        ["fit", "--config", str(ROOT / "experiments" / "demo.yaml"), "--config", str(config)]
        + TINY_MODEL
        + ["--model.synthesized_images=false", "--trainer.max_steps=6", "--trainer.max_time=null"]
        + ["--trainer.logger=false", "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false"]
        + [f"--trainer.callbacks.init_args.dirpath={tmp_path / 'ckpt'}"]
    )
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 6
    assert state["hyper_parameters"]["num_expressions"] == 7 and state["hyper_parameters"]["image_size"] == 32
    assert state["SynthesizedDataModule"]["next_step"] == 2

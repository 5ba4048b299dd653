"""Transfer metrics against the rendered ground truth: known answers, the oracle's cache, the test run."""

from __future__ import annotations

import json
import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from exprgan.datamodules import EXPRESSIONS
from exprgan.evaluation import oracle as oracle_module
from exprgan.evaluation.oracle import oracle_predict, rendered_oracle
from exprgan.evaluation.transfer import TransferMetrics, edit_mask
from tests.conftest import reporting_trainer, tiny_data, tiny_model

NAMES = list(EXPRESSIONS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    """Rendered faces with 30 training identities (an oracle trained MIN_STEPS steps at 32 px),
    a run folder whose ``offline/`` holds that oracle, and the test split as tensors."""
    data = tiny_data(train_identities=30)
    run = tmp_path_factory.mktemp("run")
    oracle = data.transfer_oracle(run / "offline")
    test = data.split("test")
    items = [test[i] for i in range(len(test))]
    faces = {key: torch.stack([item[key] for item in items]) for key in ("image", "target", "reference")}
    faces["y_b"] = torch.stack([item["reference_label"] for item in items])
    return data, run, oracle, faces


def _metrics(transferred, faces, oracle=None) -> dict[str, float]:
    metrics = TransferMetrics(NAMES, with_oracle=oracle is not None)
    judged = None if oracle is None else oracle_predict(oracle, transferred)
    metrics.update(transferred, faces["image"], faces["target"], faces["reference"], faces["y_b"], judged)
    return metrics.compute()


# --- known answers of the metric ---------------------------------------------------------


class KnownJudge(torch.nn.Module):
    """A judge whose verdicts are known, whatever the machine: of a batch of ``len(y_b)`` images it
    names the target expression ``y_b`` of every other one (even rows) and the next expression of
    the rest."""

    def __init__(self, y_b: torch.Tensor) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # oracle_predict reads the device from a parameter
        self.y_b = y_b

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert len(images) == len(self.y_b), "one batch of all the faces"
        right = torch.arange(len(images)) % 2 == 0
        return F.one_hot(torch.where(right, self.y_b, (self.y_b + 1) % len(NAMES)), len(NAMES)).float()


def test_the_ground_truth_scores_the_oracles_accuracy_full_recall_and_no_collateral(rendered) -> None:
    """(a) A transfer equal to the ground truth, judged by a judge right on half of them. Catches:
    target accuracy not computed against y_b (or not from the oracle's predictions of the
    transfers), an edit recall or collateral that is not zero-error based, a wrong "copy the
    reference" baseline."""
    _, _, _, faces = rendered
    judge = KnownJudge(faces["y_b"])
    results = _metrics(faces["target"].clone(), faces, judge)
    on_targets = torch.arange(len(faces["y_b"])) % 2 == 0  # the judge's known verdicts
    assert results["target_acc"] == pytest.approx(float(on_targets.double().mean()))
    for k, name in enumerate(NAMES):
        chosen = faces["y_b"] == k
        expected = float(on_targets[chosen].double().mean()) if chosen.any() else math.nan
        assert results[f"target_acc_{name}"] == pytest.approx(expected, nan_ok=True), name
        assert results[f"edit_recall_{name}"] == pytest.approx(1.0 if chosen.any() else math.nan, nan_ok=True)
    assert results["edit_recall"] == 1.0
    assert results["collateral_l1"] == 0.0 and results["transfer_l1"] == 0.0 and results["transfer_ratio"] == 0.0
    copy = (faces["reference"] - faces["target"]).abs().mean((1, 2, 3)).double().mean()
    assert results["l1_copy_reference"] == pytest.approx(float(copy))
    assert results["l1_no_change"] > 0


def test_no_change_scores_zero_recall_and_ratio_one(rendered) -> None:
    """(b) The source returned unchanged. Catches: edit recall measured against the wrong
    baseline (source vs target), a transfer ratio not relative to "no change"."""
    _, _, oracle, faces = rendered
    results = _metrics(faces["image"].clone(), faces, oracle)
    assert results["edit_recall"] == pytest.approx(0.0, abs=1e-12)
    assert results["transfer_ratio"] == pytest.approx(1.0)
    assert results["transfer_l1"] == pytest.approx(results["l1_no_change"])
    for k in faces["y_b"].unique().tolist():
        assert results[f"edit_recall_{NAMES[k]}"] == pytest.approx(0.0, abs=1e-12)
    # what differs only below the edit threshold is collateral, and small
    assert 0 < results["collateral_l1"] < 0.1


def test_a_hand_computed_image() -> None:
    """(c) One 4x4 image worked by hand. Catches: an edit mask read from one channel instead of
    any, a mask without the threshold, collateral averaged over pixels instead of pixels x
    channels, edit recall as a mean of per-pixel ratios instead of a ratio of sums."""
    source = torch.zeros(1, 3, 4, 4)
    target = source.clone()
    target[0, 0, 0, :] = 0.8  # 4 edited pixels, in the red channel
    target[0, 2, 1, 0] = -0.8  # a 5th, in the blue channel only
    target[0, 1, 3, 3] = 0.05  # below the threshold: not an edit
    assert int(edit_mask(source, target).sum()) == 5
    out = target.clone()
    out[0, 0, 0, :2] = 0.0  # two edits missed: error 0.8 + 0.8
    out[0, 2, 1, 0] = -1.0  # one overshot: error 0.2
    out[0, 1, 3, 3] = 0.0  # the sub-threshold change missed: collateral 0.05
    out[0, 0, 2, 2] = 0.3  # a pixel the edit leaves alone, changed: collateral 0.3
    reference = torch.ones(1, 3, 4, 4)
    metrics = TransferMetrics(NAMES, with_oracle=True)
    metrics.update(out, source, target, reference, torch.tensor([3]), torch.tensor([3]))
    r = metrics.compute()
    assert r["edit_recall"] == pytest.approx(1 - 1.8 / 4.0)  # baseline: 5 x 0.8
    assert r["edit_recall_happiness"] == pytest.approx(1 - 1.8 / 4.0)
    assert r["collateral_l1"] == pytest.approx(0.35 / 33)  # 11 unedited pixels x 3 channels
    assert r["transfer_l1"] == pytest.approx((1.6 + 0.2 + 0.35) / 48)
    assert r["l1_no_change"] == pytest.approx((4.0 + 0.05) / 48)
    assert r["transfer_ratio"] == pytest.approx(2.15 / 4.05)
    assert r["l1_copy_reference"] == pytest.approx(float((reference - target).abs().mean()))
    assert r["target_acc"] == 1.0 and r["target_acc_happiness"] == 1.0
    assert math.isnan(r["target_acc_surprise"]) and math.isnan(r["edit_recall_surprise"])  # never targeted


def test_per_expression_entries_follow_the_target_labels() -> None:
    """(d) Two images: one perfect transfer to class 0 judged right, one "no change" to class 1
    judged wrong; swapping the target labels swaps the two classes' entries. Catches: binning
    by any other label than the target one, one class's sums leaking into another's."""

    def run(labels: list[int]) -> dict[str, float]:
        source = torch.zeros(2, 3, 4, 4)
        target = source.clone()
        target[:, 0, :2] = 0.9
        out = torch.stack([target[0], source[1]])
        metrics = TransferMetrics(NAMES)
        y_b = torch.tensor(labels)
        metrics.update(out, source, target, source, y_b, oracle_labels=torch.tensor([labels[0], 6]))
        return metrics.compute()

    first, second = run([0, 1]), run([1, 0])
    a, b = NAMES[0], NAMES[1]
    assert (first[f"edit_recall_{a}"], first[f"edit_recall_{b}"]) == (1.0, 0.0)
    assert (first[f"target_acc_{a}"], first[f"target_acc_{b}"]) == (1.0, 0.0)
    assert (second[f"edit_recall_{a}"], second[f"edit_recall_{b}"]) == (0.0, 1.0)
    assert (second[f"target_acc_{a}"], second[f"target_acc_{b}"]) == (0.0, 1.0)
    assert first["edit_recall"] == second["edit_recall"] == 0.5 and first["target_acc"] == 0.5
    assert all(math.isnan(first[f"target_acc_{n}"]) for n in NAMES[2:])


def test_batches_accumulate_as_one(rendered) -> None:
    """Two batches give what one batch of both gives. Catches: a mean of per-batch ratios (edit
    recall, transfer ratio, collateral) instead of ratios of sums, states not accumulated."""
    _, _, oracle, faces = rendered
    out = 0.5 * (faces["image"] + faces["target"])
    out[::3] = faces["target"][::3]  # uneven batches: per-batch means would differ
    whole = _metrics(out, faces, oracle)
    metrics = TransferMetrics(NAMES)
    for part in (slice(0, 3), slice(3, None)):
        sub = {key: value[part] for key, value in faces.items()}
        metrics.update(
            out[part], sub["image"], sub["target"], sub["reference"], sub["y_b"], oracle_predict(oracle, out[part])
        )
    split = metrics.compute()
    assert split.keys() == whole.keys()
    for key in whole:
        assert split[key] == pytest.approx(whole[key], nan_ok=True), key


def test_without_an_oracle_there_is_no_target_accuracy(rendered) -> None:
    """Validation's metric. Catches: NaN target accuracies reported (and logged) without a
    judge, an oracle-requiring metric silently taking no predictions."""
    _, _, _, faces = rendered
    results = _metrics(faces["target"], faces)
    assert not [key for key in results if key.startswith("target_acc")]
    assert results["edit_recall"] == 1.0 and f"edit_recall_{NAMES[0]}" in results
    with pytest.raises(ValueError, match="oracle's predictions"):
        TransferMetrics(NAMES).update(
            faces["target"], faces["image"], faces["target"], faces["reference"], faces["y_b"]
        )


# --- the oracle's cache --------------------------------------------------------------------


def _no_training(*args, **kwargs):
    raise AssertionError("the oracle trained again instead of loading the cache")


def test_the_oracle_is_cached_under_the_given_folder_and_keyed_by_the_data(tmp_path, monkeypatch) -> None:
    """(e) Catches: a cache that is never read (trains again), written elsewhere, loaded with
    other weights, or shared between data sets of different seeds (a stale judge); and a key
    that retrains when only the splits the oracle never sees change."""
    data = tiny_data()
    first = rendered_oracle(data, tmp_path / "oracle", epochs=1, min_steps=0, progress=False)
    files = list((tmp_path / "oracle").glob("oracle-*.pt"))
    assert len(files) == 1

    with monkeypatch.context() as patch:
        patch.setattr(oracle_module, "train_classifier", _no_training)
        again = rendered_oracle(data, tmp_path / "oracle", epochs=1, min_steps=0, progress=False)
        other_splits = rendered_oracle(
            tiny_data(test_identities=3), tmp_path / "oracle", epochs=1, min_steps=0, progress=False
        )
    for name, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]) and torch.equal(value, other_splits.state_dict()[name])
    rendered_oracle(tiny_data(seed=1), tmp_path / "oracle", epochs=1, min_steps=0, progress=False)
    assert len(list((tmp_path / "oracle").glob("oracle-*.pt"))) == 2  # another data seed: another file
    with monkeypatch.context() as patch:  # trained for other steps: another judge, not the cached one
        patch.setattr(oracle_module, "train_classifier", _no_training)
        with pytest.raises(AssertionError, match="trained again"):
            rendered_oracle(data, tmp_path / "oracle", epochs=1, min_steps=1, progress=False)


# --- the model's test run -------------------------------------------------------------------


def _ground_truth_transfer(faces: dict[str, torch.Tensor]):
    """A stand-in for ``Generator.transfer`` that returns the true transfer of every test face."""

    def transfer(images, reference, labels, reference_labels):
        distance = (images[:, None] - faces["image"][None]).abs().flatten(2).amax(2)  # [N, all]
        assert bool((distance.amin(1) == 0).all()), "not a test face"
        return faces["target"][distance.argmin(1)]

    return transfer


def test_a_test_run_logs_and_writes_every_transfer_metric(tmp_path, capsys) -> None:
    """(f) ``trainer.test`` on the rendered faces trains the oracle under the run, logs every
    key and writes ``test_transfer.json``. Catches: keys missing from the logs or the JSON, the
    oracle trained elsewhere or left in the model's state_dict (and so in checkpoints)."""
    results_dir = tmp_path / "run" / "results"
    model = tiny_model(class_names=EXPRESSIONS)
    keys_before = set(model.state_dict())
    logged = reporting_trainer(tmp_path / "run").test(model, datamodule=tiny_data(), verbose=False)[0]
    expected = {"target_acc", "edit_recall", "collateral_l1", "transfer_l1", "l1_no_change", "l1_copy_reference"}
    expected |= {"transfer_ratio", "oracle_acc"} | {f"{k}_{n}" for k in ("target_acc", "edit_recall") for n in NAMES}
    written = json.loads((results_dir / "test_transfer.json").read_text())
    assert set(written) == expected
    targeted = {key for key, value in written.items() if value is not None}  # NaN (never targeted) is not logged
    assert {f"{k}_{n}" for k in ("target_acc", "edit_recall") for n in NAMES} - targeted  # some: 14 pairs, 7 classes
    assert {f"test/{key}" for key in targeted} == {
        key for key in logged if key.startswith("test/") and key[5:] in expected
    }
    assert written["transfer_l1"] == pytest.approx(logged["test/transfer_l1"])
    assert json.loads((results_dir / "test_results.json").read_text())["num_samples"] == 14  # recognition still there
    assert len(list((tmp_path / "run" / "offline").glob("oracle-*.pt"))) == 1
    out = capsys.readouterr().out
    assert "oracle trained and cached in" in out and "target accuracy" in out and "test_transfer.json" in out
    assert set(model.state_dict()) == keys_before


@pytest.mark.parametrize("transfer", ["ground truth", "no change"])
def test_a_test_run_scores_known_transfers(rendered, transfer, monkeypatch) -> None:
    """(f) The model's test with G replaced by the ground truth (or by "no change"): the known
    answers of the metric, through the model's wiring. Catches: the source label passed as
    y_b (per-expression target accuracy then mismatches), the oracle judging the sources
    instead of the transfers, its accuracy measured on anything but the real faces, a cache
    under the run that is not reused."""
    data, run, oracle, faces = rendered
    model = tiny_model(class_names=EXPRESSIONS)
    fake = _ground_truth_transfer(faces) if transfer == "ground truth" else lambda images, *rest: images.clone()
    monkeypatch.setattr(model.generator, "transfer", fake)
    monkeypatch.setattr(oracle_module, "train_classifier", _no_training)  # the run's cache is loaded
    logged = reporting_trainer(run).test(model, datamodule=data, verbose=False)[0]
    transferred = faces["target"] if transfer == "ground truth" else faces["image"]
    hits = oracle_predict(oracle, transferred) == faces["y_b"]
    assert logged["test/target_acc"] == pytest.approx(float(hits.double().mean()), abs=1e-6)
    for k in faces["y_b"].unique().tolist():
        expected = float(hits[faces["y_b"] == k].double().mean())
        assert logged[f"test/target_acc_{NAMES[k]}"] == pytest.approx(expected, abs=1e-6), NAMES[k]
    real = oracle_predict(oracle, faces["image"]) == data.split("test").labels
    assert logged["test/oracle_acc"] == pytest.approx(float(real.double().mean()), abs=1e-6)
    if transfer == "ground truth":
        assert logged["test/edit_recall"] == 1.0 and logged["test/collateral_l1"] == 0.0
    else:
        assert logged["test/edit_recall"] == pytest.approx(0.0, abs=1e-6)
        assert logged["test/transfer_ratio"] == pytest.approx(1.0)


def test_validation_logs_pixel_metrics_and_trains_no_oracle(monkeypatch, tmp_path) -> None:
    """Validation during fit: the oracle-free metrics, no oracle. Catches: an oracle trained at
    validation (two minutes of a demo), NaN target accuracies logged, keys no longer logged
    that the demo sweep reads (``val/transfer_l1``)."""
    data = tiny_data()
    monkeypatch.setattr(type(data), "transfer_oracle", lambda self, cache_dir: pytest.fail("oracle at validation"))
    model = tiny_model(class_names=EXPRESSIONS)
    logged = reporting_trainer(tmp_path, limit_val_batches=1.0).validate(model, datamodule=data, verbose=False)[0]
    for key in ("edit_recall", "collateral_l1", "transfer_l1", "l1_no_change", "l1_copy_reference", "transfer_ratio"):
        assert math.isfinite(logged[f"val/{key}"]), key
    assert not [key for key in logged if "target_acc" in key or "oracle" in key]
    assert not (tmp_path / "offline").exists()


def test_data_without_ground_truth_tests_as_before(tmp_path) -> None:
    """Data sets without ground-truth transfers (the real ones: no ``transfer_oracle``, no
    ``target``) test as before. Catches: the model requiring an oracle, training one for any
    data set, logging transfer keys or writing ``test_transfer.json`` without ground truth."""
    rendered_test = tiny_data().split("test")

    class RealFaces(pl.LightningDataModule):
        def test_dataloader(self) -> DataLoader:
            items = [{k: rendered_test[i][k] for k in ("image", "label")} for i in range(len(rendered_test))]
            return DataLoader(items, batch_size=8)

    model = tiny_model(class_names=EXPRESSIONS)
    logged = reporting_trainer(tmp_path).test(model, datamodule=RealFaces(), verbose=False)[0]
    assert "test/acc" in logged and "test/mean_class_acc" in logged
    assert not [key for key in logged if "transfer" in key or "recall" in key or "oracle" in key]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert not (tmp_path / "results" / "test_transfer.json").exists()

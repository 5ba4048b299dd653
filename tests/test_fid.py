"""FID: torchmetrics' metric equals torch-fidelity on the same folders, known answers, offline errors,
per-expression tables.

The Inception net runs at 299 px (about 0.4 s per image on one CPU thread): the sets are
tiny, the weights random (saved to a file once per module), and the layer compared the
64-d one, whose 64 x 64 covariances keep the distance itself instant (2048 x 2048 take a
minute on 2 cores; the same code compares either layer).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch_fidelity
from PIL import Image
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torchmetrics.image.fid import FrechetInceptionDistance

from exprgan.evaluation.fid import (
    INCEPTION_WEIGHTS_FILE,
    InceptionWeightsError,
    fid,
    image_batches,
    inception_fid,
    per_expression_fid,
    to_uint8,
    write_fid_comparison,
)
from tests.conftest import tiny_model


def save_random_inception_weights(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Random weights in the layout of torch-fidelity's InceptionV3 file, for tests (no download).

    Convolutions get He (fan-in) initialisation so that features keep a useful scale through
    the whole depth of the network.
    """

    class Untrained(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # the constructor's: skipped
            return None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({}, path)  # the constructor reads a file
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Untrained("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


SET_SIZE = 5


def _faces(n: int, brightness: float, seed: int) -> torch.Tensor:
    """Smooth random 32 px images in [-1, 1] with values that survive a uint8 PNG round trip."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)
    images = (images * 0.6 + brightness).clamp(0, 1)
    return torch.round(images * 255) / 127.5 - 1


class MeanRGB(nn.Module):
    """A cheap stand-in for Inception: the mean of each channel of uint8 images, ``[N, 3]``."""

    num_features = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.double().mean(dim=(2, 3))


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth", seed=0)


@pytest.fixture(scope="module")
def metric(weights: Path) -> FrechetInceptionDistance:
    return inception_fid(weights, features=64)


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[torch.Tensor, Path]]:
    """Two sets as tensors and as PNG folders: ``{name: (tensor, folder)}``."""
    root = tmp_path_factory.mktemp("fid_sets")
    sets = {}
    for name, brightness, seed in (("a", 0.1, 1), ("b", 0.35, 2)):
        images = _faces(SET_SIZE, brightness, seed)
        folder = root / name
        folder.mkdir()
        for k, pixels in enumerate(to_uint8(images)):
            Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(folder / f"{k:03d}.png")
        sets[name] = (images, folder)
    return sets


def test_fid_equals_torch_fidelity_on_folders(weights, metric, image_sets) -> None:
    (images_a, folder_a), (_, folder_b) = image_sets["a"], image_sets["b"]
    ours = fid(folder_a, folder_b, metric=metric)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(folder_a),
        input2=str(folder_b),
        fid=True,
        feature_layer_fid="64",
        cuda=False,
        feature_extractor_weights_path=str(weights),
        save_cpu_ram=True,  # no DataLoader workers
        cache=False,
        verbose=False,
    )["frechet_inception_distance"]
    print(f"FID on {SET_SIZE} + {SET_SIZE} images, random Inception: ours {ours:.8f}, torch-fidelity {theirs:.8f}")
    assert theirs > 1.0  # the two sets differ, the features are not degenerate
    assert ours == pytest.approx(theirs, rel=1e-5)  # float32 features, rounding of the eigenvalues
    assert fid(images_a, folder_b, metric=metric) == pytest.approx(ours, rel=1e-6)  # a tensor reads as its folder
    assert abs(fid(images_a, images_a, metric=metric)) < 1e-3 * ours  # identical sets


def test_tensor_input_reads_as_the_folder(image_sets) -> None:
    images, folder = image_sets["a"]
    assert torch.equal(torch.cat(list(image_batches(folder, batch_size=3))), to_uint8(images))
    assert torch.equal(to_uint8(images.new_zeros(1, 1, 2, 2)), torch.full((1, 3, 2, 2), 128, dtype=torch.uint8))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        next(image_batches(folder.parent / "nowhere"))


def test_frechet_distance_known_answers() -> None:
    metric = FrechetInceptionDistance(MeanRGB())
    images = torch.randint(0, 200, (8, 3, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert abs(fid(images, images.clone(), metric=metric)) < 1e-9  # identical feature sets
    # equal covariances (a shift of every pixel by 10 levels): only the means count, |mu1 - mu2|^2 = 3 * 10^2
    assert fid(images, images + 10, metric=metric) == pytest.approx(300.0, rel=1e-9)
    # 1-D Gaussians: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    # (3 equal channels: 3 times that)
    narrow = torch.tensor([0, 0, 2, 2, 2, 4]).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).to(torch.uint8)
    wide = torch.tensor([0, 4]).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).to(torch.uint8)
    (m1, v1), (m2, v2) = (5 / 3, 102 / 45), (2.0, 8.0)  # means and sample variances
    expected = 3 * ((m1 - m2) ** 2 + (v1**0.5 - v2**0.5) ** 2)
    assert fid(narrow, wide, metric=metric) == pytest.approx(expected, rel=1e-6)


def test_missing_weights_raise_a_clear_error(weights, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args, **kwargs):
        raise AssertionError("attempted a download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", no_download)

    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(InceptionWeightsError, match="inception.pth") as error:
        inception_fid(missing)
    assert str(missing) in str(error.value) and INCEPTION_WEIGHTS_FILE in str(error.value)

    # no path: torch-fidelity's cache location, empty here (conftest points TORCH_HOME at a tmp dir)
    expected = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE
    with pytest.raises(InceptionWeightsError) as error:
        inception_fid()
    assert str(expected) in str(error.value) and "inception_weights" in str(error.value)
    assert isinstance(error.value, FileNotFoundError)

    assert inception_fid(weights).real_features_sum.shape == (2048,)  # the standard FID's layer by default
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(InceptionWeightsError, match="wrong.pth"):
        inception_fid(wrong)


# --- per-expression FID ---------------------------------------------------------------------

LEVELS = (-0.5, 0.0, 0.5)  # grey level of each expression; uint8 64, 128, 191
NAMES = ["happy", "sad", "angry"]


def _flat_faces(per_class: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(len(LEVELS)).repeat_interleave(per_class)
    images = torch.tensor(LEVELS)[labels].view(-1, 1, 1, 1).expand(-1, 3, 8, 8).clone()
    return images, labels


def _copy_reference(identity, reference, identity_labels, reference_labels):
    assert bool((identity_labels != reference_labels).all())
    assert len(set(reference_labels.tolist())) == 1  # one target expression per call
    return reference.clone()


def _no_change(identity, reference, identity_labels, reference_labels):
    return identity.clone()


def test_per_expression_fid_known_answers() -> None:
    images, labels = _flat_faces()
    metric = FrechetInceptionDistance(MeanRGB())
    copy = per_expression_fid(_copy_reference, images, labels, NAMES, metric=metric, batch_size=3)
    assert list(copy.index) == [*NAMES, "mean"] and list(copy.columns) == ["fid", "real", "generated"]
    assert copy["fid"].tolist() == pytest.approx([0.0] * 4, abs=1e-9)  # transfers = the real faces
    assert copy["real"].tolist() == [4, 4, 4, 12] and copy["generated"].tolist() == [8, 8, 8, 24]

    same = per_expression_fid(_no_change, images, labels, NAMES, metric=metric, targets=[0], progress=False)
    # target happy (64): generated 4x128 and 4x191 -> |159.5 - 64|^2 * 3 + 3 * (8 * 31.5^2 / 7); real covariance 0
    assert same.loc["happy", "fid"] == pytest.approx(3 * 95.5**2 + 3 * 8 * 31.5**2 / 7)
    assert list(same.index) == ["happy", "mean"]


def test_per_expression_fid_is_seeded_and_checks_sizes() -> None:
    images, labels = _flat_faces()
    images = images + torch.linspace(0, 0.3, len(images)).view(-1, 1, 1, 1)  # every face differs
    seen = []

    def record(identity, reference, identity_labels, reference_labels):
        seen.append(reference.mean(dim=(1, 2, 3)))
        return reference

    metric = FrechetInceptionDistance(MeanRGB())
    first = per_expression_fid(record, images, labels, NAMES, metric=metric, seed=3, progress=False)
    draws = torch.cat(seen)
    seen.clear()
    again = per_expression_fid(record, images, labels, NAMES, metric=metric, seed=3, progress=False)
    torch.testing.assert_close(torch.cat(seen), draws)
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(ValueError, match="at least 2"):
        per_expression_fid(record, images[:5], labels[:5], NAMES, metric=metric, progress=False)


def test_per_expression_fid_with_the_model_and_inception(metric) -> None:
    model = tiny_model().eval()
    images, labels = _faces(4, 0.2, seed=5), torch.tensor([0, 0, 3, 3])
    table = per_expression_fid(
        model.transfer, images, labels, list(model.class_names), metric=metric, targets=[3], progress=False
    )
    assert list(table.index) == ["3", "mean"] and table["generated"].tolist() == [2, 2]
    assert table["fid"].notna().all() and (table["fid"] > 0).all()


def test_side_by_side_table(tmp_path) -> None:
    images, labels = _flat_faces()
    metric = FrechetInceptionDistance(MeanRGB())
    tables = {
        "No_InterL": per_expression_fid(_no_change, images, labels, NAMES, metric=metric, progress=False),
        "Ours": per_expression_fid(_copy_reference, images, labels, NAMES, metric=metric, progress=False),
    }
    paths = write_fid_comparison(tables, tmp_path / "fid", stem="table_v")
    comparison = pd.read_csv(paths["csv"], index_col="model")
    assert list(comparison.index) == ["No_InterL", "Ours"] and list(comparison.columns) == [*NAMES, "mean"]
    assert comparison.loc["No_InterL"].tolist() == pytest.approx(tables["No_InterL"]["fid"].tolist())
    markdown = paths["markdown"].read_text().splitlines()
    assert markdown[0] == "| model | happy | sad | angry | mean |"
    assert markdown[3].startswith("| Ours | **0.00** |")  # the lowest FID of each column in bold

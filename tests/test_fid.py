"""FID: equal to torch-fidelity's on the same folders, known answers, offline errors, per-expression tables.

The Inception net runs at 299 px (about 0.4 s per image on one CPU thread): the sets are
tiny and the network is built once per module, with random weights saved to a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch_fidelity
from PIL import Image
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from exprgan.evaluation import (
    InceptionFeatures,
    InceptionWeightsError,
    default_inception_weights_path,
    extract_features,
    fid,
    fid_comparison,
    fid_statistics,
    frechet_distance,
    frechet_distance_from_features,
    per_expression_fid,
    resolve_inception_weights,
    save_random_inception_weights,
    to_uint8,
    write_fid_comparison,
)
from exprgan.evaluation.fid import INCEPTION_WEIGHTS_FILE, image_batches
from tests.conftest import tiny_model

SET_SIZE = 5


def _faces(n: int, brightness: float, seed: int) -> torch.Tensor:
    """Smooth random 32 px images in [-1, 1] with values that survive a uint8 PNG round trip."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    images = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)
    images = (images * 0.6 + brightness).clamp(0, 1)
    return torch.round(images * 255) / 127.5 - 1


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory):
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth", seed=0)


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory: pytest.TempPathFactory):
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


@pytest.fixture(scope="module")
def extractor(weights):
    return InceptionFeatures(weights)


def test_fid_equals_torch_fidelity_on_folders(weights, image_sets) -> None:
    (_, folder_a), (_, folder_b) = image_sets["a"], image_sets["b"]
    ours = fid(folder_a, folder_b, inception_weights=weights)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(folder_a),
        input2=str(folder_b),
        fid=True,
        cuda=False,
        feature_extractor_weights_path=str(weights),
        save_cpu_ram=True,  # no DataLoader workers
        cache=False,
        verbose=False,
    )["frechet_inception_distance"]
    print(f"FID on {SET_SIZE} + {SET_SIZE} images, random Inception: ours {ours:.8f}, torch-fidelity {theirs:.8f}")
    assert theirs > 1.0  # the two sets differ, the features are not degenerate
    # torch-fidelity's eigenvalues of a rank-4 [2048, 2048] product carry rounding noise (~1e-6)
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_tensor_input_reads_as_the_folder(image_sets) -> None:
    images, folder = image_sets["a"]
    from_folder = torch.cat(list(image_batches(folder, batch_size=3)))
    assert torch.equal(from_folder, to_uint8(images))
    assert torch.equal(to_uint8(images.new_zeros(1, 1, 2, 2)), torch.full((1, 3, 2, 2), 128, dtype=torch.uint8))


def test_fid_of_a_set_with_itself_is_zero(extractor, image_sets) -> None:
    images, _ = image_sets["a"]
    features = extract_features(extractor, images, batch_size=4)  # from a tensor, in 2 batches
    assert features.shape == (SET_SIZE, 2048) and features.std() > 0
    assert abs(frechet_distance_from_features(features, features.clone())) < 1e-9


def test_frechet_distance_known_answers() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    # equal covariances: only the means count
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(float(np.sum((mu1 - mu2) ** 2)), rel=1e-9)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    one = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert one == pytest.approx(9.0 + 1.0)
    features = torch.from_numpy(rng.normal(size=(50, 4)))
    mu, cov = fid_statistics(features)
    np.testing.assert_allclose(cov, np.cov(features.numpy(), rowvar=False))
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_is_torch_fidelitys() -> None:
    rng = np.random.default_rng(1)
    f1 = torch.from_numpy(rng.normal(size=(40, 16)).astype(np.float32))
    f2 = torch.from_numpy(rng.normal(1.0, 2.0, size=(30, 16)).astype(np.float32))
    s1, s2 = fid_statistics(f1), fid_statistics(f2)
    theirs = fid_statistics_to_metric(fid_features_to_statistics(f1), fid_features_to_statistics(f2), False)
    assert frechet_distance(*s1, *s2) == theirs["frechet_inception_distance"]  # same computation, bit for bit
    # the low-rank route (fewer samples than dimensions) against the eigenvalue route
    g1, g2 = f1[:10].repeat(1, 4), f2[:7].repeat(1, 4)  # N < D = 64
    expected = frechet_distance(*fid_statistics(g1.double()), *fid_statistics(g2.double()))
    assert frechet_distance_from_features(g1, g2) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance_from_features(f1, f2) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)


def test_missing_weights_raise_a_clear_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args, **kwargs):
        raise AssertionError("attempted a download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", no_download)

    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(InceptionWeightsError, match="inception.pth") as error:
        resolve_inception_weights(missing)
    assert str(missing) in str(error.value) and INCEPTION_WEIGHTS_FILE in str(error.value)

    # no path: torch-fidelity's cache location, empty here (conftest points TORCH_HOME at a tmp dir)
    expected = default_inception_weights_path()
    assert expected == Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE
    with pytest.raises(InceptionWeightsError) as error:
        fid(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    assert str(expected) in str(error.value) and "inception_weights" in str(error.value)
    assert isinstance(error.value, FileNotFoundError)

    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(InceptionWeightsError, match="wrong.pth"):
        InceptionFeatures(wrong)


# --- per-expression FID ---------------------------------------------------------------------

LEVELS = (-0.5, 0.0, 0.5)  # grey level of each expression; uint8 64, 128, 191


def _mean_rgb(images: torch.Tensor) -> torch.Tensor:
    """A cheap stand-in for Inception: the mean of each channel, ``[N, 3]``."""
    return images.float().mean(dim=(2, 3))


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
    names = ["happy", "sad", "angry"]
    copy = per_expression_fid(_copy_reference, images, labels, names, features=_mean_rgb, batch_size=3)
    assert list(copy.index) == [*names, "mean"] and list(copy.columns) == ["fid", "real", "generated"]
    assert copy["fid"].tolist() == pytest.approx([0.0] * 4, abs=1e-9)  # transfers = the real faces
    assert copy["real"].tolist() == [4, 4, 4, 12] and copy["generated"].tolist() == [8, 8, 8, 24]

    same = per_expression_fid(_no_change, images, labels, names, features=_mean_rgb, targets=[0], progress=False)
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

    names = ["happy", "sad", "angry"]
    first = per_expression_fid(record, images, labels, names, features=_mean_rgb, seed=3, progress=False)
    draws = torch.cat(seen)
    seen.clear()
    again = per_expression_fid(record, images, labels, names, features=_mean_rgb, seed=3, progress=False)
    torch.testing.assert_close(torch.cat(seen), draws)
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(ValueError, match="at least 2"):
        per_expression_fid(record, images[:5], labels[:5], names, features=_mean_rgb, progress=False)


def test_per_expression_fid_with_the_model_and_inception(extractor) -> None:
    model = tiny_model().eval()
    images, labels = _faces(4, 0.2, seed=5), torch.tensor([0, 0, 3, 3])
    table = per_expression_fid(
        model.transfer, images, labels, list(model.class_names), features=extractor, targets=[3], progress=False
    )
    assert list(table.index) == ["3", "mean"] and table["generated"].tolist() == [2, 2]
    assert np.isfinite(table["fid"]).all() and (table["fid"] > 0).all()


def test_side_by_side_table(tmp_path) -> None:
    images, labels = _flat_faces()
    names = ["happy", "sad", "angry"]
    tables = {
        "No_InterL": per_expression_fid(_no_change, images, labels, names, features=_mean_rgb, progress=False),
        "Ours": per_expression_fid(_copy_reference, images, labels, names, features=_mean_rgb, progress=False),
    }
    comparison = fid_comparison(tables)
    assert list(comparison.index) == ["No_InterL", "Ours"] and list(comparison.columns) == [*names, "mean"]
    paths = write_fid_comparison(tables, tmp_path / "fid", stem="table_v")
    markdown = paths["markdown"].read_text().splitlines()
    assert markdown[0] == "| model | happy | sad | angry | mean |"
    assert markdown[3].startswith("| Ours | **0.00** |")  # the lowest FID of each column in bold
    read = pd.read_csv(paths["csv"], index_col="model")
    pd.testing.assert_frame_equal(read, comparison, check_names=False)

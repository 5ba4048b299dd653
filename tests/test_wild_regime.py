"""The in-the-wild regime of the rendered faces: skewed single faces, nuisance, the oracle's pool,
shuffled pairs. Every option is off by default and then changes nothing."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from math import floor
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import exprgan.evaluation.oracle as oracle_module
from exprgan.cli import cli_main
from exprgan.datamodules import (
    EXPRESSIONS,
    EmptyClassError,
    SyntheticFacesDataModule,
    UnpairedPairs,
    class_members,
    render,
    sample_pairs,
)
from exprgan.datamodules.base import to_tensor
from exprgan.datamodules.face_renderer import EYE_SPACING, EYE_Y, MOUTH_Y, RENDERER_VERSION, ZOOM
from exprgan.datamodules.nuisance import MAX_ROLL, MAX_YAW, Nuisance, apply_nuisance, sample_nuisance
from exprgan.datamodules.rendered_faces import RAFDB_TRAIN_COUNTS, REGIME_VERSION
from exprgan.evaluation.oracle import ORACLE_VERSION, rendered_oracle
from exprgan.offline import MIN_STEPS
from tests.test_cli import TINY, leaves

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
N = len(EXPRESSIONS)


def data(**overrides) -> SyntheticFacesDataModule:
    """32 px rendered faces, few identities."""
    options = dict(image_size=32, train_identities=6, val_identities=2, test_identities=3)
    options.update(overrides)
    return SyntheticFacesDataModule(**options)


def train_labels(module: SyntheticFacesDataModule) -> list[int]:
    """Training labels without rendering a face."""
    return [e for _, e in module.rows("train")]


def allocation(weights: list[float], total: int) -> list[int]:
    """Largest remainders in exact arithmetic: floors of the quotas, one more to the largest
    fractional parts, ties to the lower class."""
    exact = [Fraction(w) for w in weights]
    quotas = [w * total / sum(exact) for w in exact]
    counts = [floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda c: (-(quotas[c] - counts[c]), c))
    for c in by_remainder[: total - sum(counts)]:
        counts[c] += 1
    return counts


# --- class frequencies ----------------------------------------------------------------------


def test_one_face_per_identity_follows_the_rafdb_frequencies_exactly() -> None:
    module = data(train_identities=100, faces_per_identity=1, class_frequencies="rafdb")
    counts = np.bincount(train_labels(module), minlength=N).tolist()
    assert counts == allocation(list(RAFDB_TRAIN_COUNTS), 100)
    assert counts == [10, 2, 6, 39, 16, 6, 21]  # by hand: floors 10 2 5 38 16 5 20, +1 to .889 .843 .745 .569


@pytest.mark.parametrize(
    ("weights", "total"), [([5, 1, 1, 1, 1, 1, 1], 23), ([0.3, 0.05, 0.1, 0.25, 0.1, 0.1, 0.1], 61)]
)
def test_a_custom_list_is_allocated_by_largest_remainders(weights: list[float], total: int) -> None:
    module = data(train_identities=total, faces_per_identity=1, class_frequencies=weights)
    assert np.bincount(train_labels(module), minlength=N).tolist() == allocation(weights, total)


def test_uniform_frequencies_give_equal_counts_and_the_built_split_has_them() -> None:
    module = data(train_identities=21, faces_per_identity=1)
    train = module.split("train")
    assert np.bincount(train.labels.numpy(), minlength=N).tolist() == [3] * N
    assert train.labels.tolist() == train_labels(module)


def test_k_faces_follow_the_frequencies_in_expectation() -> None:
    module = data(train_identities=3000, faces_per_identity=2, class_frequencies=[4, 1, 1, 1, 1, 1, 1])
    shares = np.bincount(train_labels(module), minlength=N) / 6000
    # drawn without replacement the common class is capped at one per identity: below 4/10, above 1/7
    assert shares[0] == shares.max() and 0.3 < shares[0] < 0.4
    assert np.allclose(shares[1:], shares[1:].mean(), atol=0.02)


# --- faces per identity, balanced evaluation --------------------------------------------------


def test_one_face_per_identity_shows_every_training_identity_once() -> None:
    module = data(train_identities=14, faces_per_identity=1)
    train = module.split("train")
    assert sorted(train.identities.tolist()) == list(module.identities("train"))
    assert len(train) == 14 and train.images.shape == (14, 32, 32, 3)


def test_three_faces_per_identity_are_three_distinct_expressions() -> None:
    module = data(train_identities=10, faces_per_identity=3, class_frequencies="rafdb")
    train = module.split("train")
    shown: dict[int, list[int]] = {}
    for identity, label in zip(train.identities.tolist(), train.labels.tolist()):
        shown.setdefault(identity, []).append(label)
    assert sorted(shown) == list(module.identities("train"))
    assert all(len(set(labels)) == len(labels) == 3 for labels in shown.values())


@pytest.mark.parametrize("split", ["val", "test"])
def test_held_out_splits_stay_balanced(split: str) -> None:
    module = data(train_identities=30, faces_per_identity=1, class_frequencies="rafdb", nuisance=0.5)
    items = module.split(split)
    pairs = list(zip(items.identities.tolist(), items.labels.tolist()))
    assert sorted(pairs) == [(i, e) for i in module.identities(split) for e in range(N)]


def test_the_same_seed_gives_the_same_faces_and_another_seed_another_assignment() -> None:
    options = dict(train_identities=30, faces_per_identity=1, class_frequencies="rafdb", nuisance=1.0)
    first, again = data(**options).split("train"), data(**options).split("train")
    for name in ("images", "labels", "identities"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert train_labels(data(**options, seed=1)) != first.labels.tolist()
    three = dict(options, faces_per_identity=3, class_frequencies="uniform")
    assert train_labels(data(**three, seed=1)) != train_labels(data(**three))


# --- the defaults change nothing; the nuisance ------------------------------------------------


def test_the_defaults_keep_todays_faces_and_fingerprint() -> None:
    default = data()
    assert default.fingerprint() == {
        "renderer": RENDERER_VERSION,
        "image_size": 32,
        "seed": 0,
        "identities": {"train": 6, "val": 2, "test": 3},
        "min_intensity": 0.6,
    }
    spelled = data(faces_per_identity=None, class_frequencies="uniform", nuisance=0.0, oracle_identities=None)
    assert spelled.fingerprint() == default.fingerprint()
    train = default.split("train")
    today = np.stack([render(i, e, default.intensity(i, e), size=32) for i in range(6) for e in range(N)])
    assert np.array_equal(train.images.numpy(), today)
    for split in ("train", "val", "test"):
        ours, theirs = spelled.split(split), default.split(split)
        for name in ("images", "labels", "identities", "reference", "targets"):
            a, b = getattr(ours, name), getattr(theirs, name)
            assert (a is None and b is None) or torch.equal(a, b), (split, name)


def test_the_regime_enters_the_fingerprint() -> None:
    regime = data(train_identities=30, faces_per_identity=1, class_frequencies="rafdb", nuisance=0.5).fingerprint()
    weights = np.asarray(RAFDB_TRAIN_COUNTS) / sum(RAFDB_TRAIN_COUNTS)
    assert regime["regime"]["version"] == REGIME_VERSION
    assert regime["regime"]["faces_per_identity"] == 1 and regime["regime"]["nuisance"] == 0.5
    assert np.allclose(regime["regime"]["class_frequencies"], weights)
    assert data(oracle_identities=4).fingerprint()["regime"]["oracle_identities"] == 4
    assert data(nuisance=0.1).fingerprint() != data(nuisance=0.2).fingerprint()


def test_nuisance_changes_every_face() -> None:
    plain, wild = data().split("train"), data(nuisance=1.0).split("train")
    assert torch.equal(plain.labels, wild.labels)
    assert all(not torch.equal(p, w) for p, w in zip(plain.images, wild.images))


def test_a_transfer_keeps_the_photograph_of_its_source_face() -> None:
    module = data(nuisance=1.0)
    test = module.split("test")
    others = 0
    for index in range(len(test)):
        i, e, r = int(test.identities[index]), int(test.labels[index]), int(test.reference[index])
        nuisance = module.face_nuisance(i, e)
        source = apply_nuisance(render(i, e, module.intensity(i, e), size=32), nuisance)
        assert np.array_equal(test.images[index].numpy(), source)
        ref_identity, ref_label = int(test.identities[r]), int(test.labels[r])
        clean = render(i, ref_label, module.intensity(ref_identity, ref_label), size=32)
        assert np.array_equal(test.targets[index].numpy(), apply_nuisance(clean, nuisance))
        others += not np.array_equal(test.targets[index].numpy(), module.face(i, ref_label))
    assert others == len(test)  # not the identity's own photograph of that expression


def test_no_nuisance_is_the_identity_function() -> None:
    image = render(3, 2, 0.7, size=32)
    assert sample_nuisance(np.random.default_rng(0), 0.0) == Nuisance()
    assert np.array_equal(apply_nuisance(image, Nuisance()), image)
    with pytest.raises(ValueError, match="strength"):
        sample_nuisance(np.random.default_rng(0), 1.5)


def test_pose_fills_revealed_borders_with_edge_pixels_not_black() -> None:
    flat = np.full((64, 64, 3), (200, 120, 40), dtype=np.uint8)  # any border fill but the edge shows here
    pose = Nuisance(yaw=MAX_YAW, roll=-MAX_ROLL, shift=(0.04, -0.04))
    assert np.array_equal(apply_nuisance(flat, pose), flat)
    image = render(1, 3, 1.0, size=64)
    assert not np.array_equal(apply_nuisance(image, pose), image)
    moved = apply_nuisance(image, Nuisance(shift=(0.04, 0.0)))  # 2.56 px to the right
    assert all(np.array_equal(moved[:, k], image[:, 0]) for k in range(3))  # the left edge, repeated


def test_light_blur_and_noise_have_their_known_effect() -> None:
    flat = np.full((32, 32, 3), 100, dtype=np.uint8)
    assert (apply_nuisance(flat, Nuisance(brightness=0.1)) == 126).all()  # 100 + 25.5, rounded
    assert (apply_nuisance(flat, Nuisance(contrast=2.0)) == 73).all()  # 127.5 + 2 (100 - 127.5), rounded
    assert np.array_equal(apply_nuisance(flat, Nuisance(blur=1 / 32)), flat)  # a blur keeps a flat image
    lit = apply_nuisance(flat, Nuisance(gradient=0.4, gradient_angle=0.0)).astype(int)
    assert lit[:, -1].mean() > 130 and lit[:, 0].mean() < 70  # light from the right
    noisy = apply_nuisance(flat, Nuisance(noise=0.03, noise_seed=5)).astype(float)
    assert 0.025 * 255 < noisy.std() < 0.035 * 255
    assert np.array_equal(noisy, apply_nuisance(flat, Nuisance(noise=0.03, noise_seed=5)))


def test_the_draws_scale_with_strength_and_occluders_spare_a_mouth_or_the_eyes() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_nuisance(rng, 1.0) for _ in range(2000)]
    assert max(abs(d.yaw) for d in draws) <= MAX_YAW and max(abs(d.yaw) for d in draws) > 0.9 * MAX_YAW
    assert 0.25 < np.mean([d.occluder is not None for d in draws]) < 0.35
    half = [sample_nuisance(rng, 0.5) for _ in range(500)]
    assert max(abs(d.yaw) for d in half) <= 0.5 * MAX_YAW and max(d.blur for d in half) <= 0.5 / 64
    white, size = np.full((64, 64, 3), 255, dtype=np.uint8), 64
    eyes = [(0.5 + side * ZOOM * EYE_SPACING, 0.5 + ZOOM * EYE_Y) for side in (-1, 1)]
    mouth = (0.5, 0.5 + ZOOM * MOUTH_Y)

    def covered(mask: np.ndarray, point: tuple[float, float]) -> bool:
        return bool(mask[int(point[1] * size), int(point[0] * size)])

    kinds = Counter()
    for occluder in [d.occluder for d in draws if d.occluder is not None]:
        kinds[occluder.kind] += 1
        mask = (apply_nuisance(white, Nuisance(occluder=occluder)) != 255).any(2)
        assert not covered(mask, mouth), occluder
        if occluder.kind == "glasses":
            assert all(covered(mask, eye) for eye in eyes), occluder  # sunglasses hide both eyes
        else:
            assert sum(covered(mask, eye) for eye in eyes) <= 1, occluder
    assert set(kinds) == {"glasses", "patch"}


# --- the oracle's pool ----------------------------------------------------------------------


def test_the_oracle_pool_is_disjoint_and_balanced_and_by_default_the_training_faces() -> None:
    module = data(oracle_identities=3, nuisance=0.5)
    pool = module.identities("oracle")
    assert pool == range(11, 14)
    for split in ("train", "val", "test"):
        assert not set(pool) & set(module.identities(split))
    images, labels = module.oracle_faces()
    assert images.shape == (21, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    rows = module.rows("oracle")
    assert sorted(rows) == [(i, e) for i in pool for e in range(N)]
    assert labels.tolist() == [e for _, e in rows]
    i, e = rows[5]
    assert torch.equal(images[5], to_tensor(module.face(i, e)))
    default = data()
    for got, expected in zip(default.oracle_faces(), default.training_faces()):
        assert torch.equal(got, expected)


def _oracle_key(module: SyntheticFacesDataModule, monkeypatch) -> tuple[dict, object]:
    """The cache key ``rendered_oracle`` asks for, and its training function (nothing trained)."""
    seen = {}

    def fake_cached(network, cache_dir, name, key, train):
        seen.update(key=key, train=train)
        return network

    monkeypatch.setattr(oracle_module, "cached", fake_cached)
    rendered_oracle(module, "unused", progress=False)
    return seen["key"], seen["train"]


def test_the_oracle_key_is_todays_by_default_and_names_the_pool_when_used(monkeypatch) -> None:
    key, _ = _oracle_key(data(), monkeypatch)
    assert key == {
        "data": {"renderer": RENDERER_VERSION, "image_size": 32, "seed": 0, "identities": 6, "min_intensity": 0.6},
        "classes": N,
        "seed": 1234,
        "epochs": 15,
        "min_steps": MIN_STEPS,
        "version": ORACLE_VERSION,
    }
    module = data(oracle_identities=2)
    key, train = _oracle_key(module, monkeypatch)
    assert key["data"]["identities"] == {"oracle": [11, 13]}
    assert key["data"]["regime"]["oracle_identities"] == 2
    seen = {}
    monkeypatch.setattr(oracle_module, "train_classifier", lambda net, images, labels, **_: seen.update(labels=labels))
    train(None)
    assert torch.equal(seen["labels"], module.oracle_faces()[1]) and len(seen["labels"]) == 2 * N


# --- shuffled pairs ---------------------------------------------------------------------------

# sample_pairs(class_members(CYCLED_LABELS, 7), step, 6, seed=3, rank=1) before "shuffled" existed
CYCLED_LABELS = [0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 1, 3, 0]
CYCLED = {
    0: ([1, 0, 13, 1, 13, 1], [0, 0, 0, 0, 0, 0], [3, 8, 7, 12, 9, 7], [2, 5, 4, 3, 6, 4]),
    1: ([2, 2, 11, 11, 2, 11], [1, 1, 1, 1, 1, 1], [7, 9, 9, 10, 8, 7], [4, 6, 6, 6, 5, 4]),
    5: ([8, 8, 8, 8, 8, 8], [5, 5, 5, 5, 5, 5], [4, 4, 9, 13, 9, 2], [2, 2, 6, 0, 6, 1]),
    13: ([10, 10, 10, 9, 10, 9], [6, 6, 6, 6, 6, 6], [13, 8, 11, 5, 7, 1], [0, 5, 1, 2, 4, 0]),
}


@pytest.mark.parametrize("step", sorted(CYCLED))
def test_cycled_sampling_is_unchanged(step: int) -> None:
    members = class_members(CYCLED_LABELS, N)
    for sampling in ({}, {"sampling": "cycled"}):
        got = sample_pairs(members, step, 6, seed=3, rank=1, **sampling)
        assert [part.tolist() for part in got] == [list(part) for part in CYCLED[step]]


def test_shuffled_sampling_follows_the_training_frequencies() -> None:
    labels = np.repeat(np.arange(N), [40, 2, 8, 120, 30, 5, 60])
    members = class_members(labels, N)
    drawn_a, drawn_b = [], []
    for step in range(400):
        index_a, label_a, index_b, label_b = sample_pairs(members, step, 16, seed=2, sampling="shuffled")
        assert np.array_equal(labels[index_a], label_a) and np.array_equal(labels[index_b], label_b)
        assert (label_a != label_b).all()
        drawn_a.append(label_a)
        drawn_b.append(label_b)
    label_a, label_b = np.concatenate(drawn_a), np.concatenate(drawn_b)
    assert np.allclose(np.bincount(label_a, minlength=N) / label_a.size, np.bincount(labels) / labels.size, atol=0.015)
    # given y_a = happiness, I_b is uniform over the other 145 items
    others = np.bincount(labels, minlength=N) * (np.arange(N) != 3)
    after_happiness = np.bincount(label_b[label_a == 3], minlength=N) / (label_a == 3).sum()
    assert np.allclose(after_happiness, others / others.sum(), atol=0.03)
    first = sample_pairs(members, 7, 16, seed=2, rank=1, sampling="shuffled")
    again = sample_pairs(members, 7, 16, seed=2, rank=1, sampling="shuffled")
    other_rank = sample_pairs(members, 7, 16, seed=2, rank=0, sampling="shuffled")
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], other_rank[0])


def test_the_datamodule_threads_sampling_into_the_pair_stream() -> None:
    shuffled = data(train_identities=4, batch_size=32, sampling="shuffled")
    batch = next(iter(shuffled.train_dataloader()))
    assert shuffled._pairs is not None and shuffled._pairs.sampling == "shuffled"
    assert len(set(batch["label_a"].tolist())) > 1  # cycled: one target expression a step
    assert (batch["label_a"] != batch["label_b"]).all()
    cycled = data(train_identities=4, batch_size=32)
    assert len(set(next(iter(cycled.train_dataloader()))["label_a"].tolist())) == 1


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequencies", "message"),
    [
        ([1, 2, 3], "one weight per expression"),
        ([1, 1, 1, -1, 1, 1, 1], "non-negative"),
        ([0] * 7, "all zero"),
        ("ckplus", "'ckplus'"),
        (0.5, "one weight per expression .* got 0.5"),
    ],
)
def test_bad_class_frequencies_are_named(frequencies, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        data(faces_per_identity=1, class_frequencies=frequencies)


def test_skewed_frequencies_need_faces_per_identity() -> None:
    with pytest.raises(ValueError, match="needs faces_per_identity"):
        data(class_frequencies="rafdb")
    data(class_frequencies=[2.0] * N)  # equal weights are uniform


def test_a_class_without_a_training_face_is_named_with_a_remedy() -> None:
    # RAF-DB over 10 identities: floors 1 0 0 3 1 0 2, the remainders go to happiness, sadness, disgust
    with pytest.raises(EmptyClassError, match=r"'fear' \(1.*'anger' \(5.*use more than 10 train_identities"):
        data(train_identities=10, faces_per_identity=1, class_frequencies="rafdb")
    for k in (1, 3):
        with pytest.raises(EmptyClassError, match=r"'disgust' \(2.*non-zero frequency"):
            data(train_identities=50, faces_per_identity=k, class_frequencies=[1, 1, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("k", [0, 7, -1])
def test_faces_per_identity_out_of_range(k: int) -> None:
    with pytest.raises(ValueError, match="faces_per_identity must be None"):
        data(faces_per_identity=k)


def test_other_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="sampling must be one of .* got 'balanced'"):
        data(sampling="balanced")
    with pytest.raises(ValueError, match="'balanced'"):
        sample_pairs(class_members(CYCLED_LABELS, N), 0, 2, sampling="balanced")
    with pytest.raises(ValueError, match="'balanced'"):
        UnpairedPairs(CYCLED_LABELS, lambda i: torch.zeros(3, 4, 4), N, 2, 5, sampling="balanced")
    with pytest.raises(ValueError, match="nuisance must be in"):
        data(nuisance=1.5)
    with pytest.raises(ValueError, match="oracle_identities"):
        data(oracle_identities=0)


# --- the config -----------------------------------------------------------------------------


def test_the_wild_overlay_composes_with_the_demo(capsys) -> None:
    configs = ["--config", str(EXPERIMENTS / "demo.yaml"), "--config", str(EXPERIMENTS / "wild.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", *configs, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = leaves(yaml.safe_load(capsys.readouterr().out))
    for key, value in leaves(yaml.safe_load((EXPERIMENTS / "wild.yaml").read_text())).items():
        assert printed[key] == value, key
    assert printed["data.class_path"] == "exprgan.datamodules.SyntheticFacesDataModule"


def test_the_wild_overlay_trains_one_fast_dev_run_step(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cli_main(
        [
            "fit",
            *("--config", str(EXPERIMENTS / "demo.yaml"), "--config", str(EXPERIMENTS / "wild.yaml")),
            *TINY,
            "--data.init_args.train_identities=20",  # RAF-DB's rarest class needs about 20 single faces
            "--data.init_args.oracle_identities=2",
            "--trainer.fast_dev_run=1",
            "--trainer.logger=false",
            "--trainer.callbacks=null",
            "--trainer.enable_progress_bar=false",
        ]
    )

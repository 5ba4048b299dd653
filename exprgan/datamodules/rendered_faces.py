"""``SyntheticFacesDataModule``: the built-in demo data set of rendered faces, with transfer ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from exprgan.datamodules.base import PairDataModule, to_tensor
from exprgan.datamodules.face_renderer import EXPRESSIONS, RENDERER_VERSION, render
from exprgan.datamodules.nuisance import Nuisance, apply_nuisance, sample_nuisance
from exprgan.datamodules.pairs import EmptyClassError, Sampling
from exprgan.evaluation.oracle import rendered_oracle

# RAF-DB basic's training images per class in EXPRESSIONS order (Li, Deng and Du, CVPR 2017:
# the train_* rows of EmoLabel/list_patition_label.txt, 12,271 in all)
RAFDB_TRAIN_COUNTS: tuple[int, ...] = (1290, 281, 717, 4772, 1982, 705, 2524)
REGIME_VERSION = 2  # part of the fingerprint of the in-the-wild options: bump when their faces change


def class_weights(frequencies: str | Sequence[float]) -> np.ndarray:
    """``"uniform"``, ``"rafdb"`` (:data:`RAFDB_TRAIN_COUNTS`) or one non-negative weight per
    expression, as probabilities ``[7]`` (float64, summing to 1)."""
    n = len(EXPRESSIONS)
    if isinstance(frequencies, str):
        named = {"uniform": (1,) * n, "rafdb": RAFDB_TRAIN_COUNTS}
        if frequencies not in named:
            raise ValueError(
                f"class_frequencies must be 'uniform', 'rafdb' or a list of {n} weights, got {frequencies!r}"
            )
        frequencies = named[frequencies]
    weights = np.asarray(frequencies, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(
            f"class_frequencies needs one weight per expression ({n}: {', '.join(EXPRESSIONS)}), got {frequencies!r}"
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError(f"class_frequencies must be finite and non-negative, got {frequencies!r}")
    if weights.sum() == 0:
        raise ValueError(f"class_frequencies are all zero: {frequencies!r}")
    return weights / weights.sum()


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """``total`` items split in proportion to ``weights``: the floor of every quota, then one more
    to the largest fractional parts (ties: the lower index). ``[len(weights)]`` int64, summing to ``total``."""
    quotas = np.asarray(weights, dtype=np.float64) / np.sum(weights) * total
    counts = np.floor(quotas).astype(np.int64)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


class _Items(Dataset):
    """Rendered faces; evaluation splits add a reference face and the transfer ground truth."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        identities: torch.Tensor,
        reference: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> None:
        self.images, self.labels, self.identities = images, labels, identities
        self.reference, self.targets = reference, targets

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        """Face ``index`` as ``uint8 [S, S, 3]``."""
        return self.images[index].numpy()

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {
            "image": to_tensor(self.image(index)),
            "label": self.labels[index],
            "subject": self.identities[index],
        }
        if self.reference is not None and self.targets is not None:
            ref = int(self.reference[index])
            item["reference"] = to_tensor(self.image(ref))
            item["reference_label"] = self.labels[ref]
            item["target"] = to_tensor(self.targets[index].numpy())
        return item


def _faces(items: _Items) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``items`` as ``[N, 3, S, S]`` in ``[-1, 1]``, and the labels ``[N]``."""
    return torch.stack([to_tensor(items.image(i)) for i in range(len(items))]), items.labels


class SyntheticFacesDataModule(PairDataModule):
    """Procedurally rendered faces of the 7 RAF-DB expressions; trains anywhere, no download.

    Every identity appears once with each expression, at an intensity drawn from
    ``[min_intensity, 1]``. Train, validation and test identities are disjoint. Evaluation
    items pair every face with a reference face of another identity and another
    expression, and carry the ground-truth transfer
    ``render(identity of the face, expression and intensity of the reference)``, so the
    test measures transfers (:mod:`exprgan.evaluation.transfer`), judged by the oracle of
    :meth:`transfer_oracle`.

    An in-the-wild regime, every option off by default: ``faces_per_identity`` and
    ``class_frequencies`` make the training split look like RAF-DB's (few photographs a
    person, skewed classes; validation and test stay balanced), ``nuisance`` adds what an
    aligned photograph keeps (:mod:`exprgan.datamodules.nuisance`; a transfer's ground truth
    keeps the nuisance of its source face: it changes the expression, not the photograph),
    and ``oracle_identities`` trains the oracle on a balanced pool of extra identities.

    Args:
        image_size: side in pixels (a multiple of 32).
        train_identities, val_identities, test_identities: identities per split.
        min_intensity: lowest expression intensity.
        faces_per_identity: ``None``: every training identity shows all 7 expressions;
            ``k`` in 1..6: ``k`` distinct ones. ``1``: the labels are allocated exactly to
            ``class_frequencies`` (largest remainders over ``train_identities`` faces), then
            dealt to the identities in a seeded order; ``k > 1``: each identity draws ``k``
            expressions without replacement, with probabilities ``class_frequencies`` (which
            flattens a skew: a person cannot show a class twice).
        class_frequencies: ``"uniform"``, ``"rafdb"`` (:data:`RAFDB_TRAIN_COUNTS`) or 7
            non-negative weights in :data:`~exprgan.datamodules.face_renderer.EXPRESSIONS`
            order; only with ``faces_per_identity`` (all 7 expressions a person are uniform).
        nuisance: strength in ``[0, 1]`` of pose, light, occluders, blur and noise, drawn per
            face from ``(seed, identity, expression)``; 0: none.
        oracle_identities: ``None``: the oracle trains on the training faces; an int: on
            that many extra identities after the test range, all 7 expressions each, with
            the same nuisance and intensities (:meth:`oracle_faces`).
        batch_size, eval_batch_size, num_workers, seed, steps_per_epoch, sampling: see
            :class:`~exprgan.datamodules.base.PairDataModule`.
    """

    num_expressions = len(EXPRESSIONS)
    class_names = EXPRESSIONS

    def __init__(
        self,
        image_size: int = 64,
        train_identities: int = 300,
        val_identities: int = 30,
        test_identities: int = 100,
        min_intensity: float = 0.6,
        faces_per_identity: int | None = None,
        class_frequencies: str | list[float] = "uniform",
        nuisance: float = 0.0,
        oracle_identities: int | None = None,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        sampling: Sampling = "cycled",
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, seed, steps_per_epoch, sampling)
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        n = self.num_expressions
        if faces_per_identity is not None and not (isinstance(faces_per_identity, int) and 1 <= faces_per_identity < n):
            raise ValueError(
                f"faces_per_identity must be None (all {n} expressions) or in 1..{n - 1}, got {faces_per_identity}"
            )
        weights = class_weights(class_frequencies)
        if faces_per_identity is None and not np.allclose(weights, 1 / n):
            raise ValueError(
                f"class_frequencies {class_frequencies!r} needs faces_per_identity: with all {n} expressions "
                "a person the classes are uniform"
            )
        if not 0.0 <= nuisance <= 1.0:
            raise ValueError(f"nuisance must be in [0, 1], got {nuisance}")
        if oracle_identities is not None and oracle_identities < 1:
            raise ValueError(f"oracle_identities must be None (the training faces) or >= 1, got {oracle_identities}")
        self.image_size = image_size
        self.split_sizes = {"train": train_identities, "val": val_identities, "test": test_identities}
        self.min_intensity = min_intensity
        self.faces_per_identity = faces_per_identity
        self.class_frequencies = class_frequencies
        self.class_weights = weights
        self.nuisance = float(nuisance)
        self.oracle_identities = oracle_identities
        self._splits: dict[str, _Items] = {}
        self._shown = self._training_expressions()  # cheap, and a class left empty raises here

    def identities(self, split: str) -> range:
        """Identity numbers of ``split`` (``train``, ``val``, ``test`` or ``oracle``, the oracle's
        pool after the test range: empty unless ``oracle_identities``); the ranges are disjoint."""
        start = 0
        for name in ("train", "val", "test"):
            if name == split:
                return range(start, start + self.split_sizes[name])
            start += self.split_sizes[name]
        if split == "oracle":
            return range(start, start + (self.oracle_identities or 0))
        raise ValueError(f"unknown split {split!r}")

    def _training_expressions(self) -> list[np.ndarray] | None:
        """The expressions every training identity shows (``None``: all of them)."""
        k, weights = self.faces_per_identity, self.class_weights
        if k is None:
            return None
        ids = self.identities("train")

        def no_face(classes: np.ndarray, remedy: str) -> EmptyClassError:
            listed = ", ".join(f"{EXPRESSIONS[c]!r} ({c}, frequency {weights[c]:.4f})" for c in classes)
            return EmptyClassError(
                f"with faces_per_identity {k} and class_frequencies {self.class_frequencies!r}, these classes "
                f"get no training face: {listed}; {remedy}"
            )

        if not len(ids):  # no training split: nothing to learn from
            return []
        if (weights == 0).any():
            raise no_face(np.flatnonzero(weights == 0), "every class needs a non-zero frequency")
        if k == 1:  # exactly the class frequencies, dealt in a seeded order
            labels = np.repeat(np.arange(self.num_expressions), largest_remainder(weights, len(ids)))
            rng = np.random.default_rng([self.seed, len(ids), 0xFAC1])
            shown = np.empty(len(ids), dtype=np.int64)
            shown[rng.permutation(len(ids))] = labels
            expressions = [shown[j : j + 1] for j in range(len(ids))]
        else:  # every identity draws its own k: adding identities leaves the others as they were
            expressions = [
                np.sort(np.random.default_rng([self.seed, i, 0xFACE]).choice(len(weights), k, replace=False, p=weights))
                for i in ids
            ]
        counts = np.bincount(np.concatenate(expressions), minlength=self.num_expressions)
        if (counts == 0).any():
            raise no_face(np.flatnonzero(counts == 0), f"use more than {len(ids)} train_identities")
        return expressions

    def rows(self, split: str) -> list[tuple[int, int]]:
        """``(identity, expression)`` of every face of ``split``, by identity."""
        ids = self.identities(split)
        if split == "train" and self._shown is not None:
            return [(i, int(e)) for i, shown in zip(ids, self._shown) for e in shown]
        return [(i, e) for i in ids for e in range(self.num_expressions)]

    def intensity(self, identity: int, expression: int) -> float:
        """The intensity identity ``identity`` shows ``expression`` with in this data set."""
        rng = np.random.default_rng([self.seed, identity, expression, 0x17])
        return float(rng.uniform(self.min_intensity, 1.0))

    def render(self, identity: int, expression: int, intensity: float) -> np.ndarray:
        """:func:`~exprgan.datamodules.face_renderer.render` at this data set's size and seed."""
        return render(identity, expression, intensity, size=self.image_size, seed=self.seed)

    def face_nuisance(self, identity: int, expression: int) -> Nuisance:
        """The nuisance of the photograph of ``identity`` showing ``expression`` (identity at strength 0)."""
        return sample_nuisance(np.random.default_rng([self.seed, identity, expression, 0x2B15]), self.nuisance)

    def face(self, identity: int, expression: int) -> np.ndarray:
        """The face of ``identity`` showing ``expression`` in this data set: ``uint8 [S, S, 3]``."""
        image = self.render(identity, expression, self.intensity(identity, expression))
        return apply_nuisance(image, self.face_nuisance(identity, expression))

    def _build(self, split: str) -> _Items:
        ids = self.identities(split)
        rows = self.rows(split)
        images = np.stack(
            [
                self.face(i, e)
                for i, e in tqdm(rows, desc=f"rendering {split} faces", leave=False, disable=len(rows) < 500)
            ]
        )
        labels = np.array([e for _, e in rows], dtype=np.int64)
        identities = np.array([i for i, _ in rows], dtype=np.int64)
        tensors = [torch.from_numpy(a) for a in (images, labels, identities)]
        if split in ("train", "oracle"):  # trained on directly or through the pair stream: no references
            return _Items(*tensors)
        if len(ids) < 2:
            raise ValueError(f"the {split} split needs at least 2 identities for its transfer pairs, got {len(ids)}")
        # a reference of another identity and another expression for every face
        rng = np.random.default_rng([self.seed, len(ids), 0x5EF])
        reference = np.empty(len(rows), dtype=np.int64)
        for k, (i, e) in enumerate(rows):
            candidates = np.flatnonzero((identities != i) & (labels != e))
            reference[k] = candidates[rng.integers(len(candidates))]
        # the reference's expression and intensity on the face's identity, in the face's photograph
        targets = np.stack(
            [
                apply_nuisance(
                    self.render(i, int(labels[r]), self.intensity(int(identities[r]), int(labels[r]))),
                    self.face_nuisance(i, e),
                )
                for (i, e), r in zip(rows, reference)
            ]
        )
        return _Items(*tensors, torch.from_numpy(reference), torch.from_numpy(targets))

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, ("train", "val", "test")) if stage else ("train", "val", "test"):
            if split not in self._splits and self.split_sizes[split] > 0:
                self._splits[split] = self._build(split)

    def fingerprint(self) -> dict[str, object]:
        """Everything the rendered faces depend on: a cache key for networks trained on them
        (``regime`` only when an in-the-wild option is set: the defaults keep the demo's keys)."""
        fingerprint: dict[str, object] = {
            "renderer": RENDERER_VERSION,
            "image_size": self.image_size,
            "seed": self.seed,
            "identities": self.split_sizes,
            "min_intensity": self.min_intensity,
        }
        if self.faces_per_identity is not None or self.nuisance != 0.0 or self.oracle_identities is not None:
            fingerprint["regime"] = {
                "version": REGIME_VERSION,
                "faces_per_identity": self.faces_per_identity,
                "class_frequencies": self.class_weights.tolist(),
                "nuisance": self.nuisance,
                "oracle_identities": self.oracle_identities,
            }
        return fingerprint

    def training_faces(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The real training faces ``[N, 3, S, S]`` in ``[-1, 1]`` and their labels ``[N]``,
        for networks trained offline on them."""
        return _faces(self.split("train"))

    def oracle_faces(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The faces the oracle trains on, as :meth:`training_faces`: those, or with
        ``oracle_identities`` the pool of extra identities (all 7 expressions each)."""
        if self.oracle_identities is None:
            return self.training_faces()
        if "oracle" not in self._splits:
            self._splits["oracle"] = self._build("oracle")
        return _faces(self._splits["oracle"])

    def transfer_oracle(self, cache_dir: str | Path) -> nn.Module:
        """The independent judge of transfers to this data's ground truth: an oracle expression
        classifier trained on the real faces of :meth:`oracle_faces`, cached in ``cache_dir``
        (:func:`~exprgan.evaluation.oracle.rendered_oracle`). A model's test asks its data for
        one; data sets without ground-truth transfers have no such method."""
        return rendered_oracle(self, cache_dir)

    def split(self, name: str) -> _Items:
        """The rendered items of ``name`` (``train``, ``val`` or ``test``)."""
        if name not in self._splits:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[name])
        return self._splits[name]

"""Subject-independent k-fold cross-validation: every subject's images lie in exactly one fold.

Folds are balanced in images, not only in subjects: subjects are taken from the one with
the most images down (ties in a seeded random order) and each goes to the fold holding
the fewest images so far (ties: fewest subjects, then lowest index). The assignment is a
pure function of ``(subject -> image count, num_folds, seed)``, so a listing of the raw
tree and a preprocessed cache of it (index plus failures) give the same folds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd


def subject_folds(subjects: Iterable[str], num_folds: int = 5, seed: int = 0) -> dict[str, int]:
    """Fold of every subject, balancing the number of items per fold.

    Args:
        subjects: the subject of every item (repeats count as that subject's items).
        num_folds: ``k``.
        seed: order of subjects with equal item counts.

    Raises:
        ValueError: fewer distinct subjects than folds, or an empty subject name.
    """
    counts = Counter(subjects)
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    if "" in counts:
        raise ValueError(f"{counts['']} items have no subject: subject-independent folds need every subject")
    if len(counts) < num_folds:
        raise ValueError(f"{num_folds}-fold cross-validation needs at least {num_folds} subjects, got {len(counts)}")
    names = sorted(counts)
    order = np.random.default_rng([seed, 0xF01D]).permutation(len(names))
    ranked = sorted(range(len(names)), key=lambda k: (-counts[names[k]], int(order[k])))
    items, members = [0] * num_folds, [0] * num_folds
    folds: dict[str, int] = {}
    for k in ranked:
        fold = min(range(num_folds), key=lambda f: (items[f], members[f], f))
        folds[names[k]] = fold
        items[fold] += counts[names[k]]
        members[fold] += 1
    return folds


def assign_folds(frame: pd.DataFrame, num_folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """``frame`` with its ``fold`` column set from its ``subject`` column (see :func:`subject_folds`)."""
    folds = subject_folds(frame["subject"], num_folds, seed)
    return frame.assign(fold=frame["subject"].map(folds).astype(np.int64))


def check_fold(fold: int, num_folds: int) -> None:
    """Raise a ``ValueError`` unless ``0 <= fold < num_folds``."""
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be in 0..{num_folds - 1} for {num_folds}-fold cross-validation, got {fold}")

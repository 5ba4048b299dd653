"""The trade-off weights of the overall objective (Eq. 12)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms; defaults are the paper's (Sec. IV-B).

    ``L = L_adv + L_inter + L_C + l1 * L_r + l2 * L_per + l3 * L_p + l4 * TV`` for G, and
    ``L_adv + L_inter + r1 / 2 * R1`` for D.

    Attributes:
        reconstruction: lambda1, on ``L_r`` (10).
        perceptual: lambda2, on ``L_per`` (15).
        pixel_sum: lambda3, on ``L_p`` (5).
        total_variation: lambda4, on TV of the synthesised images (5).
        adversarial: weight of ``L_adv`` (1).
        interpolation: weight of ``L_inter`` (1; 0 is the No_InterL ablation).
        classification: weight of ``L_C`` in the generator's loss (1; 0 is the TwoStage
            ablation: no classifier gradient reaches G).
        r1: ``gamma`` of the R1 gradient penalty on D at real faces, ``gamma / 2 *
            E||grad D||^2`` (0, the paper: none). Not in the paper; a common stabiliser that
            smooths what D tells G.
        mismatch: weight of a term that teaches D to call a *real* face fake when it is given
            the other face's label (``(I_a, y_b)``, ``(I_b, y_a)``: what "no change" would
            produce), the matching-aware discriminator of Reed et al. 2016 (0, the paper:
            none). Not in the paper: without it D may tell generated faces from real ones by
            texture alone and never check the expression against the label.
        change: weight of :func:`~exprgan.losses.change_l1` in G's loss, the L1 size of its
            edits (0, the paper: none). Not in the paper: it keeps the pixels the expression
            does not need (skin, hair, background) as they were.
        synthesized: weight of each generated face in C's own loss (Eq. 8), a real face's
            being 1 (1, the paper: C reads them as it reads real faces). Below 1 the generated
            faces' share of what C learns shrinks (with ``synthesized_images``); G's ``L_C``
            counts them as before. 0 is not No_SynFI: C's backbone (its BatchNorm statistics)
            still reads them.

    A weight of 0 skips its term's computation (0 perceptual weight: no VGG19 is built).
    """

    reconstruction: float = 10.0
    perceptual: float = 15.0
    pixel_sum: float = 5.0
    total_variation: float = 5.0
    adversarial: float = 1.0
    interpolation: float = 1.0
    classification: float = 1.0
    r1: float = 0.0
    mismatch: float = 0.0
    change: float = 0.0
    synthesized: float = 1.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {value}")

"""The training objective (paper Eq. 5-12): what D, G and C each minimise on one batch of pairs.

Plain networks in, ``(loss, terms)`` out: a term is named by its :class:`~exprgan.losses.LossWeights`
field and a loss is ``sum(weight[name] * term)``. :class:`~exprgan.joint.JointExprGAN` steps the optimisers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from exprgan.losses import (
    LossWeights,
    PerceptualLoss,
    change_l1,
    classification_loss,
    d_adversarial_loss,
    multiscale_adversarial_loss,
    pixel_sum_loss,
    r1_penalty,
    reconstruction_loss,
    total_variation,
)
from exprgan.models import ExpressionClassifier, Generator, GeneratorOutput, MultiScaleDiscriminator

Terms = dict[str, torch.Tensor]
Parts = dict[str, tuple[torch.Tensor, torch.Tensor]]  # named (images, labels) D judges in one call


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stops before the bad update."""


def check_finite(terms: Terms, step: int) -> None:
    """Raise :class:`NonFiniteLossError` naming every non-finite term of batch ``step``."""
    values = torch.stack([t.detach().float() for t in terms.values()])
    if not bool(torch.isfinite(values).all()):
        bad = ", ".join(f"{name} = {v}" for name, v in zip(terms, values.tolist()) if not math.isfinite(v))
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {bad}. "
            "Training stopped before this update; the last checkpoint is the last good state."
        )


@dataclass(frozen=True)
class Pairs:
    """One batch of unpaired pairs ``(I_a, y_a), (I_b, y_b)`` with ``y_a != y_b``: images ``[N, 3, H, W]``."""

    a: torch.Tensor
    b: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor

    @classmethod
    def from_batch(cls, batch: Mapping[str, torch.Tensor]) -> Pairs:
        return cls(batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"])

    @property
    def real(self) -> torch.Tensor:  # [I_a, I_b]
        return torch.cat([self.a, self.b])

    @property
    def real_labels(self) -> torch.Tensor:  # their own labels: [y_a, y_b]
        return torch.cat([self.y_a, self.y_b])

    @property
    def given_labels(self) -> torch.Tensor:  # the labels [I_c, I_d] (and the interpolated pair) were given
        return torch.cat([self.y_b, self.y_a])


@dataclass
class BackboneFeatures:
    """C's backbone features of one step's faces, computed once for the G and C phases.

    C does not change between the two phases, so one pass on the real and generated faces
    together serves both (a BatchNorm backbone updates its statistics once). The generated faces
    enter detached, as ``pixels``: the graph reaches C only, so each phase's backward pass reaches
    its own network (as DDP requires), and G's ``L_C`` reaches G through :meth:`pixel_gradient`.

    Attributes:
        features: of ``[I_a, I_b (, I_c, I_d)]``: ``[2N (+2N), C, H/32, W/32]``; ``num_real``: ``2N``.
        pixels: the detached ``[I_c, I_d]``, or None when C never reads generated faces (No_SynFI).
    """

    features: torch.Tensor
    num_real: int
    pixels: torch.Tensor | None = None

    @property
    def real(self) -> torch.Tensor:
        return self.features[: self.num_real]

    def pixel_gradient(self, grad_features: torch.Tensor) -> torch.Tensor:
        """The backbone's vector-Jacobian product: a gradient on ``features`` carried back to
        ``pixels`` (input gradients only; the graph is kept for the C phase)."""
        assert self.pixels is not None
        (grad,) = torch.autograd.grad(self.features, self.pixels, grad_features, retain_graph=True)
        return grad


def judge(discriminator: nn.Module, parts: Parts) -> dict[str, list[torch.Tensor]]:
    """D on named ``(images, labels)`` parts in one call: each part's logits, one tensor per scale."""
    images, labels = zip(*parts.values())
    sizes = [len(x) for x in images]
    logits = discriminator(torch.cat(images), torch.cat(labels))
    per_scale = [scale.split(sizes) for scale in logits]
    return {name: [scale[k] for scale in per_scale] for k, name in enumerate(parts)}


class Objective:
    """The D, G and C objectives of one training batch, over plain networks.

    Per batch: :meth:`generate` once, then :meth:`d_loss`, :meth:`backbone_features` (shared by
    the next two), :meth:`g_loss` and :meth:`c_loss`; the caller back-propagates each loss into
    its own network and steps its optimiser between the calls.

    Args:
        generator, discriminator, classifier: G, D1/D2 and C.
        perceptual: the frozen network of ``L_per`` (None: no perceptual term).
        weights: the lambdas of Eq. 12 and the terms not in the paper; a weight of 0 skips its term.
        r1_every: R1 every this many batches, this many times its weight (lazy regularisation).
        synthesized_images: C trains on the generated faces too (off: No_SynFI).
    """

    def __init__(
        self,
        generator: Generator,
        discriminator: MultiScaleDiscriminator,
        classifier: ExpressionClassifier,
        perceptual: PerceptualLoss | None,
        weights: LossWeights,
        r1_every: int = 1,
        synthesized_images: bool = True,
    ) -> None:
        if r1_every < 1:
            raise ValueError(f"r1_every must be a positive number of training batches, got {r1_every}")
        self.generator, self.discriminator, self.classifier = generator, discriminator, classifier
        self.perceptual, self.weights, self.r1_every = perceptual, weights, r1_every
        # which terms run, decided once (a weight of 0 skips its term's computation)
        w = weights
        self.do_interpolation = w.interpolation > 0
        self.do_mismatch = w.mismatch > 0
        self.do_g_adversarial = w.adversarial > 0 or self.do_interpolation  # G's images meet D
        self.do_g_classification = w.classification > 0  # joint training; 0 is TwoStage
        self.do_c_generated = synthesized_images  # C reads I_c, I_d; off is No_SynFI
        self.uses_representation = classifier.uses_representation  # C reads G_enc(I); off is No_ExpR

    def total(self, terms: Terms, scale: Mapping[str, float] = {}) -> torch.Tensor:  # noqa: B006 (read only)
        """``sum(weight * term)``, each weight the :class:`LossWeights` field of the term's name (times ``scale``)."""
        return sum(getattr(self.weights, name) * scale.get(name, 1.0) * term for name, term in terms.items())

    def generate(self, pairs: Pairs) -> GeneratorOutput:
        """G on the pairs: ``I_c, I_d``, the reconstructions and, with ``L_inter``, the interpolated images."""
        return self.generator(pairs.a, pairs.b, pairs.y_a, pairs.y_b, interpolate=self.do_interpolation)

    def generated(self, pairs: Pairs, out: GeneratorOutput, detach: bool) -> Parts:
        """The generated images D judges, each with the expression it was given (``I_c``: ``y_b``,
        ``I_d``: ``y_a``): ``swapped`` and, with ``L_inter``, ``interpolated``."""
        parts = {"swapped": torch.cat([out.image_c, out.image_d])}
        if out.interp_c is not None and out.interp_d is not None:
            parts["interpolated"] = torch.cat([out.interp_c, out.interp_d])
        return {name: (images.detach() if detach else images, pairs.given_labels) for name, images in parts.items()}

    # --- D: Eq. 5 and 7 (+ mismatch, R1) ------------------------------------------------
    def d_loss(self, pairs: Pairs, out: GeneratorOutput, step: int) -> tuple[torch.Tensor, Terms]:
        """D's loss on batch ``step``: real faces real, the detached generated faces fake."""
        do_r1 = self.weights.r1 > 0 and step % self.r1_every == 0
        leaf = pairs.real.detach().requires_grad_(do_r1)
        real = leaf.view_as(leaf)  # a view: module hooks (FlopCounterMode) cannot watch a leaf in autograd.grad
        # the real faces in a call of their own (R1 differentiates it alone), each under its own label and,
        # for the mismatch term, the other face's: what "no change" would give (by projection, one pass)
        columns = [pairs.real_labels, pairs.given_labels] if self.do_mismatch else [pairs.real_labels]
        judged_real = self.discriminator(real, torch.stack(columns, dim=1))  # per scale [2N, 1 or 2]
        logits = judge(self.discriminator, self.generated(pairs, out, detach=True))
        logits["real"] = [s[:, 0] for s in judged_real]
        if self.do_mismatch:
            logits["mismatched"] = [s[:, 1] for s in judged_real]
        terms: Terms = {}

        # Eq. 5: real faces to 1 and I_c, I_d to 0, averaged over all of them per scale
        terms["adversarial"] = d_adversarial_loss(logits["real"], logits["swapped"])
        # Eq. 7: the images decoded from interpolated codes are fake too
        if self.do_interpolation:
            terms["interpolation"] = multiscale_adversarial_loss(logits["interpolated"], real=False)
        # not in the paper (Reed et al. 2016): a real face under the wrong label is fake
        if self.do_mismatch:
            terms["mismatch"] = multiscale_adversarial_loss(logits["mismatched"], real=False)
        # not in the paper (Mescheder et al. 2018): r1 / 2 * E||grad D(x)||^2 at real faces, lazily
        if do_r1:
            terms["r1"] = r1_penalty(logits["real"], real)
        return self.total(terms, scale={"r1": self.r1_every / 2}), terms

    # --- the classifier's backbone, once for the G and C phases --------------------------
    def backbone_features(self, pairs: Pairs, out: GeneratorOutput) -> BackboneFeatures:
        """C's backbone on the step's real and (when C reads them) generated faces, in one batch
        as C's own phase sees them (a BatchNorm backbone normalises them together)."""
        real = pairs.real
        if not self.do_c_generated:
            return BackboneFeatures(self.classifier.forward_features(real), len(real))
        leaf = torch.cat([out.image_c, out.image_d]).detach().requires_grad_(self.do_g_classification)
        # a view, not the leaf itself: module hooks (FlopCounterMode) cannot watch a leaf in autograd.grad
        pixels = leaf.view_as(leaf)
        return BackboneFeatures(self.classifier.forward_features(torch.cat([real, pixels])), len(real), pixels)

    def classify(
        self, features: torch.Tensor, codes: list[torch.Tensor | None], labels: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """C's head on backbone ``features`` of several parts (their representations ``codes``,
        unused without one, and ``labels``): logits and labels."""
        code = torch.cat(codes) if self.uses_representation else None  # type: ignore[arg-type]
        return self.classifier.forward_head(features, code), torch.cat(labels)

    # --- G: Eq. 12 ------------------------------------------------------------------------
    def g_loss(self, pairs: Pairs, out: GeneratorOutput, features: BackboneFeatures) -> tuple[torch.Tensor, Terms]:
        """G's loss: adversarial, interpolation, reconstruction, perceptual, pixel-sum, change, TV, ``L_C``."""
        a, b, c, d = pairs.a, pairs.b, out.image_c, out.image_d
        w, terms = self.weights, {}

        # Eq. 5 and 7: G wants its images judged real under the labels it gave them
        if self.do_g_adversarial:
            logits = judge(self.discriminator, self.generated(pairs, out, detach=False))
            if w.adversarial > 0:
                terms["adversarial"] = multiscale_adversarial_loss(logits["swapped"], real=True)
            if self.do_interpolation:
                terms["interpolation"] = multiscale_adversarial_loss(logits["interpolated"], real=True)
        # Eq. 9: each face decoded from its own code is itself
        if w.reconstruction > 0:
            terms["reconstruction"] = reconstruction_loss(a, out.recon_a, b, out.recon_b)
        # Eq. 11: I_d has I_a's expression, I_c has I_b's, as a frozen network sees them
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(a, b, c, d)
        # Eq. 10: the swap keeps the pair's pixel sum
        if w.pixel_sum > 0:
            terms["pixel_sum"] = pixel_sum_loss(a, b, c, d)
        # not in the paper: the L1 size of the edits
        if w.change > 0:
            terms["change"] = change_l1(a, b, c, d)
        # Eq. 12: total variation of I_c, I_d
        if w.total_variation > 0:
            terms["total_variation"] = total_variation(torch.cat([c, d]))
        # Eq. 8 in Eq. 12: C on what G makes, through the representation and the generated pixels
        if self.do_g_classification and (features.pixels is not None or self.uses_representation):
            terms["classification"] = self.g_classification_loss(pairs, out, features)
        return self.total(terms), terms

    def g_classification_loss(self, pairs: Pairs, out: GeneratorOutput, features: BackboneFeatures) -> torch.Tensor:
        """G's ``L_C``: C on the real faces' codes and the generated faces.

        C's head runs on detached inputs and its gradient is carried to G by hand, as a term of
        value 0 through the generated pixels (by C's backbone, see :class:`BackboneFeatures`) and
        the codes: the shared backbone graph stays C's alone, and G's backward pass does not run
        C's head a second time.
        """
        real_codes = torch.cat([out.code_a, out.code_b])
        if features.pixels is None:  # real faces only: L_C reaches G through their codes alone
            return classification_loss(*self.classify(features.real.detach(), [real_codes], [pairs.real_labels]))
        n, generated = features.num_real, torch.cat([out.image_c, out.image_d])
        leaf = features.features.detach().requires_grad_()  # the gradient stops here ...
        if self.uses_representation:  # the real faces reach G through their representation only
            codes = torch.cat([real_codes, self.generator.encode(generated)])
            code_leaf = codes.detach().requires_grad_()
            logits = self.classifier.forward_head(leaf, code_leaf)
            loss = classification_loss(logits, torch.cat([pairs.real_labels, pairs.given_labels]))
            grad_features, grad_codes = torch.autograd.grad(loss, [leaf, code_leaf])
            through = (codes * grad_codes).sum()
        else:
            loss = classification_loss(self.classifier.forward_head(leaf[n:]), pairs.given_labels)
            (grad_features,) = torch.autograd.grad(loss, leaf)
            through = 0.0
        through = through + (generated * features.pixel_gradient(grad_features)).sum()  # ... and goes on to G
        return loss.detach() + (through - through.detach())

    # --- C: Eq. 8 -------------------------------------------------------------------------
    def c_loss(
        self, pairs: Pairs, out: GeneratorOutput, features: BackboneFeatures
    ) -> tuple[torch.Tensor, Terms, torch.Tensor]:
        """C's loss on the real faces (their own labels) and, with ``synthesized_images``, the
        generated ones (the labels they were given); representations detached, nothing reaches
        G. Returns the logits too, real faces first."""
        real_code = torch.cat([out.code_a, out.code_b]).detach() if self.uses_representation else None
        weights = None  # every face counts the same
        if features.pixels is None:  # No_SynFI: real faces only
            logits, labels = self.classify(features.features, [real_code], [pairs.real_labels])
        else:
            with torch.no_grad():
                code = self.generator.encode(features.pixels) if self.uses_representation else None
            logits, labels = self.classify(
                features.features, [real_code, code], [pairs.real_labels, pairs.given_labels]
            )
            if self.weights.synthesized != 1:  # a generated face counts this much of a real one
                n, share = features.num_real, self.weights.synthesized
                weights = torch.cat([logits.new_ones(n), logits.new_full((len(logits) - n,), share)])
        loss = classification_loss(logits, labels, weights=weights)
        return loss, {"classification": loss}, logits

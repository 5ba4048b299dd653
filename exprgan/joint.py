"""``JointExprGAN``: the GAN and the classifier trained jointly (paper Eq. 12, Sec. IV-B)."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.strategies import DDPStrategy
from torchmetrics.classification import MulticlassAccuracy

from exprgan.evaluation.metrics import ExpressionMetrics, figure_to_tensor, plot_confusion_matrix, write_results
from exprgan.fast import (
    BackboneFeatures,
    backbone_features,
    classifier_head,
    has_batch_statistics,
    perceptual_loss_split,
)
from exprgan.loggers import log_image
from exprgan.losses import (
    LAYER_WEIGHTS,
    LossWeights,
    PerceptualLoss,
    classification_loss,
    discriminator_loss,
    interpolation_loss,
    multiscale_adversarial_loss,
    pixel_sum_loss,
    r1_penalty,
    reconstruction_loss,
    total_variation,
)
from exprgan.models import ExpressionClassifier, Generator, GeneratorOutput, L2Norm, MultiScaleDiscriminator
from exprgan.models.backbones import BackboneName
from exprgan.models.discriminator import Conditioning
from exprgan.visualize import pair_grid

Terms = dict[str, torch.Tensor]
ClassifierPart = tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]  # (real|generated, images, labels, R)


def _numpy_state() -> dict[str, Any]:
    """NumPy's global RNG state in types a ``weights_only`` checkpoint load accepts."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": position, "has_gauss": has_gauss, "gauss": gauss}


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["pos"], state["has_gauss"], state["gauss"]))


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stops before the bad update."""


class JointExprGAN(pl.LightningModule):
    """The paper's model: G, D1/D2 and C, trained with manual optimisation.

    One training step, on a batch of unpaired pairs ``(I_a, y_a), (I_b, y_b)``:

    1. **D phase** (Adam): real faces against the detached ``I_c, I_d`` and the images
       decoded from interpolated codes (Eq. 5, 7).
    2. **G phase** (Adam): adversarial + interpolation terms, ``lambda1 L_r + lambda2 L_per +
       lambda3 L_p + lambda4 TV`` and, when ``joint``, ``L_C`` of the classifier on the real
       and generated faces, through ``G_enc``'s representation and the generated pixels.
    3. **C phase** (SGD): the classifier on real ``I_a, I_b`` and the detached ``I_c, I_d``
       with labels ``y_a, y_b, y_b, y_a``.

    ``trainer.global_step`` counts optimiser steps: three per batch.

    Args:
        num_expressions: ``n`` (linked from the data in the CLI).
        image_size: side of the images (linked from the data in the CLI).
        backbone: classifier backbone (``vgg19`` in the paper).
        pretrained: ImageNet weights for the classifier backbone.
        backbone_weights: local file of those weights (never downloads).
        classifier_hidden_features: width of the classifier's two hidden layers (4096).
        perceptual_pretrained: ImageNet VGG19 for the perceptual loss (the paper's).
        perceptual_weights: local ``vgg19`` weights file for it.
        perceptual_layer_weights: weights of relu1_1, relu2_1, ... (paper: 1/32 .. 1); a
            shorter list uses fewer, cheaper layers.
        gan_width: channels of the first G_enc and D block (64 in the paper; see
            :class:`~exprgan.models.Generator`).
        decoder_negative_slope: LeakyReLU slope of G_dec (0.2; 0 = ReLU).
        generator_identity_init: G starts as the identity map (its residual zeroed).
        interpolation_p: ``p`` of Eq. 6.
        loss_weights: the lambdas and term weights of Eq. 12.
        interpolation_loss: use L_inter (off: the No_InterL ablation).
        expression_representation: the classifier reads ``G_enc(I)`` (off: No_ExpR).
        synthesized_images: the classifier trains on generated faces too (off: No_SynFI).
        synthesized_after_steps: train the classifier on generated faces only from this
            training batch on (0: from the start, the paper). Early generated faces are
            barely changed inputs carrying the *other* label; short runs learn faster
            when the classifier waits for the generator. The generator's own ``L_C`` on
            the faces it generates applies from the start.
        joint: L_C trains G as well (off: TwoStage, no classifier gradient reaches G).
        r1_gamma: weight ``gamma`` of the R1 gradient penalty on D at real faces
            (``gamma / 2 * E||grad D||^2``; 0, the paper: none). Not in the paper; a common
            stabiliser that smooths what D tells G.
        r1_every: compute R1 only every this many training batches, weighted by this
            number ("lazy regularisation", Karras et al., StyleGAN2): about the same
            penalty on average for a fraction of its cost (1: every batch).
        discriminator_conditioning: how D1/D2 read the label: ``"concat"`` (the paper: one-hot
            input channels) or ``"projection"`` (not in the paper; see
            :class:`~exprgan.models.ConditionalDiscriminator`).
        gan_lr, gan_betas, gan_weight_decay: Adam of G and of D.
        classifier_lr, classifier_momentum, classifier_weight_decay: SGD of C.
        lr_decay: factor applied to every learning rate after each epoch (1: constant;
            the authors' release uses 0.97).
        image_log_every_n_steps: log a grid of ``[I_a, I_b, I_c, I_d, I'_a, I'_b]`` every
            this many training batches (0: never).
        class_names: expression names, for logs.
        results_dir: where ``test`` writes its results (JSON, CSV, confusion matrix PNG);
            default: ``results/`` in the logger's folder (or the trainer's root).
        reuse_features: the fast path's exact shortcuts (:mod:`exprgan.fast`; off: the plain
            path): the perceptual loss does no backward pass through the real faces, and,
            for a classifier backbone without batch statistics (VGG19), the backbone's
            forward pass on the step's faces is shared by the G and C phases (C is not
            updated in between). Same losses up to floating-point rounding (a test checks).
        fused_norm: compute every l2-N layer (G and D) with one hand-written autograd
            function (:class:`~exprgan.models.L2Norm` ``fused``): fewer passes over memory,
            same values up to rounding (a test checks).
        channels_last: keep the networks' weights in channels-last memory order, so that
            convolutions run and return channels-last (faster with cuDNN tensor cores, slower
            on CPU with oneDNN; same numbers up to rounding).
        compile: ``torch.compile`` G, D, C and the perceptual network (in place, so
            checkpoints keep their keys); the first steps pay the compilation.
    """

    def __init__(
        self,
        num_expressions: int = 7,
        image_size: int = 256,
        backbone: BackboneName = "vgg19",
        pretrained: bool = True,
        backbone_weights: str | None = None,
        classifier_hidden_features: int = 4096,
        perceptual_pretrained: bool = True,
        perceptual_weights: str | None = None,
        perceptual_layer_weights: Sequence[float] = LAYER_WEIGHTS,
        gan_width: int = 64,
        decoder_negative_slope: float = 0.2,
        generator_identity_init: bool = True,
        interpolation_p: float = 0.5,
        loss_weights: LossWeights | dict[str, float] | None = None,
        interpolation_loss: bool = True,
        expression_representation: bool = True,
        synthesized_images: bool = True,
        synthesized_after_steps: int = 0,
        joint: bool = True,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
        discriminator_conditioning: Conditioning = "concat",
        gan_lr: float = 2e-4,
        gan_betas: tuple[float, float] = (0.5, 0.999),
        gan_weight_decay: float = 0.0,
        classifier_lr: float = 1e-3,
        classifier_momentum: float = 0.9,
        classifier_weight_decay: float = 0.0,
        lr_decay: float = 1.0,
        image_log_every_n_steps: int = 500,
        class_names: Sequence[str] | None = None,
        results_dir: str | None = None,
        reuse_features: bool = False,
        fused_norm: bool = False,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if r1_every < 1:
            raise ValueError(f"r1_every must be a positive number of training batches, got {r1_every}")
        if isinstance(loss_weights, dict):  # as stored in a checkpoint's hyperparameters
            loss_weights = LossWeights(**loss_weights)
        self.weights = loss_weights or LossWeights()
        # plain types only, so checkpoints load with torch.load(weights_only=True)
        # results_dir is not stored: `exprgan test --ckpt_path ... --model.results_dir DIR` must win
        self.save_hyperparameters(ignore=["loss_weights", "class_names", "results_dir"])
        self.results_dir = results_dir
        self.hparams["loss_weights"] = asdict(self.weights)
        self.hparams["class_names"] = list(class_names) if class_names else None
        self.automatic_optimization = False
        self.class_names = list(class_names) if class_names else [str(c) for c in range(num_expressions)]

        self.generator = Generator(
            num_expressions,
            decoder_negative_slope=decoder_negative_slope,
            interpolation_p=interpolation_p,
            width=gan_width,
            identity_init=generator_identity_init,
        )
        self.discriminator = MultiScaleDiscriminator(
            num_expressions, image_size, width=gan_width, conditioning=discriminator_conditioning
        )
        self.classifier = ExpressionClassifier(
            num_expressions,
            backbone=backbone,
            pretrained=pretrained,
            weights_path=backbone_weights,
            representation_channels=self.generator.encoder.out_channels if expression_representation else 0,
            hidden_features=classifier_hidden_features,
        )
        self.perceptual = PerceptualLoss(
            pretrained=perceptual_pretrained, weights_path=perceptual_weights, layer_weights=perceptual_layer_weights
        )
        for module in self.modules():
            if isinstance(module, L2Norm):
                module.fused = fused_norm

        self.train_accuracy = MulticlassAccuracy(num_expressions, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_expressions, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_expressions, average="micro")
        self.test_metrics = ExpressionMetrics(self.class_names)  # rebuilt with the data's poses at test start
        self._rng_states_to_restore: dict[str, Any] | None = None
        self._pair_step = 0  # the training batch being processed (the pair stream's step)
        self._compiled = False

    # --- inference ----------------------------------------------------------------------
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Expression logits ``[N, n]``; ``G_enc`` reads the same images (Eq. 8)."""
        representation = self.generator.encode(images) if self.classifier.uses_representation else None
        return self.classifier(images, representation)

    @torch.no_grad()
    def predict_expressions(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image expression probabilities ``[N, n]`` (rows sum to 1)."""
        return self.classify(images).softmax(dim=1)

    @torch.no_grad()
    def transfer(
        self,
        identity_images: torch.Tensor,
        reference_images: torch.Tensor,
        identity_labels: torch.Tensor | None = None,
        reference_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``identity_images`` with the expressions of ``reference_images``, outside Lightning.

        Labels the caller does not give are predicted by the classifier. Where the two
        labels of a pair agree there is nothing to swap and the output is the
        reconstruction; a warning says how many.
        """
        if identity_labels is None:
            identity_labels = self.classify(identity_images).argmax(1)
        if reference_labels is None:
            reference_labels = self.classify(reference_images).argmax(1)
        same = int((identity_labels == reference_labels).sum())
        if same:
            warnings.warn(
                f"{same} of {len(identity_labels)} pairs already share an expression: "
                "nothing to swap, their outputs are reconstructions",
                stacklevel=2,
            )
        return self.generator.transfer(identity_images, reference_images, identity_labels, reference_labels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(images)

    # --- the three phases ---------------------------------------------------------------
    def _fakes(self, out: GeneratorOutput, y_a: torch.Tensor, y_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Generated images the discriminators judge and their conditioning labels."""
        images, labels = [out.image_c, out.image_d], [y_b, y_a]
        if out.interp_c is not None and out.interp_d is not None:
            images += [out.interp_c, out.interp_d]
            labels += [y_b, y_a]
        return torch.cat(images), torch.cat(labels)

    def discriminator_loss(self, batch: dict[str, torch.Tensor], out: GeneratorOutput) -> tuple[torch.Tensor, Terms]:
        """Eq. 5 and 7 for D1/D2; generated images detached. One D call for every image."""
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        fakes, fake_labels = self._fakes(out, y_a, y_b)
        real = torch.cat([a, b])
        every = self.hparams.r1_every
        r1 = self.hparams.r1_gamma * every if self._pair_step % every == 0 else 0.0
        if r1 > 0:
            real = real.detach().requires_grad_(True)
        logits = self.discriminator(torch.cat([real, fakes.detach()]), torch.cat([y_a, y_b, fake_labels]))
        n_real, n_swap = len(real), len(a) * 2
        terms = {
            "d/adversarial": discriminator_loss(
                [s[:n_real] for s in logits], [s[n_real : n_real + n_swap] for s in logits]
            )
        }
        total = self.weights.adversarial * terms["d/adversarial"]
        if out.interp_c is not None:
            terms["d/interpolation"] = interpolation_loss(
                [s[n_real + n_swap :] for s in logits], for_discriminator=True
            )
            total = total + self.weights.interpolation * terms["d/interpolation"]
        if r1 > 0:
            terms["d/r1"] = r1_penalty([s[:n_real] for s in logits], real)
            total = total + 0.5 * r1 * terms["d/r1"]
        terms["d/total"] = total
        return total, terms

    def generator_loss(
        self, batch: dict[str, torch.Tensor], out: GeneratorOutput, shared: BackboneFeatures | None = None
    ) -> tuple[torch.Tensor, Terms]:
        """Eq. 12 for G: adversarial, interpolation, reconstruction, perceptual, pixel-sum, TV, L_C.

        ``shared``: the step's classifier backbone features (``reuse_features``), used for
        ``L_C`` instead of running the backbone again.
        """
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        w = self.weights
        fakes, fake_labels = self._fakes(out, y_a, y_b)
        logits = self.discriminator(fakes, fake_labels)
        n_swap = len(a) * 2
        terms = {"g/adversarial": multiscale_adversarial_loss([s[:n_swap] for s in logits], real=True)}
        total = w.adversarial * terms["g/adversarial"]
        if out.interp_c is not None:
            terms["g/interpolation"] = interpolation_loss([s[n_swap:] for s in logits], for_discriminator=False)
            total = total + w.interpolation * terms["g/interpolation"]
        terms["g/reconstruction"] = reconstruction_loss(a, out.recon_a, b, out.recon_b)
        if w.perceptual > 0:  # the costliest term: skipped, not multiplied by 0
            if self.hparams.reuse_features:
                terms["g/perceptual"] = perceptual_loss_split(self.perceptual, a, b, out.image_c, out.image_d)
            else:
                terms["g/perceptual"] = self.perceptual(a, b, out.image_c, out.image_d)
            total = total + w.perceptual * terms["g/perceptual"]
        terms["g/pixel_sum"] = pixel_sum_loss(a, b, out.image_c, out.image_d)
        terms["g/tv"] = total_variation(torch.cat([out.image_c, out.image_d]))
        total = (
            total
            + w.reconstruction * terms["g/reconstruction"]
            + w.pixel_sum * terms["g/pixel_sum"]
            + w.total_variation * terms["g/tv"]
        )
        if self.hparams.joint and w.classification > 0:
            logits, labels = self._classifier_logits(batch, out, detach=False, shared=shared)
            if logits is not None:
                terms["g/classification"] = classification_loss(logits, labels)
                total = total + w.classification * terms["g/classification"]
        terms["g/total"] = total
        return total, terms

    def _classifier_parts(
        self, batch: dict[str, torch.Tensor], out: GeneratorOutput, detach: bool
    ) -> tuple[list[ClassifierPart], torch.Tensor]:
        """What C trains on: real I_a, I_b (+ generated I_c, I_d), and the real labels.

        With ``detach`` (the C phase) nothing reaches G. Without it (the G phase) only the
        inputs through which L_C can reach G are returned: real faces only through their
        representation, generated faces through pixels and representation.
        """
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        uses_representation = self.classifier.uses_representation
        real, real_labels = torch.cat([a, b]), torch.cat([y_a, y_b])
        parts: list[ClassifierPart] = []
        if detach or uses_representation:
            code = torch.cat([out.code_a, out.code_b]) if uses_representation else None
            parts.append(("real", real, real_labels, code))
        # G learns from L_C on its images at once; C trains on them from synthesized_after_steps on
        if self.hparams.synthesized_images and (not detach or self._pair_step >= self.hparams.synthesized_after_steps):
            generated = torch.cat([out.image_c, out.image_d])
            representation = None
            if detach:
                generated = generated.detach()
                if uses_representation:
                    with torch.no_grad():
                        representation = self.generator.encode(generated)
            elif uses_representation:
                representation = self.generator.encode(generated)
            parts.append(("generated", generated, torch.cat([y_b, y_a]), representation))
        return parts, real_labels

    def _classifier_inputs(
        self, batch: dict[str, torch.Tensor], out: GeneratorOutput, detach: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """Images, labels and representations C trains on (see :meth:`_classifier_parts`)."""
        parts, real_labels = self._classifier_parts(batch, out, detach)
        if not parts:
            return None, real_labels, None
        images = torch.cat([p[1] for p in parts])
        labels = torch.cat([p[2] for p in parts])
        representation = torch.cat([p[3] for p in parts]) if self.classifier.uses_representation else None
        if detach and representation is not None:
            representation = representation.detach()
        return images, labels, representation

    def _classifier_logits(
        self, batch: dict[str, torch.Tensor], out: GeneratorOutput, detach: bool, shared: BackboneFeatures | None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """C's logits on its inputs (None when there are none) and their labels.

        With ``shared`` the backbone is not run: its features of the step are taken from
        ``shared`` in the same order, and only the fusion and head run.
        """
        if shared is None:
            images, labels, representation = self._classifier_inputs(batch, out, detach)
            return (self.classifier(images, representation) if images is not None else None), labels
        parts, real_labels = self._classifier_parts(batch, out, detach)
        if not parts:
            return None, real_labels
        features = torch.cat([shared.real if p[0] == "real" else shared.generated for p in parts])
        labels = torch.cat([p[2] for p in parts])
        representation = torch.cat([p[3] for p in parts]) if self.classifier.uses_representation else None
        if detach and representation is not None:
            representation = representation.detach()
        return classifier_head(self.classifier, features, representation), labels

    def classifier_loss(
        self, batch: dict[str, torch.Tensor], out: GeneratorOutput, shared: BackboneFeatures | None = None
    ) -> tuple[torch.Tensor, Terms, torch.Tensor]:
        """Eq. 8 for C on real and (detached) generated faces; returns the logits too."""
        logits, labels = self._classifier_logits(batch, out, detach=True, shared=shared)
        assert logits is not None
        loss = classification_loss(logits, labels)
        return loss, {"c/loss": loss}, logits

    # --- training -----------------------------------------------------------------------
    def _check_finite(self, terms: Terms, step: int) -> None:
        values = torch.stack([t.detach().float() for t in terms.values()])
        if not bool(torch.isfinite(values).all()):
            bad = {name: float(v) for name, v in zip(terms, values.tolist()) if not math.isfinite(v)}
            listed = ", ".join(f"{name} = {value}" for name, value in bad.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {step} (global_step {self.global_step}): {listed}. "
                "Training stopped before this update; the last checkpoint is the last good state."
            )

    def _phase(
        self,
        optimizer: Any,
        loss: torch.Tensor,
        terms: Terms,
        step: int,
        parameters: list[torch.nn.Parameter] | None = None,
        retain_graph: bool = False,
    ) -> None:
        """Check, backward, step. On the fast path's shared graph the backward pass reaches
        only ``parameters`` and, with ``retain_graph``, keeps the graph for a later phase."""
        self._check_finite(terms, step)
        optimizer.zero_grad(set_to_none=True)
        if parameters is None:
            self.manual_backward(loss)
        else:
            self.manual_backward(loss, inputs=parameters, retain_graph=retain_graph)
        optimizer.step()

    def _shared_features(self, batch: dict[str, torch.Tensor], out: GeneratorOutput) -> BackboneFeatures | None:
        """The step's classifier backbone features for both the G and C phases, or None.

        Only with ``reuse_features``, when G's loss runs C at all, and for a backbone
        without batch statistics (BatchNorm would see other batches and update its running
        statistics once instead of twice).
        """
        hp = self.hparams
        if not (hp.reuse_features and hp.joint and self.weights.classification > 0):
            return None
        if has_batch_statistics(self.classifier.backbone):
            return None
        real = torch.cat([batch["image_a"], batch["image_b"]])
        generated = torch.cat([out.image_c, out.image_d]) if hp.synthesized_images else None
        return backbone_features(self.classifier, real, generated)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d, opt_c = self.optimizers()
        step = int(batch["step"]) if "step" in batch else self.global_step // 3
        self._pair_step = step
        y_a, y_b = batch["label_a"], batch["label_b"]
        out = self.generator(batch["image_a"], batch["image_b"], y_a, y_b, interpolate=self.hparams.interpolation_loss)

        with self.toggled_optimizer(opt_d):
            d_loss, d_terms = self.discriminator_loss(batch, out)
            self._phase(opt_d, d_loss, d_terms, step)
        shared = self._shared_features(batch, out)  # None on the plain path
        with self.toggled_optimizer(opt_g):
            g_loss, g_terms = self.generator_loss(batch, out, shared)
            g_parameters = [p for p in self.generator.parameters() if p.requires_grad] if shared else None
            self._phase(opt_g, g_loss, g_terms, step, g_parameters, retain_graph=True)
        if shared is not None:  # free G's graph now; only the shared backbone part stays for C
            g_loss, g_terms = g_loss.detach(), {k: v.detach() for k, v in g_terms.items()}
        with self.toggled_optimizer(opt_c):
            c_loss, c_terms, logits = self.classifier_loss(batch, out, shared)
            c_parameters = [p for p in self.classifier.parameters() if p.requires_grad] if shared else None
            self._phase(opt_c, c_loss, c_terms, step, c_parameters)

        n_real = 2 * len(y_a)
        self.train_accuracy(logits[:n_real].detach(), torch.cat([y_a, y_b]))
        batch_size = len(y_a)
        self.log_dict({**d_terms, **g_terms}, batch_size=batch_size)
        self.log("c/loss", c_loss, prog_bar=True, batch_size=batch_size)
        self.log("train/acc", self.train_accuracy, prog_bar=True, batch_size=batch_size)
        self.log_dict({"d": d_loss, "g": g_loss}, prog_bar=True, logger=False, batch_size=batch_size)

        every = self.hparams.image_log_every_n_steps
        if every and step % every == 0 and self.trainer.is_global_zero:
            rows = [batch["image_a"], batch["image_b"], out.image_c, out.image_d, out.recon_a, out.recon_b]
            log_image(self.logger, "train/pairs", pair_grid(rows), step=self.global_step)

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()

    # --- evaluation ---------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        images, labels = batch["image"], batch["label"]
        logits = self.classify(images)
        accuracy = self.val_accuracy if stage == "val" else self.test_accuracy
        accuracy(logits, labels)
        if stage == "test":
            self.test_metrics.update(logits, labels, batch.get("pose") if self.test_metrics.with_poses else None)
        n = len(labels)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=n)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), batch_size=n)
        if "target" in batch:  # ground truth for transfer (the synthetic faces)
            target, reference = batch["target"], batch["reference"]
            transferred = self.generator.transfer(images, reference, labels, batch["reference_label"])
            self.log_dict(
                {
                    f"{stage}/transfer_l1": (transferred - target).abs().mean(),
                    f"{stage}/l1_no_change": (images - target).abs().mean(),
                    f"{stage}/l1_copy_reference": (reference - target).abs().mean(),
                    f"{stage}/reconstruction_l1": (self.generator.reconstruct(images) - images).abs().mean(),
                },
                batch_size=n,
            )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        poses = list(getattr(datamodule, "poses", None) or []) or None
        self.test_metrics = ExpressionMetrics(self.class_names, pose_names=poses).to(self.device)

    def on_test_epoch_end(self) -> None:
        """Per-class and per-pose accuracy, the confusion matrix (PNG, CSV) and a JSON of it all."""
        report = self.test_metrics.compute()
        self.log("test/mean_class_acc", report.mean_class_accuracy)
        for name, value in report.per_class.items():
            if not math.isnan(value):
                self.log(f"test/acc_{name}", value)
        for pose, value in (report.per_pose or {}).items():
            if pose != "mean" and not math.isnan(value):
                self.log(f"test/acc_pose_{pose}", value)
        if not self.trainer.is_global_zero:
            return
        title = f"accuracy {100 * report.accuracy:.2f}%, mean of classes {100 * report.mean_class_accuracy:.2f}%"
        figure = plot_confusion_matrix(report.confusion, self.class_names, title=title)
        log_image(self.logger, "test/confusion_matrix", figure_to_tensor(figure), step=self.global_step)
        directory = self._results_dir()
        paths = write_results(report, directory, prefix="test")
        figure.savefig(directory / "test_confusion.png")
        listed = ", ".join(str(p) for p in [*paths.values(), directory / "test_confusion.png"])
        print(f"exprgan: test results written: {listed}")

    def _results_dir(self) -> Path:
        if self.results_dir:
            return Path(self.results_dir)
        save_dir = getattr(self.logger, "save_dir", None) if self.logger is not None else None
        return Path(save_dir or self.trainer.default_root_dir) / "results"

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Per-image expression probabilities ``[N, n]``."""
        return self.predict_expressions(batch["image"])

    # --- optimisation -------------------------------------------------------------------
    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        hp = self.hparams
        opt_g = torch.optim.Adam(
            self.generator.parameters(), lr=hp.gan_lr, betas=tuple(hp.gan_betas), weight_decay=hp.gan_weight_decay
        )
        opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=hp.gan_lr, betas=tuple(hp.gan_betas), weight_decay=hp.gan_weight_decay
        )
        opt_c = torch.optim.SGD(
            self.classifier.parameters(),
            lr=hp.classifier_lr,
            momentum=hp.classifier_momentum,
            weight_decay=hp.classifier_weight_decay,
        )
        optimizers = [opt_g, opt_d, opt_c]
        schedulers = [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=hp.lr_decay) for opt in optimizers]
        return optimizers, schedulers

    def setup(self, stage: str) -> None:
        strategy = self._trainer.strategy if self._trainer is not None else None
        if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters", False):
            raise ValueError(
                "JointExprGAN updates G, D and C in separate backward passes: under DDP use "
                "strategy='ddp_find_unused_parameters_true' (the exprgan CLI does this for 'ddp')"
            )
        if self.hparams.channels_last:
            # 4-D weights (the parameters stay the same objects); convolutions then give
            # channels-last outputs whatever the input batch's order
            self.to(memory_format=torch.channels_last)
        if self.hparams.compile and not self._compiled:
            for module in (self.generator, self.discriminator, self.classifier, self.perceptual.network):
                module.compile()  # in place: state_dict keys unchanged
            self._compiled = True

    # --- checkpoints: RNG states, so a resumed run draws the same dropout masks ----------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_states_to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        states, self._rng_states_to_restore = self._rng_states_to_restore, None
        if states is not None:
            torch.set_rng_state(states["torch"])
            if states["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(states["cuda"])
            _set_numpy_state(states["numpy"])
            random.setstate(states["python"])

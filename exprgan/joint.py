"""``JointExprGAN``: the GAN and the classifier trained jointly (paper Eq. 12, Sec. IV-B)."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.strategies import DDPStrategy
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from exprgan.evaluation.metrics import ExpressionMetrics, figure_to_tensor, plot_confusion_matrix, write_results
from exprgan.evaluation.oracle import oracle_predict
from exprgan.evaluation.transfer import TransferMetrics, transfer_summary, write_transfer_results
from exprgan.loggers import log_image, pair_grid
from exprgan.losses import (
    LossWeights,
    PerceptualLoss,
    change_l1,
    classification_loss,
    discriminator_loss,
    interpolation_loss,
    multiscale_adversarial_loss,
    pixel_sum_loss,
    r1_penalty,
    reconstruction_loss,
    total_variation,
)
from exprgan.models import ExpressionClassifier, ExpressionFeatures, Generator, GeneratorOutput, MultiScaleDiscriminator
from exprgan.offline import MIN_STEPS, cached, train_classifier
from exprgan.options import Networks, Optimization, as_group

Batch = dict[str, torch.Tensor]
Terms = dict[str, torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stops before the bad update."""


@dataclass
class BackboneFeatures:
    """The classifier backbone's features of one step, shared by the G and C phases.

    C is not updated between the two phases, so the backbone's output on the step's faces
    is the same in both: it runs once, on the real and generated faces in one batch (a
    BatchNorm backbone's running statistics are updated once a step, not twice). Its graph
    reaches C's parameters only (the generated faces enter it detached, as ``pixels``), so
    each phase's backward pass reaches only its own network, as DDP requires; G's ``L_C``
    reaches G's pixels through :meth:`pixel_gradient`.

    Attributes:
        features: features of ``[I_a, I_b (, I_c, I_d)]``: ``[2N (+2N), C, H/32, W/32]``.
        num_real: how many of them are real faces (``2N``).
        pixels: the detached ``[I_c, I_d]`` the others were computed from, or None when C
            never reads generated faces (``synthesized_images=False``).
    """

    features: torch.Tensor
    num_real: int
    pixels: torch.Tensor | None = None

    @property
    def real(self) -> torch.Tensor:
        return self.features[: self.num_real]

    @property
    def generated(self) -> torch.Tensor | None:
        return self.features[self.num_real :] if self.pixels is not None else None

    def pixel_gradient(self, grad_features: torch.Tensor) -> torch.Tensor:
        """The backbone's vector-Jacobian product: a gradient on ``features`` carried back to
        ``pixels`` (input gradients only; the graph is kept for the C phase)."""
        assert self.pixels is not None
        (grad,) = torch.autograd.grad(self.features, self.pixels, grad_features, retain_graph=True)
        return grad


class JointExprGAN(pl.LightningModule):
    """The paper's model: G, D1/D2 and C, trained with manual optimisation.

    One training step, on a batch of unpaired pairs ``(I_a, y_a), (I_b, y_b)``:

    1. **D phase** (Adam): real faces against the detached ``I_c, I_d`` and the images
       decoded from interpolated codes (Eq. 5, 7), plus R1 when its weight is set.
    2. **G phase** (Adam): adversarial + interpolation terms, ``lambda1 L_r + lambda2 L_per +
       lambda3 L_p + lambda4 TV`` and ``L_C`` of the classifier on the real and generated
       faces, through ``G_enc``'s representation and the generated pixels (Eq. 12).
    3. **C phase** (SGD): the classifier on real ``I_a, I_b`` and the generated ``I_c, I_d``
       with labels ``y_a, y_b, y_b, y_a`` (Eq. 8); nothing reaches G.

    ``trainer.global_step`` counts optimiser steps: three per batch. A loss weight of 0 skips
    its term; the paper's ablations (Table VII) are: No_InterL ``loss_weights.interpolation:
    0``, TwoStage ``loss_weights.classification: 0``, No_SynFI ``synthesized_images: false``,
    No_ExpR ``networks.expression_representation: false``.

    Args:
        num_expressions: ``n`` (linked from the data in the CLI).
        image_size: side of the images (linked from the data in the CLI).
        networks: how the networks are built (:class:`~exprgan.options.Networks`).
        loss_weights: the lambdas of Eq. 12 and R1's gamma (:class:`~exprgan.losses.LossWeights`).
        optimization: the optimisers' settings (:class:`~exprgan.options.Optimization`).
        interpolation_p: ``p`` of Eq. 6.
        synthesized_images: the classifier trains on generated faces too (off: No_SynFI).
        synthesized_after_steps: the classifier trains on generated faces only from this
            training batch on (0: from the start, the paper). Early generated faces are
            barely changed inputs carrying the *other* label. G's own ``L_C`` on the faces
            it generates applies from the start.
        r1_every: compute R1 only every this many training batches, weighted by this number
            ("lazy regularisation", Karras et al., StyleGAN2): about the same penalty on
            average for a fraction of its cost (1: every batch).
        image_log_every_n_steps: log a grid of ``[I_a, I_b, I_c, I_d, I'_a, I'_b]`` every
            this many training batches (0: never).
        class_names: expression names, for logs.
        results_dir: where ``test`` writes its results (JSON, CSV, confusion matrix PNG);
            default: ``results/`` in the logger's folder (or the trainer's root).
        channels_last: keep the networks' weights in channels-last memory order (faster with
            cuDNN tensor cores, slower on CPU; same numbers up to rounding).
        compile: ``torch.compile`` G, D, C and the perceptual network (in place, so
            checkpoints keep their keys). R1 needs a double backward, which compiled
            graphs do not have: use it with ``loss_weights.r1: 0``.
    """

    def __init__(
        self,
        num_expressions: int = 7,
        image_size: int = 256,
        networks: Networks | None = None,
        loss_weights: LossWeights | None = None,
        optimization: Optimization | None = None,
        interpolation_p: float = 0.5,
        synthesized_images: bool = True,
        synthesized_after_steps: int = 0,
        r1_every: int = 1,
        image_log_every_n_steps: int = 500,
        class_names: Sequence[str] | None = None,
        results_dir: str | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if r1_every < 1:
            raise ValueError(f"r1_every must be a positive number of training batches, got {r1_every}")
        self.networks = net = as_group(Networks, networks)
        self.weights = as_group(LossWeights, loss_weights)
        self.optimization = as_group(Optimization, optimization)
        # plain types only, so checkpoints load with torch.load(weights_only=True);
        # results_dir is not stored: `exprgan test --ckpt_path ... --model.results_dir DIR` must win
        self.save_hyperparameters(ignore=["networks", "loss_weights", "optimization", "class_names", "results_dir"])
        self.hparams.update(
            networks=asdict(net),
            loss_weights=asdict(self.weights),
            optimization=asdict(self.optimization),
            class_names=list(class_names) if class_names else None,
        )
        self.results_dir = results_dir
        self.automatic_optimization = False
        self.class_names = list(class_names) if class_names else [str(c) for c in range(num_expressions)]

        self.generator = Generator(
            num_expressions,
            decoder_negative_slope=net.decoder_negative_slope,
            interpolation_p=interpolation_p,
            width=net.gan_width,
            identity_init=net.generator_identity_init,
            decoder_output_block=net.decoder_output_block,
        )
        self.discriminator = MultiScaleDiscriminator(
            num_expressions, image_size, width=net.gan_width, conditioning=net.discriminator_conditioning
        )
        self.classifier = ExpressionClassifier(
            num_expressions,
            backbone=net.backbone,
            pretrained=net.pretrained,
            weights_path=net.backbone_weights,
            representation_channels=self.generator.encoder.out_channels if net.expression_representation else 0,
            hidden_features=net.classifier_hidden_features,
        )
        self.perceptual: PerceptualLoss | None = None
        if self.weights.perceptual > 0:
            features = ExpressionFeatures(num_expressions) if net.perceptual_network == "expression" else None
            self.perceptual = PerceptualLoss(
                net.perceptual_pretrained, net.perceptual_weights, net.perceptual_layer_weights, network=features
            )

        self.train_accuracy = MulticlassAccuracy(num_expressions, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_expressions, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_expressions, average="micro")
        self.test_metrics = ExpressionMetrics(self.class_names)  # rebuilt with the data's poses at test start
        self._rng_states_to_restore: dict[str, Any] | None = None
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

    # --- one training step: D, then G, then C --------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        opt_g, opt_d, opt_c = self.optimizers()
        step = int(batch["step"]) if "step" in batch else self.global_step // 3  # the pair stream's batch
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        out = self.generator(a, b, y_a, y_b, interpolate=self.weights.interpolation > 0)

        with self.toggled_optimizer(opt_d):
            d_loss, d_terms = self.discriminator_loss(batch, out, step)
            self._update(opt_d, self.discriminator, d_loss, d_terms, step)
        features = self.backbone_features(batch, out, step)
        with self.toggled_optimizer(opt_g):
            g_loss, g_terms = self.generator_loss(batch, out, features)
            self._update(opt_g, self.generator, g_loss, g_terms, step)
        with self.toggled_optimizer(opt_c):
            c_loss, c_terms, logits = self.classifier_loss(batch, out, features, step)
            self._update(opt_c, self.classifier, c_loss, c_terms, step)

        n = len(y_a)
        self.train_accuracy(logits[: 2 * n].detach(), torch.cat([y_a, y_b]))  # the real faces come first
        self.log_dict({**d_terms, **g_terms}, batch_size=n)
        self.log("c/loss", c_loss, prog_bar=True, batch_size=n)
        self.log("train/acc", self.train_accuracy, prog_bar=True, batch_size=n)
        self.log_dict({"d": d_loss, "g": g_loss}, prog_bar=True, logger=False, batch_size=n)
        every = self.hparams.image_log_every_n_steps
        if every and step % every == 0 and self.trainer.is_global_zero:
            rows = [a, b, out.image_c, out.image_d, out.recon_a, out.recon_b]
            log_image(self.logger, "train/pairs", pair_grid(rows), step=self.global_step)

    def discriminator_loss(self, batch: Batch, out: GeneratorOutput, step: int) -> tuple[torch.Tensor, Terms]:
        """Eq. 5 and 7 for D1/D2 (+ lazy R1); generated images detached. One D call for all."""
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        w, every = self.weights, self.hparams.r1_every
        r1_weight = w.r1 * every if step % every == 0 else 0.0
        real = torch.cat([a, b]).detach().requires_grad_(r1_weight > 0)
        fakes, fake_labels = self._judged_fakes(out, y_a, y_b)
        images, labels = [real, fakes.detach()], [y_a, y_b, fake_labels]
        if w.mismatch > 0:  # real faces told the other face's expression: (I_a, y_b), (I_b, y_a)
            images.append(real.detach())
            labels += [y_b, y_a]
        logits = self.discriminator(torch.cat(images), torch.cat(labels))
        n_real, n_fake = len(real), len(fakes)  # [real | I_c, I_d (| interpolated) (| mismatched)]
        n_swap = 2 * len(a)
        real_logits = [s[:n_real] for s in logits]
        terms = {"d/adversarial": discriminator_loss(real_logits, [s[n_real : n_real + n_swap] for s in logits])}
        total = w.adversarial * terms["d/adversarial"]
        if out.interp_c is not None:
            terms["d/interpolation"] = interpolation_loss(
                [s[n_real + n_swap : n_real + n_fake] for s in logits], for_discriminator=True
            )
            total = total + w.interpolation * terms["d/interpolation"]
        if w.mismatch > 0:
            terms["d/mismatch"] = multiscale_adversarial_loss([s[n_real + n_fake :] for s in logits], real=False)
            total = total + w.mismatch * terms["d/mismatch"]
        if r1_weight > 0:
            terms["d/r1"] = r1_penalty(real_logits, real)
            total = total + 0.5 * r1_weight * terms["d/r1"]
        terms["d/total"] = total
        return total, terms

    def generator_loss(
        self, batch: Batch, out: GeneratorOutput, features: BackboneFeatures
    ) -> tuple[torch.Tensor, Terms]:
        """Eq. 12 for G: adversarial, interpolation, reconstruction, perceptual, pixel-sum, TV, L_C."""
        a, b, y_a, y_b = batch["image_a"], batch["image_b"], batch["label_a"], batch["label_b"]
        w = self.weights
        terms: Terms = {}
        weighted: list[tuple[float, str]] = []
        if w.adversarial > 0 or out.interp_c is not None:  # D judges I_c, I_d (and the interpolated)
            fakes, fake_labels = self._judged_fakes(out, y_a, y_b)
            logits = self.discriminator(fakes, fake_labels)
            n_swap = 2 * len(a)
            if w.adversarial > 0:
                terms["g/adversarial"] = multiscale_adversarial_loss([s[:n_swap] for s in logits], real=True)
                weighted.append((w.adversarial, "g/adversarial"))
            if out.interp_c is not None:
                terms["g/interpolation"] = interpolation_loss([s[n_swap:] for s in logits], for_discriminator=False)
                weighted.append((w.interpolation, "g/interpolation"))
        if w.reconstruction > 0:
            terms["g/reconstruction"] = reconstruction_loss(a, out.recon_a, b, out.recon_b)
            weighted.append((w.reconstruction, "g/reconstruction"))
        if self.perceptual is not None:
            terms["g/perceptual"] = self.perceptual(a, b, out.image_c, out.image_d)
            weighted.append((w.perceptual, "g/perceptual"))
        if w.pixel_sum > 0:
            terms["g/pixel_sum"] = pixel_sum_loss(a, b, out.image_c, out.image_d)
            weighted.append((w.pixel_sum, "g/pixel_sum"))
        if w.change > 0:
            terms["g/change"] = change_l1(a, b, out.image_c, out.image_d)
            weighted.append((w.change, "g/change"))
        if w.total_variation > 0:
            terms["g/tv"] = total_variation(torch.cat([out.image_c, out.image_d]))
            weighted.append((w.total_variation, "g/tv"))
        total = sum(weight * terms[name] for weight, name in weighted)
        if w.classification > 0:
            classification = self._generator_classification_loss(batch, out, features)
            if classification is not None:
                terms["g/classification"] = classification
                total = total + w.classification * classification
        terms["g/total"] = total
        return total, terms

    def _generator_classification_loss(
        self, batch: Batch, out: GeneratorOutput, features: BackboneFeatures
    ) -> torch.Tensor | None:
        """G's ``L_C``: C on what reaches G, the real faces' codes and the generated faces
        (None when nothing does).

        Its gradient reaches the generated pixels through C's backbone by hand, as a term of
        value 0, so that the shared backbone graph stays C's alone (see :class:`BackboneFeatures`).
        """
        y_a, y_b = batch["label_a"], batch["label_b"]
        uses_representation = self.classifier.uses_representation
        if features.pixels is None:  # real faces only: L_C reaches G through their codes alone
            if not uses_representation:
                return None
            codes = torch.cat([out.code_a, out.code_b])
            return classification_loss(*self._classify_parts([(features.real.detach(), codes, torch.cat([y_a, y_b]))]))
        leaf = features.features.detach().requires_grad_()  # the gradient stops here ...
        n, generated = features.num_real, torch.cat([out.image_c, out.image_d])
        parts = [(leaf[n:], self.generator.encode(generated) if uses_representation else None, torch.cat([y_b, y_a]))]
        if uses_representation:
            parts.insert(0, (leaf[:n], torch.cat([out.code_a, out.code_b]), torch.cat([y_a, y_b])))
        loss = classification_loss(*self._classify_parts(parts))
        (grad,) = torch.autograd.grad(loss, leaf, retain_graph=True)
        through_pixels = (generated * features.pixel_gradient(grad)).sum()  # ... and goes on from the pixels
        return loss + (through_pixels - through_pixels.detach())

    def classifier_loss(
        self, batch: Batch, out: GeneratorOutput, features: BackboneFeatures, step: int
    ) -> tuple[torch.Tensor, Terms, torch.Tensor]:
        """Eq. 8 for C on the real faces and, when enabled, the generated ones; representations
        detached. Returns the logits too, real faces first."""
        y_a, y_b = batch["label_a"], batch["label_b"]
        uses_representation = self.classifier.uses_representation
        real_code = torch.cat([out.code_a, out.code_b]).detach() if uses_representation else None
        parts = [(features.real, real_code, torch.cat([y_a, y_b]))]
        if features.generated is not None and step >= self.hparams.synthesized_after_steps:
            code = None
            if uses_representation:
                with torch.no_grad():
                    code = self.generator.encode(torch.cat([out.image_c, out.image_d]).detach())
            parts.append((features.generated, code, torch.cat([y_b, y_a])))
        logits, labels = self._classify_parts(parts)
        loss = classification_loss(logits, labels)
        return loss, {"c/loss": loss}, logits

    def backbone_features(self, batch: Batch, out: GeneratorOutput, step: int) -> BackboneFeatures:
        """C's backbone on the step's real and (when G's ``L_C`` or C reads them) generated faces,
        in one batch as C's own phase sees them (a BatchNorm backbone normalises them together)."""
        real = torch.cat([batch["image_a"], batch["image_b"]])
        hp, g_reads = self.hparams, self.weights.classification > 0
        if not hp.synthesized_images or not (g_reads or step >= hp.synthesized_after_steps):
            return BackboneFeatures(self.classifier.forward_features(real), len(real))
        leaf = torch.cat([out.image_c, out.image_d]).detach().requires_grad_(g_reads)
        # a view, not the leaf itself: module hooks (FlopCounterMode) cannot watch a leaf in autograd.grad
        pixels = leaf.view_as(leaf)
        return BackboneFeatures(self.classifier.forward_features(torch.cat([real, pixels])), len(real), pixels)

    def _classify_parts(
        self, parts: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """C's head on ``(backbone features, representation or None, labels)`` parts: logits, labels."""
        features, codes, labels = zip(*parts)
        code = torch.cat(codes) if self.classifier.uses_representation else None
        return self.classifier.forward_head(torch.cat(features), code), torch.cat(labels)

    @staticmethod
    def _judged_fakes(out: GeneratorOutput, y_a: torch.Tensor, y_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generated images D judges, ``[I_c, I_d (, interpolated c, d)]``, and their labels:
        each carries the expression it was given (I_c: ``y_b``, I_d: ``y_a``)."""
        images, labels = [out.image_c, out.image_d], [y_b, y_a]
        if out.interp_c is not None and out.interp_d is not None:
            images += [out.interp_c, out.interp_d]
            labels += [y_b, y_a]
        return torch.cat(images), torch.cat(labels)

    def _update(
        self,
        optimizer: Any,
        network: nn.Module,
        loss: torch.Tensor,
        terms: Terms,
        step: int,
    ) -> None:
        """Check every term is finite, back-propagate into ``network``'s parameters only, step."""
        values = torch.stack([t.detach().float() for t in terms.values()])
        if not bool(torch.isfinite(values).all()):
            bad = ", ".join(f"{k} = {v}" for k, v in zip(terms, values.tolist()) if not math.isfinite(v))
            raise NonFiniteLossError(
                f"non-finite loss at step {step} (global_step {self.global_step}): {bad}. "
                "Training stopped before this update; the last checkpoint is the last good state."
            )
        optimizer.zero_grad(set_to_none=True)
        parameters = [p for p in network.parameters() if p.requires_grad]
        self.manual_backward(loss, inputs=parameters)
        optimizer.step()

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()

    # --- evaluation ---------------------------------------------------------------------
    # The test's judge of transfers (the data's transfer_oracle) as a function of images: a plain
    # attribute, not a submodule, so the oracle never enters the model's state_dict or checkpoints.
    _oracle: Callable[[torch.Tensor], torch.Tensor] | None = None

    def _evaluate(self, batch: Batch, stage: str) -> None:
        images, labels = batch["image"], batch["label"]
        logits = self.classify(images)
        accuracy = self.val_accuracy if stage == "val" else self.test_accuracy
        accuracy(logits, labels)
        if stage == "test":
            self.test_metrics.update(logits, labels, batch.get("pose") if self.test_metrics.with_poses else None)
        n = len(labels)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=n)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), batch_size=n)
        if "target" in batch:  # ground truth for transfer (the rendered faces)
            target, reference, y_b = batch["target"], batch["reference"], batch["reference_label"]
            transferred = self.generator.transfer(images, reference, labels, y_b)  # I_c
            judged = None if self._oracle is None else self._oracle(transferred)
            self.transfer_metrics.update(transferred, images, target, reference, y_b, judged)
            if self._oracle is not None:
                self.oracle_accuracy.update(self._oracle(images), labels)  # the judge on real faces
            reconstruction = (self.generator.reconstruct(images) - images).abs().mean()
            self.log(f"{stage}/reconstruction_l1", reconstruction, batch_size=n)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_start(self) -> None:
        # no oracle while training: the pixel metrics only
        self.transfer_metrics = TransferMetrics(self.class_names, with_oracle=False).to(self.device)

    def on_validation_epoch_end(self) -> None:
        self._log_transfer("val")

    def on_test_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        poses = list(getattr(datamodule, "poses", None) or []) or None
        self.test_metrics = ExpressionMetrics(self.class_names, pose_names=poses).to(self.device)
        self._oracle = self._transfer_oracle(datamodule)
        self.transfer_metrics = TransferMetrics(self.class_names, with_oracle=self._oracle is not None).to(self.device)
        self.oracle_accuracy = MulticlassAccuracy(self.hparams.num_expressions, average="micro").to(self.device)

    def _transfer_oracle(self, datamodule: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The data's judge of transfers (its ``transfer_oracle``; None for data without one) as
        a function of images, trained or loaded in ``offline/`` beside ``results/``."""
        make = getattr(datamodule, "transfer_oracle", None)
        if make is None:
            return None
        oracle = self._rank_zero_first("transfer_oracle", lambda: make(self._offline_dir()))
        return partial(oracle_predict, oracle.to(self.device))

    def _offline_dir(self) -> Path:
        """Where networks trained offline for this run are cached: ``offline/`` beside ``results/``."""
        return self._results_dir().parent / "offline"

    def _rank_zero_first(self, name: str, make: Callable[[], Any]) -> Any:
        """``make()`` on global rank 0 first (it trains and caches), then on the other ranks
        (they load the cache): one training, no two ranks writing one file."""
        zero = self.trainer.is_global_zero
        if not zero:
            self.trainer.strategy.barrier(name)
        result = make()
        if zero:
            self.trainer.strategy.barrier(name)
        return result

    def _log_transfer(self, stage: str) -> dict[str, float]:
        """Log the epoch's transfer metrics as ``{stage}/<key>`` (with the oracle: and ``oracle_acc``,
        its accuracy on the real faces) and return them; nothing without ground truth."""
        if self.transfer_metrics.update_count == 0:
            return {}
        results = self.transfer_metrics.compute()
        if self.transfer_metrics.with_oracle:
            results["oracle_acc"] = float(self.oracle_accuracy.compute())
        finite = {f"{stage}/{key}": value for key, value in results.items() if math.isfinite(value)}
        self.log_dict(finite, sync_dist=True)  # the same on every rank (the metric reduced them): a no-op mean
        self.transfer_metrics.reset()
        return results

    def on_test_epoch_end(self) -> None:
        """Per-class and per-pose accuracy, the confusion matrix (PNG, CSV) and a JSON of it all;
        with ground truth, the transfer metrics (logged, ``test_transfer.json``, printed)."""
        report = self.test_metrics.compute()
        self.log("test/mean_class_acc", report.mean_class_accuracy)
        for name, value in report.per_class.items():
            if not math.isnan(value):
                self.log(f"test/acc_{name}", value)
        for pose, value in (report.per_pose or {}).items():
            if pose != "mean" and not math.isnan(value):
                self.log(f"test/acc_pose_{pose}", value)
        transfer = self._log_transfer("test")
        self._oracle = None
        if not self.trainer.is_global_zero:
            return
        title = f"accuracy {100 * report.accuracy:.2f}%, mean of classes {100 * report.mean_class_accuracy:.2f}%"
        figure = plot_confusion_matrix(report.confusion, self.class_names, title=title)
        log_image(self.logger, "test/confusion_matrix", figure_to_tensor(figure), step=self.global_step)
        directory = self._results_dir()
        paths = write_results(report, directory, prefix="test")
        figure.savefig(directory / "test_confusion.png")
        written = [*paths.values(), directory / "test_confusion.png"]
        if transfer:
            written.append(write_transfer_results(transfer, directory / "test_transfer.json"))
            print(f"exprgan: {transfer_summary(transfer, self.class_names)}")
        print(f"exprgan: test results written: {', '.join(str(p) for p in written)}")

    def _results_dir(self) -> Path:
        if self.results_dir:
            return Path(self.results_dir)
        save_dir = getattr(self.logger, "save_dir", None) if self.logger is not None else None
        return Path(save_dir or self.trainer.default_root_dir) / "results"

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Per-image expression probabilities ``[N, n]``."""
        return self.predict_expressions(batch["image"])

    # --- optimisation and set-up --------------------------------------------------------
    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        o = self.optimization
        adam = {"lr": o.gan_lr, "betas": tuple(o.gan_betas), "weight_decay": o.gan_weight_decay}
        optimizers = [
            torch.optim.Adam(self.generator.parameters(), **adam),
            torch.optim.Adam(self.discriminator.parameters(), **adam),
            torch.optim.SGD(
                self.classifier.parameters(),
                lr=o.classifier_lr,
                momentum=o.classifier_momentum,
                weight_decay=o.classifier_weight_decay,
            ),
        ]
        schedulers = [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=o.lr_decay) for opt in optimizers]
        return optimizers, schedulers

    def configure_model(self) -> None:
        """The CUDA speed options: channels-last weights, ``torch.compile`` (once)."""
        if self.hparams.channels_last:
            # 4-D weights (the parameters stay the same objects); convolutions then give
            # channels-last outputs whatever the input batch's order
            self.to(memory_format=torch.channels_last)
        if self.hparams.compile and not self._compiled:
            networks = [self.generator, self.discriminator, self.classifier]
            for module in networks + ([self.perceptual.network] if self.perceptual is not None else []):
                module.compile()  # in place: state_dict keys unchanged
            self._compiled = True

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.perceptual is not None and isinstance(self.perceptual.network, ExpressionFeatures):
            self._train_expression_features(self.perceptual.network)
        if self._trainer is not None and str(self._trainer.precision).startswith("16"):
            raise ValueError(
                "JointExprGAN takes G's L_C gradient through the classifier by hand, outside fp16's "
                "loss scaling: use precision='bf16-mixed' (or 32) instead of '16-mixed'"
            )
        strategy = self._trainer.strategy if self._trainer is not None else None
        if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters", False):
            raise ValueError(
                "JointExprGAN updates G, D and C in separate backward passes: under DDP use "
                "strategy='ddp_find_unused_parameters_true' (the exprgan CLI does this for 'ddp')"
            )

    def _train_expression_features(self, network: ExpressionFeatures) -> None:
        """Train ``networks.perceptual_network: expression`` on the data's real training faces,
        or load it from the run's cache (``offline/`` beside ``results/``)."""
        datamodule = getattr(self._trainer, "datamodule", None)
        faces = getattr(datamodule, "training_faces", None)
        if faces is None:
            raise ValueError(
                "networks.perceptual_network 'expression' trains its network on the data's real training faces, "
                f"but {type(datamodule).__name__} has no training_faces(); use 'vgg19'"
            )
        images, labels = faces()
        classes = self.hparams.num_expressions
        key = {"data": datamodule.fingerprint(), "classes": classes, "version": 1, "min_steps": MIN_STEPS}
        with torch.random.fork_rng():
            torch.manual_seed(4321)
            fresh = ExpressionFeatures(classes)

        def train(module: nn.Module) -> None:
            train_classifier(module, images, labels, logits=module.logits, seed=4321, desc="expression features")

        trained = self._rank_zero_first(
            "expression_features", lambda: cached(fresh, self._offline_dir(), "expression-features", key, train)
        )
        network.load_state_dict(trained.state_dict())

    # --- checkpoints: RNG states, so a resumed run draws the same dropout masks ----------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        _, keys, position, has_gauss, gauss = np.random.get_state()
        numpy_state = {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": position,
            "has_gauss": has_gauss,
            "gauss": gauss,
        }
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": numpy_state,  # in types a weights_only load accepts
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
            numpy = states["numpy"]
            keys = numpy["keys"].numpy().astype(np.uint32)
            np.random.set_state(("MT19937", keys, numpy["pos"], numpy["has_gauss"], numpy["gauss"]))
            random.setstate(states["python"])

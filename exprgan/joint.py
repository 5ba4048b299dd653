"""``JointExprGAN``: the GAN and the classifier trained jointly (paper Eq. 12, Sec. IV-B)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torchmetrics.classification import MulticlassAccuracy

from exprgan.losses import LossWeights, PerceptualLoss
from exprgan.models import ExpressionClassifier, Generator, MultiScaleDiscriminator
from exprgan.objective import NonFiniteLossError, Objective, Pairs, Terms, check_finite
from exprgan.options import Networks, Optimization, as_group
from exprgan.rng import rng_states, set_rng_states

__all__ = ["INFERENCE_CHUNK", "OPTIMIZER_STEPS_PER_BATCH", "RETIRED_HPARAMS", "JointExprGAN", "NonFiniteLossError"]

# One training batch steps three optimisers, D's, G's and C's (manual optimisation), and
# ``trainer.global_step`` counts optimiser steps: ``max_steps: 3000`` is 1,000 batches.
OPTIMIZER_STEPS_PER_BATCH = 3
# settings older checkpoints hold that JointExprGAN no longer takes (training-only; the image log is
# the TrainingImages callback), with their types: ignored when a checkpoint is loaded
RETIRED_HPARAMS: dict[str, type] = {"image_log_every_n_steps": int, "synthesized_after_steps": int}
# Inference runs a batch in chunks of this many images: at 256 px a whole batch's VGG19 activations
# (0.5 GB a layer for 32 faces) outgrow the CPU's caches and the allocator's reused blocks, and a batch
# of 32 ran slower per image than one image; in chunks of 8 it runs faster (eval mode: the same result).
INFERENCE_CHUNK = 8


class JointExprGAN(pl.LightningModule):
    """The paper's model: G, D1/D2 and C, trained with manual optimisation.

    Each training batch of unpaired pairs ``(I_a, y_a), (I_b, y_b)`` steps D (Adam; Eq. 5, 7),
    then G (Adam; Eq. 12, with ``L_C`` through the representation and the generated pixels), then
    C (SGD; Eq. 8, on the real and generated faces); :class:`~exprgan.objective.Objective` gives
    each loss. A loss weight of 0 skips its term; the paper's ablations (Table VII): No_InterL
    ``loss_weights.interpolation: 0``, TwoStage ``loss_weights.classification: 0``, No_SynFI
    ``synthesized_images: false``, No_ExpR ``networks.expression_representation: false``.
    Validation and test log the accuracy; :class:`~exprgan.callbacks.EvaluationReport` the rest.

    Args:
        num_expressions: ``n`` (linked from the data in the CLI).
        image_size: side of the images (linked from the data in the CLI).
        networks: how the networks are built (:class:`~exprgan.options.Networks`).
        loss_weights: the lambdas of Eq. 12 and R1's gamma (:class:`~exprgan.losses.LossWeights`).
        optimization: the optimisers' settings (:class:`~exprgan.options.Optimization`).
        interpolation_p: ``p`` of Eq. 6.
        synthesized_images: the classifier trains on generated faces too (off: No_SynFI).
        r1_every: R1 every this many batches, weighted by this number (lazy regularisation,
            Karras et al. 2020: about the same penalty for a fraction of its cost).
        class_names: expression names, for logs.
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
        r1_every: int = 1,
        class_names: Sequence[str] | None = None,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.networks = net = as_group(Networks, networks)
        self.optimization = as_group(Optimization, optimization)
        weights = as_group(LossWeights, loss_weights)
        # plain types only, so checkpoints load with torch.load(weights_only=True)
        self.save_hyperparameters(ignore=["networks", "loss_weights", "optimization", "class_names"])
        self.hparams.update(
            networks=asdict(net),
            loss_weights=asdict(weights),
            optimization=asdict(self.optimization),
            class_names=list(class_names) if class_names else None,
        )
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
        self.perceptual: PerceptualLoss | None = None  # a weight of 0 builds no VGG19
        if weights.perceptual > 0:
            layers = net.perceptual_layer_weights
            self.perceptual = PerceptualLoss(net.perceptual_pretrained, net.perceptual_weights, layers)
        self.objective = Objective(
            self.generator, self.discriminator, self.classifier, self.perceptual, weights, r1_every, synthesized_images
        )
        self.train_accuracy, self.val_accuracy, self.test_accuracy = (
            MulticlassAccuracy(num_expressions, average="micro") for _ in range(3)
        )
        self._rng_states_to_restore: dict[str, Any] | None = None
        self._compiled = False

    @property
    def weights(self) -> LossWeights:
        return self.objective.weights

    # --- inference ----------------------------------------------------------------------
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Expression logits ``[N, n]``; ``G_enc`` reads the same images (Eq. 8)."""
        representation = self.generator.encode(images) if self.classifier.uses_representation else None
        return self.classifier(images, representation)

    @torch.no_grad()
    def predict_expressions(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image expression probabilities ``[N, n]`` (rows sum to 1), in chunks of
        :data:`INFERENCE_CHUNK` images."""
        return torch.cat([self.classify(chunk).softmax(dim=1) for chunk in images.split(INFERENCE_CHUNK)])

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
        reconstruction; a warning says how many. Runs in chunks of :data:`INFERENCE_CHUNK` pairs.
        """
        if identity_labels is None:
            identity_labels = self.predict_expressions(identity_images).argmax(1)
        if reference_labels is None:
            reference_labels = self.predict_expressions(reference_images).argmax(1)
        same = int((identity_labels == reference_labels).sum())
        if same:
            warnings.warn(
                f"{same} of {len(identity_labels)} pairs already share an expression: "
                "nothing to swap, their outputs are reconstructions",
                stacklevel=2,
            )
        chunks = (
            t.split(INFERENCE_CHUNK) for t in (identity_images, reference_images, identity_labels, reference_labels)
        )
        return torch.cat([self.generator.transfer(*chunk) for chunk in zip(*chunks)])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(images)

    # --- one training step: D, then G, then C --------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d, opt_c = self.optimizers()
        step = int(batch["step"]) if "step" in batch else self.global_step // OPTIMIZER_STEPS_PER_BATCH
        pairs, objective = Pairs.from_batch(batch), self.objective
        out = objective.generate(pairs)

        with self.toggled_optimizer(opt_d):
            d_loss, d_terms = objective.d_loss(pairs, out, step)
            d_logged = self._named("d", d_terms, d_loss)
            check_finite(d_logged, step)  # stops before a NaN reaches the weights
            self._descend(opt_d, self.discriminator, d_loss)
        features = objective.backbone_features(pairs, out)  # C's backbone, once for the G and C phases
        with self.toggled_optimizer(opt_g):
            g_loss, g_terms = objective.g_loss(pairs, out, features)
            g_logged = self._named("g", g_terms, g_loss)
            check_finite(g_logged, step)
            self._descend(opt_g, self.generator, g_loss)
        with self.toggled_optimizer(opt_c):
            c_loss, c_terms, logits = objective.c_loss(pairs, out, features)
            c_logged = self._named("c", c_terms)
            check_finite(c_logged, step)
            self._descend(opt_c, self.classifier, c_loss)

        n = len(pairs.y_a)
        self.train_accuracy(logits[: 2 * n].detach(), pairs.real_labels)  # the real faces come first
        self.log_dict({**d_logged, **g_logged, **c_logged}, batch_size=n)
        self.log("train/acc", self.train_accuracy, prog_bar=True, batch_size=n)
        self.log_dict({"d": d_loss, "g": g_loss, "c": c_loss}, prog_bar=True, logger=False, batch_size=n)

    @staticmethod
    def _named(phase: str, terms: Terms, total: torch.Tensor | None = None) -> Terms:
        """``{phase/term: value}``, and ``phase/total`` when given."""
        named = {f"{phase}/{name}": value for name, value in terms.items()}
        return named if total is None else {**named, f"{phase}/total": total}

    def _descend(self, optimizer: Any, network: nn.Module, loss: torch.Tensor) -> None:
        """One optimiser step of ``network`` on ``loss``: its backward reaches ``network``'s parameters only."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss, inputs=[p for p in network.parameters() if p.requires_grad])
        optimizer.step()

    def on_train_epoch_end(self) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()

    # --- evaluation: accuracy here, the rest in callbacks.EvaluationReport -----------------
    def _evaluate(self, batch: dict[str, torch.Tensor], stage: str, accuracy: MulticlassAccuracy) -> torch.Tensor:
        images, labels = batch["image"], batch["label"]
        logits = self.classify(images)
        accuracy(logits, labels)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(labels))
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), batch_size=len(labels))
        return logits

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_accuracy)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """The test images' expression logits ``[N, n]`` (what :class:`~exprgan.callbacks.EvaluationReport` reads)."""
        return self._evaluate(batch, "test", self.test_accuracy)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Per-image expression probabilities ``[N, n]``."""
        return self.predict_expressions(batch["image"])

    # --- optimisation and set-up --------------------------------------------------------
    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        o = self.optimization  # fused: one kernel a step for all of a network's parameters (the same update)
        adam = {"lr": o.gan_lr, "betas": tuple(o.gan_betas), "weight_decay": o.gan_weight_decay, "fused": True}
        optimizers = [
            torch.optim.Adam(self.generator.parameters(), **adam),
            torch.optim.Adam(self.discriminator.parameters(), **adam),
            torch.optim.SGD(
                self.classifier.parameters(),
                lr=o.classifier_lr,
                momentum=o.classifier_momentum,
                weight_decay=o.classifier_weight_decay,
                fused=True,
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
        if str(self.trainer.precision).startswith("16"):
            raise ValueError(
                "JointExprGAN takes G's L_C gradient through the classifier by hand, outside fp16's "
                "loss scaling: use precision='bf16-mixed' (or 32) instead of '16-mixed'"
            )

    def on_fit_start(self) -> None:
        wrapped = self.trainer.strategy.model  # DDP wraps the module once the strategy is set up
        if isinstance(wrapped, DistributedDataParallel) and not wrapped.find_unused_parameters:
            raise ValueError(
                "JointExprGAN updates G, D and C in separate backward passes: under DDP use "
                "strategy='ddp_find_unused_parameters_true' (the exprgan CLI does this for 'ddp')"
            )

    # --- checkpoints: RNG states, so a resumed run draws the same dropout masks ----------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_states_to_restore = checkpoint.get("rng_states")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_states_to_restore is not None:  # after Lightning's own restore, before the first batch
            set_rng_states(self._rng_states_to_restore)
            self._rng_states_to_restore = None

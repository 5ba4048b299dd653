"""JointExprGAN: the three phases, the ablation flags, faults, resume, inference."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from exprgan.joint import INFERENCE_CHUNK, OPTIMIZER_STEPS_PER_BATCH
from exprgan.objective import NonFiniteLossError, Pairs
from tests.conftest import tiny_data, tiny_model, tiny_trainer


class BatchRecorder(Callback):
    """Keeps every training batch and the per-step loss values the module logged."""

    def __init__(self) -> None:
        self.batches: list[dict[str, torch.Tensor]] = []
        self.losses: list[dict[str, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append({k: v.clone() for k, v in batch.items()})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self.losses.append({k: float(metrics[k]) for k in ("d/total", "g/total", "c/classification")})


def _fit(model: pl.LightningModule, batches: int, **trainer_options) -> BatchRecorder:
    recorder = BatchRecorder()
    trainer = tiny_trainer(max_steps=OPTIMIZER_STEPS_PER_BATCH * batches, callbacks=[recorder], **trainer_options)
    trainer.fit(model, tiny_data())
    return recorder


def test_one_batch_is_three_optimiser_steps_and_logs_every_term() -> None:
    model = tiny_model()
    recorder = BatchRecorder()
    trainer = tiny_trainer(max_steps=2 * OPTIMIZER_STEPS_PER_BATCH, callbacks=[recorder])
    trainer.fit(model, tiny_data())
    assert trainer.global_step == 6 and len(recorder.batches) == 2
    logged = set(trainer.callback_metrics)
    for term in ("adversarial", "interpolation", "total"):
        assert f"d/{term}" in logged
    for term in ("adversarial", "interpolation", "reconstruction", "perceptual", "pixel_sum", "total_variation"):
        assert f"g/{term}" in logged
    assert {"g/classification", "c/classification", "train/acc"} <= logged
    # target expression cycling: batch t has y_a = t mod n everywhere, y_b different
    for t, batch in enumerate(recorder.batches):
        assert (batch["label_a"] == t % 7).all() and (batch["label_b"] != batch["label_a"]).all()


def test_optimisers_hold_disjoint_parameters_and_never_the_perceptual_network() -> None:
    model = tiny_model()
    optimizers, _ = model.configure_optimizers()
    seen = [id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]]
    assert len(seen) == len(set(seen))
    perceptual = {id(p) for p in model.perceptual.parameters()}
    assert not perceptual & set(seen)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == set(seen)
    assert isinstance(optimizers[0], torch.optim.Adam) and isinstance(optimizers[2], torch.optim.SGD)
    assert optimizers[0].defaults["betas"] == (0.5, 0.999) and optimizers[2].defaults["momentum"] == 0.9


def _generator_after_one_batch(joint: bool, classifier_seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = tiny_model(loss_weights=dict(classification=1.0 if joint else 0.0))  # 0: TwoStage
    torch.manual_seed(classifier_seed)
    for p in model.classifier.parameters():
        p.data.normal_(0, 0.05)
    torch.manual_seed(1)
    _fit(model, batches=1)
    return {k: v.clone() for k, v in model.generator.state_dict().items()}


@pytest.mark.parametrize("joint", [True, False])
def test_twostage_means_no_classifier_gradient_reaches_the_generator(joint: bool) -> None:
    first = _generator_after_one_batch(joint, classifier_seed=10)
    second = _generator_after_one_batch(joint, classifier_seed=20)
    same = all(torch.equal(first[k], second[k]) for k in first)
    assert same != joint  # joint: the classifier shapes G; TwoStage: it cannot


@pytest.mark.parametrize("synthesized", [True, False])
def test_synthesized_images_off_means_the_classifier_sees_only_real_faces(synthesized: bool) -> None:
    model = tiny_model(synthesized_images=synthesized)
    seen: list[torch.Tensor] = []
    model.classifier.normalize.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    recorder = _fit(model, batches=2)
    real = torch.cat([torch.cat([b["image_a"], b["image_b"]]) for b in recorder.batches])
    rows = torch.cat(seen)
    is_real = [(row == real).flatten(1).all(1).any().item() for row in rows]
    assert all(is_real) != synthesized


def test_expression_representation_off_ignores_the_encoder() -> None:
    model = tiny_model(expression_representation=False).eval()
    assert not model.classifier.uses_representation
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    before = model.classify(images)
    for p in model.generator.encoder.parameters():
        p.data.add_(1.0)
    assert torch.equal(before, model.classify(images))
    fused = tiny_model().eval()
    before = fused.classify(images)
    for p in fused.generator.encoder.parameters():
        p.data.add_(1.0)
    assert not torch.allclose(before, fused.classify(images))


@pytest.mark.parametrize("interpolation", [True, False])
def test_interpolation_weight_0_drops_the_interpolated_images(interpolation: bool) -> None:
    model = tiny_model(loss_weights=dict(interpolation=1.0 if interpolation else 0.0))  # 0: No_InterL
    sizes: list[int] = []
    model.discriminator.d1.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    trainer = tiny_trainer(max_steps=3)
    trainer.fit(model, tiny_data())
    b = 2  # pairs per batch
    # D phase: the real faces, then the generated ones; G phase: the generated ones
    assert sizes == ([2 * b, 4 * b, 4 * b] if interpolation else [2 * b, 2 * b, 2 * b])
    assert ("g/interpolation" in trainer.callback_metrics) == interpolation


def test_r1_penalty_is_logged_and_changes_the_discriminators_update() -> None:
    states = {}
    for gamma in (0.0, 10.0):
        torch.manual_seed(0)
        model = tiny_model(loss_weights=dict(r1=gamma))
        trainer = tiny_trainer(max_steps=3)
        trainer.fit(model, tiny_data())
        assert ("d/r1" in trainer.callback_metrics) == (gamma > 0)
        states[gamma] = {k: v.clone() for k, v in model.state_dict().items()}
    assert float(trainer.callback_metrics["d/r1"]) > 0
    d_keys = [k for k in states[0.0] if k.startswith("discriminator.")]
    assert any(not torch.allclose(states[0.0][k], states[10.0][k]) for k in d_keys)


def test_lazy_r1_runs_every_k_batches_with_k_times_the_weight() -> None:
    torch.manual_seed(0)
    r1 = dict(r1=10.0)
    lazy, plain, none = tiny_model(loss_weights=r1, r1_every=3), tiny_model(loss_weights=r1), tiny_model()
    plain.load_state_dict(lazy.state_dict())
    none.load_state_dict(lazy.state_dict())
    pairs = Pairs.from_batch(next(iter(tiny_data().train_dataloader())))
    out = lazy.objective.generate(pairs)
    for step in range(4):
        total, terms = lazy.objective.d_loss(pairs, out, step)
        plain_total, plain_terms = plain.objective.d_loss(pairs, out, step)
        penalty = plain_terms["r1"].item()
        assert penalty > 0
        if step % 3 == 0:  # due: three times plain's weight on the same penalty
            assert terms["r1"].item() == pytest.approx(penalty)
            assert total.item() == pytest.approx(plain_total.item() + 2 * 0.5 * 10.0 * penalty, rel=1e-5)
        else:  # skipped: the loss without R1
            assert "r1" not in terms
            assert total.item() == pytest.approx(none.objective.d_loss(pairs, out, step)[0].item(), rel=1e-6)
    with pytest.raises(ValueError, match="r1_every"):
        tiny_model(r1_every=0)


def test_projection_conditioning_reaches_both_discriminators_and_trains() -> None:
    torch.manual_seed(0)
    model = tiny_model(discriminator_conditioning="projection")
    for d in (model.discriminator.d1, model.discriminator.d2):
        assert d.conditioning == "projection" and d.blocks[0][0].in_channels == 3
    before = model.discriminator.d1.embedding.weight.clone()
    trainer = tiny_trainer(max_steps=3)
    trainer.fit(model, tiny_data())
    assert not torch.allclose(before, model.discriminator.d1.embedding.weight)  # D's update reaches it


class Poison(Callback):
    """Makes the generator's output NaN from a given batch on."""

    def __init__(self, at_batch: int) -> None:
        self.at_batch = at_batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.at_batch:
            pl_module.generator.decoder.to_residual.bias.data.fill_(float("nan"))


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    model = tiny_model()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1)
    trainer = tiny_trainer(max_steps=30, callbacks=[checkpoints, Poison(at_batch=3)], enable_checkpointing=True)
    with pytest.raises(NonFiniteLossError, match=r"at step 3: .*d/adversarial = nan"):
        trainer.fit(model, tiny_data())
    saved = sorted(tmp_path.glob("*.ckpt"))
    assert [p.name for p in saved][-1] == "epoch=0-step=9.ckpt"  # after batches 0, 1, 2
    state = torch.load(saved[-1], map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # the bad batch updated nothing: the live discriminator equals the last checkpoint's
    live = model.discriminator.state_dict()
    assert all(torch.equal(live[k], state[f"discriminator.{k}"]) for k in live)


def test_resume_mid_epoch_continues_the_same_run(tmp_path) -> None:
    def run(max_batches: int, ckpt_path: str | None = None, dirpath=None) -> BatchRecorder:
        pl.seed_everything(0)
        recorder = BatchRecorder()
        callbacks = [recorder]
        if dirpath is not None:
            callbacks.append(ModelCheckpoint(dirpath=dirpath, save_last=True))
        trainer = tiny_trainer(
            max_steps=OPTIMIZER_STEPS_PER_BATCH * max_batches,
            callbacks=callbacks,
            deterministic=True,
            enable_checkpointing=dirpath is not None,
        )
        trainer.fit(tiny_model(), tiny_data(steps_per_epoch=4), ckpt_path=ckpt_path)
        return recorder

    uninterrupted = run(6)
    first_half = run(3, dirpath=tmp_path)  # stops mid-epoch (epochs are 4 batches)
    resumed = run(6, ckpt_path=str(tmp_path / "last.ckpt"))
    assert len(first_half.losses) == 3 and len(resumed.losses) == 3
    assert [int(b["step"]) for b in resumed.batches] == [3, 4, 5]
    for expected, got in zip(uninterrupted.losses, first_half.losses + resumed.losses):
        for key in expected:
            assert math.isclose(expected[key], got[key], rel_tol=0, abs_tol=1e-5), (key, expected, got)
    for expected, got in zip(uninterrupted.batches[3:], resumed.batches):
        assert torch.equal(expected["image_a"], got["image_a"]) and torch.equal(expected["label_b"], got["label_b"])


def test_predict_and_transfer_outside_lightning() -> None:
    model = tiny_model().eval()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    probabilities = model.predict_step({"image": images}, 0)
    assert probabilities.shape == (3, 7)
    assert torch.allclose(probabilities.sum(1), torch.ones(3))
    references = torch.rand(3, 3, 32, 32) * 2 - 1
    out = model.transfer(images, references, torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]))
    assert out.shape == images.shape and out.min() >= -1 and out.max() <= 1
    with pytest.warns(UserWarning, match="1 of 3 pairs already share an expression"):
        same = model.transfer(images, references, torch.tensor([0, 1, 2]), torch.tensor([0, 4, 5]))
    assert torch.allclose(same[0], model.generator.reconstruct(images[:1])[0], atol=1e-5)
    unlabelled = model.transfer(images[:1], references[:1], torch.tensor([0]), None)
    assert unlabelled.shape == (1, 3, 32, 32)


def test_inference_in_chunks_gives_each_image_its_own_result_in_order() -> None:
    """A batch that is not a multiple of the chunk: every image's result is what it gets alone
    (a chunk dropped, repeated or out of order would break it)."""
    model = tiny_model().eval()
    n = 2 * INFERENCE_CHUNK + 3
    images, references = (torch.rand(n, 3, 32, 32) * 2 - 1 for _ in range(2))
    labels = torch.arange(n) % 7
    others = (labels + 1 + torch.arange(n) % 6) % 7
    probabilities = model.predict_expressions(images)
    transferred = model.transfer(images, references, labels, others)
    assert probabilities.shape == (n, 7) and transferred.shape == images.shape
    for i in (0, INFERENCE_CHUNK, n - 1):
        alone = model.predict_expressions(images[i : i + 1])[0]
        assert torch.allclose(probabilities[i], alone, atol=1e-5)
        single = model.transfer(images[i : i + 1], references[i : i + 1], labels[i : i + 1], others[i : i + 1])
        assert torch.allclose(transferred[i], single[0], atol=1e-5)
    predicted = model.transfer(images, references)  # labels from the classifier, chunked too
    assert predicted.shape == images.shape


def test_plain_ddp_is_refused_with_advice() -> None:
    from pytorch_lightning.strategies import DDPStrategy

    model = tiny_model()
    trainer = tiny_trainer(max_steps=3, strategy=DDPStrategy(), devices=1)
    with pytest.raises(ValueError, match="ddp_find_unused_parameters_true"):
        trainer.fit(model, tiny_data())


def test_fp16_with_loss_scaling_is_refused_with_advice() -> None:
    """G's L_C gradient is taken through the classifier by hand, outside fp16's loss scaler."""
    from types import SimpleNamespace

    model = tiny_model()
    model._trainer = SimpleNamespace(precision="16-mixed", strategy=None)
    with pytest.raises(ValueError, match="bf16-mixed"):
        model.setup("fit")
    model._trainer = SimpleNamespace(precision="bf16-mixed", strategy=None)
    model.setup("fit")

"""The fast paths of JointExprGAN give the plain path's numbers, and the benchmark runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader, IterableDataset

from exprgan.fast import has_batch_statistics
from exprgan.models import L2Norm
from tests.conftest import tiny_model, tiny_trainer

REPO = Path(__file__).resolve().parents[1]
TERMS = (
    "d/adversarial",
    "d/interpolation",
    "d/total",
    "g/adversarial",
    "g/interpolation",
    "g/reconstruction",
    "g/perceptual",
    "g/pixel_sum",
    "g/tv",
    "g/classification",
    "g/total",
    "c/loss",
)


class FixedBatches(IterableDataset):
    """The same few pair batches every time (labels follow the target-expression cycle)."""

    def __init__(self, batches: int = 2, pairs: int = 2, size: int = 32, n: int = 7) -> None:
        generator = torch.Generator().manual_seed(123)
        self.items = []
        for step in range(batches):
            label_a = torch.full((pairs,), step % n)
            label_b = (label_a + 1 + torch.arange(pairs) % (n - 1)) % n
            self.items.append(
                {
                    "image_a": torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1,
                    "image_b": torch.rand(pairs, 3, size, size, generator=generator) * 2 - 1,
                    "label_a": label_a,
                    "label_b": label_b,
                    "step": torch.tensor(step),
                }
            )

    def __iter__(self):
        yield from self.items


class LossRecorder(Callback):
    """The logged loss terms after every training batch."""

    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self.losses.append({k: float(metrics[k]) for k in TERMS if k in metrics})


def _train(batches: int = 2, **options) -> tuple[list[dict[str, float]], dict[str, torch.Tensor], pl.LightningModule]:
    torch.manual_seed(0)
    model = tiny_model(**options)
    torch.manual_seed(1)  # the dropout masks of both runs
    recorder = LossRecorder()
    trainer = tiny_trainer(max_steps=3 * batches, callbacks=[recorder])
    trainer.fit(model, DataLoader(FixedBatches(batches), batch_size=None))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return recorder.losses, state, model


PAPER_LIKE = dict(backbone="vgg19", perceptual_layer_weights=(0.5, 1.0))


def _assert_same_training(plain: tuple, fast: tuple) -> None:
    """Every logged loss term (rel 1e-5) and every parameter (rtol 1e-4) of two ``_train`` runs agree."""
    (plain_losses, plain_state, _), (fast_losses, fast_state, _) = plain, fast
    assert plain_losses and len(plain_losses) == len(fast_losses)
    for plain_terms, fast_terms in zip(plain_losses, fast_losses):
        assert plain_terms.keys() == fast_terms.keys()
        for name in plain_terms:
            assert fast_terms[name] == pytest.approx(plain_terms[name], rel=1e-5, abs=1e-6), name
    for name, value in plain_state.items():
        torch.testing.assert_close(fast_state[name], value, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(PAPER_LIKE, id="vgg19-shared-backbone"),
        pytest.param({**PAPER_LIKE, "synthesized_after_steps": 1}, id="vgg19-C-waits-for-G"),
        pytest.param({**PAPER_LIKE, "expression_representation": False}, id="vgg19-no-ExpR"),
        pytest.param({**PAPER_LIKE, "synthesized_images": False}, id="vgg19-no-SynFI"),
        pytest.param({"backbone": "resnet18"}, id="resnet18-batchnorm"),
    ],
)
def test_reuse_features_gives_the_plain_losses_and_updates(options: dict) -> None:
    _assert_same_training(_train(**options), _train(reuse_features=True, **options))


def test_fused_norm_gives_the_plain_losses_and_updates() -> None:
    fast = _train(reuse_features=True, fused_norm=True, **PAPER_LIKE)
    norms = [m for m in fast[2].modules() if isinstance(m, L2Norm)]
    assert norms and all(m.fused for m in norms)
    _assert_same_training(_train(**PAPER_LIKE), fast)


def test_channels_last_gives_the_plain_losses() -> None:
    plain_losses, _, _ = _train(**PAPER_LIKE)
    fast_losses, _, model = _train(channels_last=True, reuse_features=True, **PAPER_LIKE)
    conv = model.classifier.backbone[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    for plain, fast in zip(plain_losses, fast_losses):
        for name in plain:
            assert fast[name] == pytest.approx(plain[name], rel=1e-5, abs=1e-6), name


def _backbone_images_per_step(**options) -> int:
    torch.manual_seed(0)
    model = tiny_model(**options)
    seen: list[int] = []
    model.classifier.backbone.register_forward_hook(lambda module, args, output: seen.append(len(args[0])))
    trainer = tiny_trainer(max_steps=3)
    trainer.fit(model, DataLoader(FixedBatches(1), batch_size=None))
    return sum(seen)


def test_the_shared_backbone_sees_each_face_once_per_step() -> None:
    pairs = 2
    # plain: G phase on [I_a, I_b, I_c, I_d], C phase on them again
    assert _backbone_images_per_step(**PAPER_LIKE) == 2 * 4 * pairs
    assert _backbone_images_per_step(reuse_features=True, **PAPER_LIKE) == 4 * pairs
    assert not has_batch_statistics(tiny_model(**PAPER_LIKE).classifier.backbone)
    assert has_batch_statistics(tiny_model(backbone="resnet18").classifier.backbone)


def test_the_perceptual_network_has_no_backward_pass_through_real_faces() -> None:
    torch.manual_seed(0)
    model = tiny_model(reuse_features=True, **PAPER_LIKE)
    grad_enabled: list[bool] = []
    model.perceptual.network.register_forward_hook(
        lambda module, args, output: grad_enabled.append(torch.is_grad_enabled())
    )
    trainer = tiny_trainer(max_steps=3)
    trainer.fit(model, DataLoader(FixedBatches(1), batch_size=None))
    assert grad_enabled == [False, True]  # [I_a, I_b] without a graph, then [I_c, I_d]


def test_benchmark_quick_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--device", "cpu", "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # steady on a busy machine
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {"environment", "train", "inference", "data", "limit", "acceptance"} <= results.keys()
    for config in ("demo_64", "paper_256"):
        for path in ("plain", "fast"):
            entry = results["train"][config][path]
            assert entry["pairs_per_s"] > 0 and entry["flops_per_step"] > 0 and entry["flop_per_s"] > 0
    assert results["train"]["paper_256"]["speedup"] > 0
    for task in ("synthesis", "recognition"):
        for batch in ("1", "32"):
            assert results["inference"][task][batch]["ms_per_image"] > 0
            assert results["inference"][task][batch]["flops_per_image"] > 0
    for source in ("png", "memmap"):
        assert results["data"][source]["images_per_s"] > 0
    assert results["limit"]["vgg19_fwd_bwd_flop_per_s"] > 0
    assert results["peak_memory"]["cpu_rss_bytes"] > 0
    assert "Pairs/s" in completed.stdout  # the table


def test_fast_transfer_gives_the_generator_transfer() -> None:
    from exprgan.fast import transfer

    torch.manual_seed(0)
    model = tiny_model(generator_identity_init=False).eval()
    identity, reference = torch.rand(5, 3, 32, 32) * 2 - 1, torch.rand(5, 3, 32, 32) * 2 - 1
    identity_labels = torch.tensor([0, 1, 2, 3, 4])
    reference_labels = torch.tensor([1, 1, 5, 3, 0])  # two pairs share their label: reconstructions
    with torch.no_grad():
        expected = model.generator.transfer(identity, reference, identity_labels, reference_labels)
        fast = transfer(model.generator, identity, reference, identity_labels, reference_labels)
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(expected[0], identity[0], atol=1e-3)  # the generator did change the images

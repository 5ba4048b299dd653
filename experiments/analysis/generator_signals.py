"""What a demo checkpoint's losses tell its generator, measured on the synthetic faces.

For each checkpoint (``exprgan fit --config experiments/demo.yaml`` writes them) it prints:

1. **G's loss terms**, on one training batch: the norm of each weighted term's gradient
   with respect to G's parameters and its cosine with the adversarial term's gradient. A
   term much larger than the adversarial one and opposed to it holds G where it is.
2. **How D and C point**, on held-out transfer pairs with ground truth: the cosine of the
   pixel gradient of G's adversarial loss (D) and of the classifier's cross-entropy (C),
   both for the reference's label, with the true edit ``target - I_a``; and the L1 to the
   target after a step of each size along either (unit-norm) direction, next to "no change".

    python experiments/analysis/generator_signals.py runs/demo/checkpoints/last.ckpt [more.ckpt ...]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.joint import JointExprGAN
from exprgan.losses import multiscale_adversarial_loss
from exprgan.objective import Pairs
from exprgan.tools.checkpoints import load_model

STEPS = (0.5, 1.0, 2.0, 4.0)


def term_gradients(model: JointExprGAN, batch: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """``{term: (gradient norm, cosine with the adversarial gradient)}`` over G's parameters."""
    model.train()
    params = list(model.generator.parameters())
    pairs, objective = Pairs.from_batch(batch), model.objective
    out = objective.generate(pairs)
    _, terms = objective.g_loss(pairs, out, objective.backbone_features(pairs, out))
    flat: dict[str, torch.Tensor] = {}
    for name, value in terms.items():
        weighted = getattr(model.weights, name) * value
        grads = torch.autograd.grad(weighted, params, retain_graph=True, allow_unused=True)
        flat[name] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])
    adversarial = flat["adversarial"]
    return {k: (float(g.norm()), float(F.cosine_similarity(g, adversarial, dim=0))) for k, g in flat.items()}


def pixel_directions(model: JointExprGAN, data: SyntheticFacesDataModule) -> dict[str, float]:
    """Cosines of D's and C's pixel gradients with the true edit; L1 after steps along them."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for batch in data.test_dataloader():
        images, target, labels = batch["image"], batch["target"], batch["reference_label"]
        x = images.clone().requires_grad_(True)
        adversarial = multiscale_adversarial_loss(model.discriminator(x, labels), real=True)  # G's loss on x
        (grad_d,) = torch.autograd.grad(adversarial, x)
        (grad_c,) = torch.autograd.grad(F.cross_entropy(model.classify(x), labels), x)
        true_edit = (target - images).flatten(1)
        results = {"no change": (images - target).abs().mean((1, 2, 3))}
        for name, grad in (("D", -grad_d), ("C", -grad_c)):
            results[f"{name} cosine"] = F.cosine_similarity(grad.flatten(1), true_edit, dim=1)
            unit = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None, None]
            for step in STEPS:
                moved = (images + step * unit).clamp(-1.0, 1.0)
                results[f"{name} step {step:g}"] = (moved - target).abs().mean((1, 2, 3))
        for key, values in results.items():
            sums[key] = sums.get(key, 0.0) + float(values.sum())
        count += len(images)
    return {k: v / count for k, v in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--test-identities", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    for path in args.checkpoints:
        model = load_model(path)
        data = SyntheticFacesDataModule(
            image_size=model.hparams.image_size,
            val_identities=10,  # the demo's split: its first held-out identities
            test_identities=args.test_identities,
            batch_size=8,
            eval_batch_size=70,
        )
        data.setup("fit")
        data.setup("test")
        batch = next(iter(data.train_dataloader()))
        print(f"\n{path}")
        print("G's loss terms (weighted): gradient norm, cosine with the adversarial gradient")
        for name, (norm, cosine) in term_gradients(model, batch).items():
            print(f"  {name:18s} {norm:9.4f} {cosine:+7.3f}")
        print(f"D and C on {len(data.split('test').labels)} held-out pairs (L1 to the target after a step along each):")
        for name, value in pixel_directions(model, data).items():
            print(f"  {name:18s} {value:9.4f}")


if __name__ == "__main__":
    main()

"""How fast can the demo's generator learn the transfer when it is told the answer?

A reference point for the GAN, not a training method: the demo-sized generator (64 px,
width 32, identity-initialised) is trained on the synthetic faces' ground truth, ``I_c``
towards ``I_a``'s identity with ``I_b``'s expression and ``I_d`` the other way round (plus
the reconstruction term), with Adam as in the demo. Every quarter of the run it prints the
transfer L1 on held-out pairs next to "no change", the figures of ``exprgan test``.

    python experiments/analysis/supervised_transfer.py --steps 1500 --loss mse --lr 2e-4
    python experiments/analysis/supervised_transfer.py --steps 1500 --lr 1e-3 --decoder-output-block
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from exprgan.datamodules import SyntheticFacesDataModule
from exprgan.datamodules.base import to_tensor
from exprgan.losses import LossWeights, reconstruction_loss
from exprgan.models import Generator


def evaluate(generator: Generator, data: SyntheticFacesDataModule) -> tuple[float, float]:
    """(transfer L1, "no change" L1) over the held-out transfer pairs."""
    generator.eval()
    transfer = no_change = count = 0.0
    with torch.no_grad():
        for batch in data.test_dataloader():
            images, target = batch["image"], batch["target"]
            out = generator.transfer(images, batch["reference"], batch["label"], batch["reference_label"])
            transfer += float((out - target).abs().mean((1, 2, 3)).sum())
            no_change += float((images - target).abs().mean((1, 2, 3)).sum())
            count += len(images)
    generator.train()
    return transfer / count, no_change / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--loss", choices=("mse", "l1"), default="mse")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--test-identities", type=int, default=30)
    parser.add_argument(
        "--decoder-output-block", action="store_true", help="G_dec's full-resolution output block (networks option)"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines as they come, also when piped
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    data = SyntheticFacesDataModule(image_size=64, val_identities=10, test_identities=args.test_identities)
    train = data.split("train")
    n, identities = data.num_expressions, data.split_sizes["train"]
    faces = torch.stack([to_tensor(image.numpy()) for image in train.images]).view(identities, n, 3, 64, 64)

    generator = Generator(n, width=args.width, decoder_output_block=args.decoder_output_block)
    optimizer = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    distance = (lambda x, y: 10 * F.mse_loss(x, y)) if args.loss == "mse" else F.l1_loss
    reconstruction_weight = LossWeights().reconstruction  # lambda1, as in the GAN
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        expression = (step - 1) % n  # the demo's cycling target expression
        ids_a = rng.integers(identities, size=args.batch_size)
        ids_b = rng.integers(identities, size=args.batch_size)
        other = (expression + rng.integers(1, n, size=args.batch_size)) % n
        a, b = faces[ids_a, expression], faces[ids_b, other]
        out = generator(a, b, torch.full((args.batch_size,), expression), torch.from_numpy(other))
        loss = (
            distance(out.image_c, faces[ids_a, other])
            + distance(out.image_d, faces[ids_b, expression])
            + reconstruction_weight * reconstruction_loss(a, out.recon_a, b, out.recon_b)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % max(1, args.steps // 4) == 0:
            transfer, no_change = evaluate(generator, data)
            elapsed = time.perf_counter() - start
            print(f"step {step:5d} ({elapsed:4.0f} s): transfer L1 {transfer:.4f}, no change {no_change:.4f}")


if __name__ == "__main__":
    main()

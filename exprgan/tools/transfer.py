"""exprgan transfer: put the expression of the face in each --reference photo on the --identity's face.

Both faces are found and aligned exactly as `exprgan preprocess` does (the most confident face
of each photo), at the checkpoint's image size. Each face's expression label is predicted by
the model's classifier unless --identity-label / --reference-label name it.

Output (OUT's extension sets the format):
  one reference             the identity photo, at its own size, with the model's change to the
                            face added where the face was: the transfer minus the aligned face,
                            warped back (the inverse of the alignment) and weighted by the hull of
                            the face's landmarks and forehead, feathered (--feather). Every pixel
                            the model left alone keeps the photo's own detail; what it changed
                            (mouth, eyes, brows) has the model's resolution, upsampled
  one reference, --crop-only   just the transferred aligned face, at the model's image size
  several references (or --grid)   a grid of aligned faces like the paper's Fig. 8/9: the top row
                            shows each reference, the bottom row the identity (first column) and,
                            under each reference, the identity with that reference's expression

When identity and reference already share an expression there is nothing to swap: the output
is the model's reconstruction of the identity face, and a note says so.

examples:
  exprgan transfer --identity me.jpg --reference smile.jpg --ckpt model.ckpt --out me_smiling.png
  exprgan transfer --identity me.jpg --reference a.jpg --reference b.jpg --reference c.jpg \\
      --ckpt model.ckpt --out grid.png --identity-label neutral
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from exprgan.evaluation.fid import to_uint8
from exprgan.joint import JointExprGAN
from exprgan.tools.checkpoints import label_index
from exprgan.tools.faces import (
    DEFAULT_FEATHER,
    MAX_FEATHER,
    PHOTO_ERRORS,
    crops_to_tensor,
    open_model_and_faces,
    paste_change,
    photo_tool_parser,
)


@torch.no_grad()
def transfer_faces(
    model: JointExprGAN,
    identity: np.ndarray,
    references: Sequence[np.ndarray],
    identity_label: int | None = None,
    reference_labels: Sequence[int] | None = None,
) -> tuple[np.ndarray, int, list[int]]:
    """The aligned ``identity`` face with the expression of each aligned reference face.

    Labels not given are predicted by the model's classifier. Where a reference shares the
    identity's label the output is the reconstruction (``JointExprGAN.transfer`` warns).

    Args:
        model: a trained model in eval mode.
        identity: ``uint8 [S, S, 3]`` aligned identity face (``S`` the model's image size).
        references: ``uint8 [S, S, 3]`` aligned reference faces.
        identity_label: the identity's expression index, or None to predict it.
        reference_labels: one index per reference, or None to predict them.

    Returns:
        ``uint8 [R, S, S, 3]`` transfers, the identity's label and the references' labels.
    """
    if not references or (reference_labels is not None and len(reference_labels) != len(references)):
        raise ValueError(
            f"need one or more references and as many labels, got {len(references)} and {reference_labels}"
        )
    images = crops_to_tensor([identity, *references]).to(next(model.parameters()).device)  # [1 + R, 3, S, S]
    predicted = model.classify(images).argmax(1).tolist()
    identity_label = predicted[0] if identity_label is None else int(identity_label)
    labels = predicted[1:] if reference_labels is None else [int(label) for label in reference_labels]
    outputs = model.transfer(
        images[:1].expand(len(references), -1, -1, -1),
        images[1:],
        torch.full((len(references),), identity_label, device=images.device),
        torch.tensor(labels, device=images.device),
    )
    return to_uint8(outputs).permute(0, 2, 3, 1).cpu().numpy(), identity_label, labels


def transfer_grid(
    identity: np.ndarray, references: Sequence[np.ndarray], transfers: Sequence[np.ndarray], padding: int = 2
) -> np.ndarray:
    """A 2-row grid like the paper's Fig. 8/9, white between the cells.

    Top row: an empty cell, then each reference. Bottom row: the identity, then each
    transfer, under the reference whose expression it took.

    Args:
        identity: ``uint8 [S, S, 3]`` aligned identity face.
        references: ``uint8 [S, S, 3]`` aligned reference faces.
        transfers: ``uint8 [S, S, 3]`` the identity with each reference's expression.
        padding: pixels between cells and around the grid.

    Returns:
        ``uint8 [2 S + 3 padding, (R + 1) S + (R + 2) padding, 3]``.
    """
    if len(references) != len(transfers) or not references:
        raise ValueError(f"need as many transfers as references (>= 1), got {len(transfers)} and {len(references)}")
    cells = np.stack([np.full_like(identity, 255), *references, identity, *transfers])  # [2 (R + 1), S, S, 3]
    grid = make_grid(
        torch.from_numpy(cells).permute(0, 3, 1, 2), nrow=len(references) + 1, padding=padding, pad_value=255
    )
    return grid.permute(1, 2, 0).numpy()


def transfer_main(args: Sequence[str]) -> None:
    """``exprgan transfer --identity A --reference B --ckpt CKPT --out OUT``: A's face with B's expression."""
    parser = photo_tool_parser("exprgan transfer", __doc__)
    parser.add_argument("--identity", type=Path, required=True, metavar="PHOTO", help="the face to change")
    parser.add_argument(
        "--reference",
        type=Path,
        action="append",
        required=True,
        metavar="PHOTO",
        help="the face whose expression to take; repeat for several (a grid)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="OUT", help="the image to write (e.g. out.png)")
    parser.add_argument(
        "--identity-label", metavar="NAME", help="the identity's expression (a class name or index; default: predicted)"
    )
    parser.add_argument(
        "--reference-label",
        action="append",
        metavar="NAME",
        help="the reference's expression (default: predicted); give it once for all references or once per --reference",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--crop-only", action="store_true", help="with one reference: write just the aligned face at the model's size"
    )
    output.add_argument("--grid", action="store_true", help="write the grid even with one reference")
    parser.add_argument(
        "--feather",
        type=float,
        default=DEFAULT_FEATHER,
        metavar="F",
        help="softness of the pasted change's edge: the blur's sigma as a fraction of the aligned face's side "
        f"(default: {DEFAULT_FEATHER:g}, at most {MAX_FEATHER:g})",
    )
    options = parser.parse_args(args)
    if not 0 < options.feather <= MAX_FEATHER:
        parser.error(f"--feather must be in (0, {MAX_FEATHER:g}], got {options.feather:g}")
    references: list[Path] = options.reference
    if options.crop_only and len(references) > 1:
        parser.error("--crop-only writes one face: give one --reference (several write a grid)")
    given = options.reference_label or []
    if len(given) not in (0, 1, len(references)):
        parser.error(f"{len(given)} --reference-label for {len(references)} --reference: give 1 or one each")
    try:
        model, finder = open_model_and_faces(options, parser)
        names = model.class_names
        identity_label = None if options.identity_label is None else label_index(options.identity_label, names)
        reference_labels = [label_index(label, names) for label in given] or None  # None: predicted
        if reference_labels is not None and len(reference_labels) == 1:
            reference_labels *= len(references)  # one label for every reference
        photo, identity = finder.most_confident(options.identity)
        crops = [finder.most_confident(path)[1].crop for path in references]
    except PHOTO_ERRORS as error:  # a photo without a face and an unknown label are ValueErrors
        parser.exit(1, f"{parser.prog}: {error}\n")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*already share an expression")  # said below, per reference
        transfers, identity_label, labels = transfer_faces(
            model, identity.crop, crops, identity_label, reference_labels
        )
    if options.grid or len(references) > 1:
        result, what = transfer_grid(identity.crop, crops, list(transfers)), "grid"
    elif options.crop_only:
        result, what = transfers[0], "aligned face"
    else:
        result = paste_change(photo, identity.crop, transfers[0], identity.matrix, identity.landmarks, options.feather)
        what = "identity photo with the new face"
    try:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(options.out)
    except (OSError, ValueError) as error:  # an unknown extension, an unwritable folder
        parser.exit(1, f"{parser.prog}: cannot write {options.out}: {error}\n")

    source = "given" if options.identity_label is not None else "predicted"
    lines = [f"identity {options.identity}: {names[identity_label]} ({source})"]
    source = "given" if given else "predicted"
    for path, label in zip(references, labels):
        note = ": the same expression, nothing to change (reconstruction)" if label == identity_label else ""
        lines.append(f"reference {path}: {names[label]} ({source}){note}")
    height, width = result.shape[:2]
    lines.append(f"wrote {options.out} ({width}x{height}, {what})")
    print("exprgan transfer: " + "\n  ".join(lines))

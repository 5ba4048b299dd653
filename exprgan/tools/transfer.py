"""``exprgan transfer``: put the expression of reference faces on an identity's face.

Plain functions: :func:`load_face` (the most confident face of a photo, aligned),
:func:`label_index` (a class name to its index), :func:`transfer_faces` (the model's
transfer on aligned crops), :func:`transfer_grid` (the Fig. 8/9-like grid) and
:func:`~exprgan.tools.faces.paste_face` (a crop back into its photo).
:func:`transfer_main` is the command.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import torch

from exprgan.tools.faces import AlignedFace, NoFaceError, crops_to_tensor, find_faces, to_uint8

if TYPE_CHECKING:
    from exprgan.joint import JointExprGAN
    from exprgan.preprocessing.align import CanonicalFace
    from exprgan.preprocessing.landmarks import LandmarkBackend

DESCRIPTION = """\
Put the expression of the face in each --reference photo on the face of the --identity photo.
Both faces are found and aligned exactly as `exprgan preprocess` does (the most confident face
of each photo), at the checkpoint's image size. Each face's expression label is predicted by
the model's classifier unless --identity-label / --reference-label name it.

Output (OUT's extension sets the format):
  one reference             the identity photo, at its own size, with the transferred face pasted
                            back where the face was (the inverse of the alignment, blended with a
                            soft elliptical mask); the face has the model's resolution, so a large
                            face looks softer than the rest of the photo
  one reference, --crop-only   just the transferred aligned face, at the model's image size
  several references (or --grid)   a grid of aligned faces like the paper's Fig. 8/9: the top row
                            shows each reference, the bottom row the identity (first column) and,
                            under each reference, the identity with that reference's expression

When identity and reference already share an expression there is nothing to swap: the output
is the model's reconstruction of the identity face, and a note says so."""

EXAMPLES = """\
examples:
  exprgan transfer --identity me.jpg --reference smile.jpg --ckpt model.ckpt --out me_smiling.png
  exprgan transfer --identity me.jpg --reference a.jpg --reference b.jpg --reference c.jpg \\
      --ckpt model.ckpt --out grid.png --identity-label neutral"""


def label_index(label: str | int, class_names: Sequence[str]) -> int:
    """The index of expression ``label``: a class name (any case) or an index.

    Raises:
        ValueError: no such class; the message lists the valid names.
    """
    names = [str(name) for name in class_names]
    text = str(label).strip()
    lowered = [name.lower() for name in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise ValueError(
        f"unknown expression {text!r}: the model's expressions are {', '.join(names)} (or 0-{len(names) - 1})"
    )


def load_face(
    path: str | os.PathLike[str],
    backend: LandmarkBackend,
    size: int,
    min_score: float = 0.0,
    canonical: CanonicalFace | None = None,
    border: str = "constant",
    detect_max_side: int | None = None,
) -> tuple[np.ndarray, AlignedFace]:
    """A photo and its most confident face, aligned at ``size``.

    Args:
        path: the photo.
        backend, size, min_score, canonical, border, detect_max_side: see
            :func:`~exprgan.tools.faces.find_faces`.

    Raises:
        BadImageError: the photo cannot be read.
        NoFaceError: no face scores at least ``min_score``; the message names the file.
    """
    from exprgan.datamodules.io import read_image

    image = read_image(path)
    faces, below = find_faces(image, backend, size, min_score, canonical, border, detect_max_side)
    if not faces:
        raise NoFaceError(path, min_score, below)
    return image, faces[0]


@torch.no_grad()
def transfer_faces(
    model: JointExprGAN,
    identity: np.ndarray,
    references: Sequence[np.ndarray],
    identity_label: int | None = None,
    reference_labels: Sequence[int | None] | None = None,
) -> tuple[np.ndarray, int, list[int]]:
    """The aligned ``identity`` face with the expression of each aligned reference face.

    Labels not given are predicted by the model's classifier. Where a reference shares the
    identity's label the output is the reconstruction (``JointExprGAN.transfer`` warns).

    Args:
        model: a trained model in eval mode.
        identity: ``uint8 [S, S, 3]`` aligned identity face (``S`` the model's image size).
        references: ``uint8 [S, S, 3]`` aligned reference faces.
        identity_label: the identity's expression index, or None to predict it.
        reference_labels: one index (or None to predict) per reference, or None to predict all.

    Returns:
        ``uint8 [R, S, S, 3]`` transfers, the identity's label and the references' labels.
    """
    if not references:
        raise ValueError("transfer_faces needs at least one reference face")
    device = next(model.parameters()).device
    identity_images = crops_to_tensor([identity]).to(device)  # [1, 3, S, S]
    reference_images = crops_to_tensor(list(references)).to(device)  # [R, 3, S, S]
    given = list(reference_labels) if reference_labels is not None else [None] * len(references)
    if len(given) != len(references):
        raise ValueError(f"{len(given)} reference labels for {len(references)} references")
    if identity_label is None:
        identity_label = int(model.predict_expressions(identity_images).argmax(1)[0])
    if any(label is None for label in given):
        predicted = model.predict_expressions(reference_images).argmax(1).tolist()
        given = [int(p) if label is None else int(label) for label, p in zip(given, predicted)]
    labels = [int(label) for label in given]
    outputs = model.transfer(
        identity_images.expand(len(references), -1, -1, -1),
        reference_images,
        torch.full((len(references),), int(identity_label), device=device, dtype=torch.long),
        torch.tensor(labels, device=device, dtype=torch.long),
    )
    return to_uint8(outputs), int(identity_label), labels


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
    from torchvision.utils import make_grid

    if len(references) != len(transfers) or not references:
        raise ValueError(f"need as many transfers as references (>= 1), got {len(transfers)} and {len(references)}")
    blank = np.full_like(identity, 255)
    cells = [blank, *references, identity, *transfers]
    images = torch.stack([torch.from_numpy(np.ascontiguousarray(cell)).permute(2, 0, 1) for cell in cells]).float()
    grid = make_grid(images / 255.0, nrow=len(references) + 1, padding=padding, pad_value=1.0)  # [3, h, w]
    return (grid * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``exprgan transfer``."""
    from exprgan.tools.faces import FACE_OPTIONS_HELP, add_face_arguments

    parser = argparse.ArgumentParser(
        prog="exprgan transfer",
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n\n" + FACE_OPTIONS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--identity", type=Path, required=True, metavar="PHOTO", help="the face to change")
    parser.add_argument(
        "--reference",
        type=Path,
        action="append",
        required=True,
        metavar="PHOTO",
        help="the face whose expression to take; repeat for several (a grid)",
    )
    parser.add_argument("--ckpt", type=Path, required=True, metavar="CKPT", help="a trained exprgan checkpoint")
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
    add_face_arguments(parser)
    return parser


def transfer_main(args: Sequence[str]) -> None:
    """``exprgan transfer --identity A --reference B --ckpt CKPT --out OUT``: A's face with B's expression."""
    from PIL import Image

    from exprgan.datamodules.io import BadImageError
    from exprgan.preprocessing.landmarks import BackendUnavailableError, BackendWeightsError
    from exprgan.tools.faces import device_and_backend, min_score_from_options, open_checkpoint, paste_face

    parser = build_parser()
    options = parser.parse_args(list(args))
    references: list[Path] = options.reference
    if options.crop_only and len(references) > 1:
        parser.error("--crop-only writes one face: give one --reference (several write a grid)")
    given_labels = options.reference_label or []
    if len(given_labels) not in (0, 1, len(references)):
        parser.error(f"{len(given_labels)} --reference-label for {len(references)} --reference: give 1 or one each")
    device, spec = device_and_backend(options, parser)
    try:
        model = open_checkpoint(options.ckpt, device)
        identity_label = _given_label(options.identity_label, model.class_names)
        # one label for every reference, one each, or none (all predicted)
        reference_labels = [_given_label(label, model.class_names) for label in given_labels or [None]]
        reference_labels *= len(references) // len(reference_labels)
        backend = spec.build()
        size = int(model.hparams.image_size)
        face_options = {
            "min_score": min_score_from_options(options),
            "border": options.border,
            "detect_max_side": options.detect_max_side,
        }
        photo, identity = load_face(options.identity, backend, size, **face_options)
        faces = [load_face(path, backend, size, **face_options)[1] for path in references]
    except (FileNotFoundError, ValueError, BadImageError, BackendUnavailableError, BackendWeightsError) as error:
        _fail(str(error))  # NoFaceError and an unknown label are ValueErrors

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*already share an expression")  # said below, per reference
        transfers, identity_label, labels = transfer_faces(
            model, identity.crop, [face.crop for face in faces], identity_label, reference_labels
        )
    if options.grid or len(references) > 1:
        result, what = transfer_grid(identity.crop, [face.crop for face in faces], list(transfers)), "grid"
    elif options.crop_only:
        result, what = transfers[0], "aligned face"
    else:
        result, what = paste_face(photo, transfers[0], identity.matrix), "identity photo with the new face"
    try:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(options.out)
    except (OSError, ValueError) as error:  # an unknown extension, an unwritable folder
        _fail(f"cannot write {options.out}: {error}")

    names = model.class_names
    source = "given" if options.identity_label is not None else "predicted"
    lines = [f"identity {options.identity}: {names[identity_label]} ({source})"]
    for index, (path, label) in enumerate(zip(references, labels)):
        source = "given" if reference_labels[index] is not None else "predicted"
        note = ": the same expression, nothing to change (reconstruction)" if label == identity_label else ""
        lines.append(f"reference {path}: {names[label]} ({source}){note}")
    height, width = result.shape[:2]
    lines.append(f"wrote {options.out} ({width}x{height}, {what})")
    print("exprgan transfer: " + "\n  ".join(lines))


def _given_label(label: str | None, class_names: Sequence[str]) -> int | None:
    return None if label is None else label_index(label, class_names)


def _fail(message: str) -> NoReturn:
    print(f"exprgan transfer: {message}", file=sys.stderr)
    raise SystemExit(1)

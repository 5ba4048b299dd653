"""``exprgan transfer`` on real photographs (scikit-image's astronaut and coffee), offline, with dlib.

One reference writes an image of the identity photo's size (the new face pasted back),
``--crop-only`` the aligned face, several references a grid; missing faces, unknown labels and
shared expressions are reported clearly. The edit is pasted through a feathered mask of the
face's landmarks, not as the crop's square. Only the model's change is pasted (the photo plus
the upsampled ``transfer - crop``), so whatever the model left alone keeps the photo's pixels
exactly: the known-answer tests below use synthetic alignments and need neither dlib nor a
trained network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from exprgan.cache import read_image
from exprgan.cli import cli_main
from exprgan.datamodules.face_renderer import EXPRESSIONS
from exprgan.preprocessing.align import transform_points, warp
from exprgan.tools.checkpoints import load_model
from exprgan.tools.faces import DEFAULT_FEATHER, FOREHEAD, FaceFinder, NoFaceError, face_mask, paste_change
from exprgan.tools.transfer import label_index, transfer_faces, transfer_grid
from tests.conftest import DEMO_SIZE, fail_in_ci_without_dlib

fail_in_ci_without_dlib()
data = pytest.importorskip("skimage.data")
SIZE = DEMO_SIZE
PAD = 2  # transfer_grid's padding


@pytest.fixture(scope="module")
def loaded_model(demo_checkpoint: Path):
    return load_model(demo_checkpoint)


@pytest.fixture
def reuse_loaded(monkeypatch: pytest.MonkeyPatch, loaded_model, dlib_backend) -> None:
    """The command gets the already loaded model and dlib backend (the first test loads its own)."""
    from exprgan.preprocessing.backends import BackendSpec
    from exprgan.tools import faces

    monkeypatch.setattr(faces, "load_model", lambda checkpoint, device: loaded_model)
    monkeypatch.setattr(BackendSpec, "build", lambda spec: dlib_backend if spec.name == "dlib" else None)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The identity (astronaut, 512 x 512 JPEG), two references of other sizes, and coffee (no face)."""
    root = tmp_path_factory.mktemp("photos")
    astronaut = data.astronaut()
    paths = {name: root / f"{name}.{ext}" for name, ext in [("identity", "jpg"), ("mirror", "png"), ("small", "png")]}
    Image.fromarray(astronaut).save(paths["identity"], quality=95)
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1][40:440, 20:500])).save(paths["mirror"])  # 480 x 400
    Image.fromarray(astronaut).resize((400, 400), Image.BILINEAR).save(paths["small"])
    paths["coffee"] = root / "coffee.png"
    Image.fromarray(data.coffee()).save(paths["coffee"])
    return paths


@pytest.fixture
def run_transfer(demo_checkpoint: Path, dlib_backend) -> Callable[..., None]:
    """``exprgan transfer`` with the demo checkpoint and dlib: ``run_transfer(identity, references, out, *extra)``."""

    def run(identity: Path, references: list[Path], out: Path, *extra: str) -> None:
        args = ["transfer", "--identity", str(identity), "--ckpt", str(demo_checkpoint), "--out", str(out)]
        for reference in references:
            args += ["--reference", str(reference)]
        cli_main([*args, "--backend", "dlib", "--device", "cpu", *extra])

    return run


def test_one_reference_writes_the_identity_photo_and_a_model_that_changes_nothing_changes_no_pixel(
    photos: dict[str, Path], run_transfer, dlib_backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the demo checkpoint is untrained with generator_identity_init: G's residual is exactly 0
    out = tmp_path / "out" / "smiling.png"
    run_transfer(photos["identity"], [photos["mirror"]], out, "--identity-label", "neutral")
    printed = capsys.readouterr().out
    assert "neutral (given)" in printed and "(predicted)" in printed and f"wrote {out} (512x512" in printed

    result, original = read_image(out), read_image(photos["identity"])
    assert result.shape == original.shape == (512, 512, 3)
    # the premise, checked: the transfer is the aligned crop itself
    crop_out = tmp_path / "crop.png"
    run_transfer(photos["identity"], [photos["mirror"]], crop_out, "--identity-label", "neutral", "--crop-only")
    face = FaceFinder(dlib_backend, SIZE, min_score=0.5).most_confident(photos["identity"])[1]
    np.testing.assert_array_equal(read_image(crop_out), face.crop)
    # so no pixel of the photo changes, not even on the face (pasting the 64 px crop blurred it)
    np.testing.assert_array_equal(result, original)


def shift_residual(model, residual: float):
    """``model`` with G's residual the constant ``residual`` (its last layer zero but for the bias)."""
    last = [m for m in model.generator.decoder.to_residual.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        last[-1].weight.zero_()
        last[-1].bias.fill_(math.atanh(residual / 2))  # G_dec's output is 2 tanh(.)
    return model


@pytest.fixture
def darkening_model(monkeypatch: pytest.MonkeyPatch, demo_checkpoint: Path, dlib_backend) -> None:
    """The command gets the demo model with a residual of -0.2 (-25.5 grey levels), and the loaded dlib."""
    from exprgan.preprocessing.backends import BackendSpec
    from exprgan.tools import faces

    model = shift_residual(load_model(demo_checkpoint), -0.2)
    monkeypatch.setattr(faces, "load_model", lambda checkpoint, device: model)
    monkeypatch.setattr(BackendSpec, "build", lambda spec: dlib_backend if spec.name == "dlib" else None)


@pytest.mark.usefixtures("darkening_model")
def test_one_reference_adds_the_model_change_on_the_face_and_keeps_the_photo_detail(
    photos: dict[str, Path], run_transfer, dlib_backend, tmp_path: Path
) -> None:
    out = tmp_path / "darker.png"
    run_transfer(photos["identity"], [photos["mirror"]], out, "--identity-label", "neutral")
    result, original = read_image(out).astype(int), read_image(photos["identity"]).astype(int)
    # only the face changes: the face box is x 175-265, y 76-166; the rest of the photo is untouched
    np.testing.assert_array_equal(result[:, :120], original[:, :120])
    np.testing.assert_array_equal(result[260:], original[260:])
    changed = np.abs(result - original).sum(axis=2) > 0
    rows, columns = np.nonzero(changed)
    assert changed.any() and 150 < columns.mean() < 290 and 60 < rows.mean() < 190
    # on the nose (deep inside the mask) the photo is darker by the change, 25.5 levels give or take
    # the transfer's rounding, pixel by pixel: its detail is the photo's, not the 64 px crop's
    face = FaceFinder(dlib_backend, SIZE, min_score=0.5).most_confident(photos["identity"])[1]
    for x, y in np.round(face.landmarks[27:36]).astype(int):
        difference = result[y - 2 : y + 3, x - 2 : x + 3] - original[y - 2 : y + 3, x - 2 : x + 3]
        assert difference.min() >= -27 and difference.max() <= -24, difference[..., 0]
    # the crop's corners (outside the mask) keep the photo
    inverse = cv2.invertAffineTransform(face.matrix)
    for x, y in np.round(transform_points(inverse, [(2, 2), (SIZE - 3, 2), (2, SIZE - 3)])).astype(int):
        np.testing.assert_array_equal(result[y - 2 : y + 3, x - 2 : x + 3], original[y - 2 : y + 3, x - 2 : x + 3])


@pytest.mark.usefixtures("reuse_loaded")
def test_crop_only_writes_the_aligned_face_at_the_model_size(
    photos: dict[str, Path], run_transfer, tmp_path: Path
) -> None:
    out = tmp_path / "crop.png"
    run_transfer(photos["identity"], [photos["small"]], out, "--crop-only", "--reference-label", "anger")
    assert read_image(out).shape == (SIZE, SIZE, 3)


@pytest.mark.usefixtures("reuse_loaded")
def test_several_references_write_a_grid_and_a_shared_expression_is_said(
    photos: dict[str, Path], run_transfer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.jpg"
    references = [photos["mirror"], photos["small"], photos["identity"]]
    labels = ["--identity-label", "neutral"] + ["--reference-label", "happiness", "--reference-label", "3"]
    run_transfer(photos["identity"], references, out, *labels, "--reference-label", "NEUTRAL")
    printed = capsys.readouterr().out
    assert printed.count("happiness (given)") == 2
    assert f"reference {photos['identity']}: neutral (given): the same expression, nothing to change" in printed
    # 2 rows x 4 columns of 64 px cells, 2 px apart and around
    assert read_image(out).shape == (2 * SIZE + 3 * PAD, 4 * SIZE + 5 * PAD, 3)


@pytest.mark.usefixtures("reuse_loaded")
def test_missing_faces_and_unknown_labels_are_clear_errors(
    photos: dict[str, Path], run_transfer, dlib_backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.png"
    with pytest.raises(SystemExit) as exit_info:
        run_transfer(photos["identity"], [photos["mirror"], photos["coffee"]], out)
    assert exit_info.value.code == 1
    assert f"exprgan transfer: {photos['coffee']}: no face found" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        run_transfer(photos["identity"], [photos["mirror"]], out, "--reference-label", "joy")
    assert exit_info.value.code == 1
    assert "unknown expression 'joy': the model's expressions are " + ", ".join(EXPRESSIONS) in capsys.readouterr().err
    assert not out.exists()

    with pytest.raises(NoFaceError, match="coffee.png: no face found"):  # the identity goes the same way
        FaceFinder(dlib_backend, SIZE, min_score=0.5).most_confident(photos["coffee"])
    with pytest.raises(NoFaceError, match=r"identity.jpg: no face found \(2 below the minimum score 5: see --min"):
        FaceFinder(dlib_backend, SIZE, min_score=5.0).most_confident(photos["identity"])


def test_usage_errors_need_no_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["transfer", "--identity", "a.jpg", "--ckpt", "x.ckpt", "--out", str(tmp_path / "o.png")]
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*common, "--reference", "b.jpg", "--reference", "c.jpg", "--crop-only"])
    assert exit_info.value.code == 2 and "--crop-only writes one face" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*common, "--reference", "b.jpg", "--reference-label", "anger", "--reference-label", "fear"])
    assert exit_info.value.code == 2 and "2 --reference-label for 1 --reference" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*common, "--reference", "b.jpg", "--feather", "0"])
    assert exit_info.value.code == 2 and "--feather must be in (0, 0.06], got 0" in capsys.readouterr().err


def test_label_index_takes_names_in_any_case_or_indices() -> None:
    assert label_index("Happiness", EXPRESSIONS) == 3 and label_index("6", EXPRESSIONS) == 6
    with pytest.raises(ValueError, match="surprise, fear, disgust"):
        label_index("7", EXPRESSIONS)


def test_transfer_grid_puts_each_reference_above_its_transfer() -> None:
    cells = [np.full((SIZE, SIZE, 3), value, np.uint8) for value in (10, 20, 30, 40, 50)]
    identity, references, transfers = cells[0], cells[1:3], cells[3:5]
    grid = transfer_grid(identity, references, transfers, padding=PAD)
    assert grid.shape == (2 * SIZE + 3 * PAD, 3 * SIZE + 4 * PAD, 3)

    def cell(row: int, column: int) -> np.ndarray:
        top, left = PAD + row * (SIZE + PAD), PAD + column * (SIZE + PAD)
        return grid[top : top + SIZE, left : left + SIZE]

    assert (cell(0, 0) == 255).all()  # empty corner
    for column, (reference, transfer) in enumerate(zip(references, transfers), start=1):
        np.testing.assert_array_equal(cell(0, column), reference)
        np.testing.assert_array_equal(cell(1, column), transfer)
    np.testing.assert_array_equal(cell(1, 0), identity)
    assert (grid[:PAD] == 255).all()  # white between the cells


def crop_landmarks(size: int, centre: tuple[float, float] = (0.5, 0.5), scale: float = 1.0) -> np.ndarray:
    """``[68, 2]`` landmarks of a face in an aligned ``size`` crop (fractions of the side scaled about ``centre``).

    The jaw (0-16) a lower half circle of radius 0.3 around (0.5, 0.45), the brows (17-26) a
    line at y 0.33, the other 41 points a circle of radius 0.1 around (0.5, 0.5).
    """
    jaw = np.linspace(0, np.pi, 17)
    inner = np.linspace(0, 2 * np.pi, 41, endpoint=False)
    points = np.concatenate(
        [
            np.stack([0.5 + 0.3 * np.cos(jaw), 0.45 + 0.3 * np.sin(jaw)], axis=1),
            np.stack([np.linspace(0.25, 0.75, 10), np.full(10, 0.33)], axis=1),
            np.stack([0.5 + 0.1 * np.cos(inner), 0.5 + 0.1 * np.sin(inner)], axis=1),
        ]
    )
    return ((points - 0.5) * scale + np.asarray(centre)) * size


def max_step(mask: np.ndarray) -> float:
    """The largest difference between two neighbouring pixels, along rows or columns."""
    return float(max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max()))


def test_face_mask_covers_the_landmarks_and_forehead_and_is_exactly_0_elsewhere() -> None:
    landmarks = crop_landmarks(SIZE)
    mask = face_mask(landmarks, SIZE)
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
    assert mask.min() == 0.0 and mask.max() <= 1.0 and mask.max() > 1 - 1e-6
    x, y = np.round(landmarks).astype(int).T
    assert mask[y, x].min() >= 0.97  # every landmark is (almost) all edit
    brows = landmarks[17:27].mean(axis=0)
    assert mask[round(brows[1] - 0.05 * SIZE), round(brows[0])] >= 0.97  # the forehead's edge too
    assert FOREHEAD > 0.05
    # nothing on the crop's border: its square never shows
    assert mask[0].max() == mask[-1].max() == mask[:, 0].max() == mask[:, -1].max() == 0.0

    # the mask follows the landmarks: a small face in the top-left corner (x, y <= 0.42 of the side)
    # leaves exactly 0 past the push (2 sigma), the antialiased edge (a pixel) and the blur (3 sigma)
    small = face_mask(crop_landmarks(SIZE, centre=(0.3, 0.3), scale=0.4), SIZE)
    sigma = DEFAULT_FEATHER * SIZE
    far = math.ceil(0.42 * SIZE + 2 * sigma) + 1 + math.ceil(3 * sigma) + 1
    assert small[far:].max() == small[:, far:].max() == 0.0
    assert small[round(0.3 * SIZE), round(0.3 * SIZE)] > 1 - 1e-6
    # landmarks beyond the crop are pulled in: still 0 on the border
    off = face_mask(crop_landmarks(SIZE, centre=(0.5, 0.8), scale=1.2), SIZE)
    assert off[-1].max() == off[:, 0].max() == off[:, -1].max() == 0.0 and off.max() > 1 - 1e-6
    for feather in (0.0, 0.07):
        with pytest.raises(ValueError, match="feather must be in"):
            face_mask(landmarks, SIZE, feather)


@pytest.mark.parametrize("feather", [DEFAULT_FEATHER, 2 * DEFAULT_FEATHER])
def test_face_mask_is_smooth_with_the_feather_setting_its_width(feather: float) -> None:
    # a Gaussian of sigma s blurs an edge to a slope of at most 1 / (sqrt(2 pi) s) per pixel
    sigma = feather * SIZE
    mask = face_mask(crop_landmarks(SIZE), SIZE, feather)
    assert 0.6 / (np.sqrt(2 * np.pi) * sigma) < max_step(mask) <= 1.1 / (np.sqrt(2 * np.pi) * sigma)
    assert max_step(mask) < 0.25  # a hard-edged (square) paste steps by 1


def alignment(scale: float, centre: tuple[float, float], angle: float = 12.0) -> np.ndarray:
    """A ``[2, 3]`` photo -> crop affine: ``centre`` (photo pixels) to the crop's centre, rotated and scaled."""
    theta = np.deg2rad(angle)
    linear = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return np.concatenate([linear, (np.full(2, SIZE / 2) - linear @ np.asarray(centre))[:, None]], axis=1)


def photo_landmarks(matrix: np.ndarray) -> np.ndarray:
    """:func:`crop_landmarks` in the photo of the alignment ``matrix``."""
    return transform_points(cv2.invertAffineTransform(matrix), crop_landmarks(SIZE))


def textured_photo(low: int = 60, high: int = 190) -> np.ndarray:
    """``uint8 [200, 240, 3]`` in ``[low, high]``: a 1-pixel checkerboard plus noise (detail at full resolution)."""
    y, x = np.mgrid[0:200, 0:240]
    checker = ((x + y) % 2)[..., None] * 0.5 * (high - low) + low
    noise = np.random.default_rng(0).uniform(0, 0.5 * (high - low), (200, 240, 3))
    return np.round(checker + noise).astype(np.uint8)


def test_a_generator_that_changes_nothing_leaves_the_photo_bit_for_bit(loaded_model) -> None:
    # the demo checkpoint is untrained with generator_identity_init (G's last layer zeroed); the
    # astronaut's face (box x 175-265, y 76-166) aligned by hand, no dlib: 110 photo pixels per crop
    photo = data.astronaut()
    matrix = alignment(SIZE / 110, centre=(220.0, 125.0))
    identity, reference = warp(photo, matrix, SIZE), warp(photo[:, ::-1], matrix, SIZE)
    transfers, _, _ = transfer_faces(loaded_model, identity, [reference], identity_label=0, reference_labels=[3])
    np.testing.assert_array_equal(transfers[0], identity)  # the premise: G returned its input
    pasted = paste_change(photo, identity, transfers[0], matrix, photo_landmarks(matrix))
    assert pasted.dtype == np.uint8
    np.testing.assert_array_equal(pasted, photo)  # pasting the crop itself blurs the face


def test_paste_change_adds_a_known_change_at_its_place_inside_the_mask_and_nowhere_else() -> None:
    photo = textured_photo()
    matrix = alignment(0.5, centre=(120.0, 100.0))  # the face is twice as large in the photo as in the crop
    inverse = cv2.invertAffineTransform(matrix)
    before = warp(photo, matrix, SIZE)
    after = before.astype(np.int16)
    # crop pixels (rows, columns): brighter mouth, darker left eye, both deep inside the mask; a
    # bright corner outside it (the mask is 0 on the crop's border)
    brighter, darker, corner = (slice(36, 44), slice(28, 36)), (slice(20, 28), slice(20, 28)), np.s_[1:7, 1:7]
    after[brighter] += 40
    after[darker] -= 40
    after[corner] += 60
    after = after.astype(np.uint8)  # in range: the photo is in [60, 190]
    pasted = paste_change(photo, before, after, matrix, photo_landmarks(matrix))
    assert pasted.shape == photo.shape and pasted.dtype == np.uint8
    difference = pasted.astype(int) - photo.astype(int)

    # where each square lands in the photo (16 photo pixels a side), it adds its change, sign kept
    for square, change in ((brighter, 40), (darker, -40)):
        centre = [(square[1].start + square[1].stop - 1) / 2, (square[0].start + square[0].stop - 1) / 2]
        x, y = np.round(transform_points(inverse, [centre])[0]).astype(int)
        window = difference[y - 3 : y + 4, x - 3 : x + 4]
        assert np.abs(window - change).max() <= 1, (change, window[..., 0])
    # everywhere else the photo is kept exactly: every photo pixel more than 1.5 crop pixels (the
    # bilinear warp's reach) from both squares, the corner's change included
    y, x = np.mgrid[0:200, 0:240]
    column, row = transform_points(matrix, np.stack([x.ravel(), y.ravel()], axis=1)).T.reshape(2, 200, 240)

    def near(square: tuple[slice, slice]) -> np.ndarray:
        rows, columns = square
        return (
            (row > rows.start - 1.5)
            & (row < rows.stop - 1 + 1.5)
            & (column > columns.start - 1.5)
            & (column < columns.stop - 1 + 1.5)
        )

    elsewhere = ~(near(brighter) | near(darker))
    np.testing.assert_array_equal(pasted[elsewhere], photo[elsewhere])
    assert (difference[near(brighter)] >= 0).all() and (difference[near(darker)] <= 0).all()


def test_paste_change_keeps_the_photo_detail_where_the_change_is_flat() -> None:
    # a 1-pixel checkerboard under a face twice the crop's size: the crop cannot hold that detail
    photo = textured_photo(80, 170)
    matrix = alignment(0.5, centre=(120.0, 100.0))
    landmarks = photo_landmarks(matrix)
    before = warp(photo, matrix, SIZE)
    # no change: the photo, bit for bit (pasting the crop would blur the checkerboard away)
    np.testing.assert_array_equal(paste_change(photo, before, before, matrix, landmarks), photo)
    # the whole crop 20 levels brighter: inside the mask's core (10 crop pixels around the crop's
    # centre) the photo is 20 levels brighter, every pixel of its checkerboard kept
    pasted = paste_change(photo, before, before + np.uint8(20), matrix, landmarks)
    y, x = np.mgrid[0:200, 0:240]
    column, row = transform_points(matrix, np.stack([x.ravel(), y.ravel()], axis=1)).T.reshape(2, 200, 240)
    core = np.hypot(column - SIZE / 2, row - SIZE / 2) < 10
    assert core.sum() > 1000
    np.testing.assert_array_equal(pasted[core].astype(int) - photo[core], 20)


def test_paste_change_blends_through_the_mask_and_touches_nothing_outside() -> None:
    # a smooth photo, a rotated and scaled "alignment", a crop edited everywhere (inverted)
    y, x = np.mgrid[0:200, 0:240].astype(np.float64)
    image = np.stack([x, y, 0.5 * (x + y)], axis=-1) / np.array([240, 200, 220]) * 200 + 20
    image = image.round().astype(np.uint8)
    matrix = alignment(0.9, centre=(120.0, 100.0))
    inverse = cv2.invertAffineTransform(matrix)
    landmarks = photo_landmarks(matrix)
    before = warp(image, matrix, SIZE)
    pasted = paste_change(image, before, 255 - before, matrix, landmarks)
    assert pasted.shape == image.shape and pasted.dtype == np.uint8
    # far from the face nothing changes, not even by rounding; nor at the crop's corners
    np.testing.assert_array_equal(pasted[:, :50], image[:, :50])
    np.testing.assert_array_equal(pasted[:, -40:], image[:, -40:])
    for x, y in np.round(transform_points(inverse, [(2, 2), (SIZE - 3, 2), (2, SIZE - 3)])).astype(int):
        np.testing.assert_array_equal(pasted[y, x], image[y, x])
    # at the face's centre the photo shows the edited crop (photo + (255 - crop) - crop), within a level
    centre = np.round(transform_points(inverse, [(SIZE / 2, SIZE / 2)])[0]).astype(int)
    window = (slice(centre[1] - 8, centre[1] + 8), slice(centre[0] - 8, centre[0] + 8))
    assert np.abs(pasted[window].astype(int) - (255 - image[window].astype(int))).max() <= 2

    # a white change on a black photo: the output is the mask warped back, in [0, 1] and smooth in the
    # photo too (the crop's pixels are 0.9 photo pixels, so at most 0.9 of the crop's slope)
    black = np.zeros_like(before)
    white = paste_change(np.zeros_like(image), black, black + 255, matrix, landmarks)[..., 0] / 255
    assert white.min() == 0.0 and white.max() == 1.0
    assert max_step(white) <= 0.9 * 1.1 / (np.sqrt(2 * np.pi) * DEFAULT_FEATHER * SIZE) + 2 / 255
    assert max_step(white) < 0.25


def test_paste_change_says_which_shapes_do_not_fit() -> None:
    photo, matrix = textured_photo(), alignment(0.5, centre=(120.0, 100.0))
    landmarks, crop = photo_landmarks(matrix), np.zeros((SIZE, SIZE, 3), np.uint8)
    cases = [
        ((photo, crop, crop[:-1], matrix, landmarks), r"before \(64, 64, 3\) and after \(63, 64, 3\)"),
        ((photo, crop[:, :-1], crop[:, :-1], matrix, landmarks), r"\[S, S, 3\], got \(64, 63, 3\)"),
        ((photo[..., :2], crop, crop, matrix, landmarks), r"image must be .*, got \(200, 240, 2\)"),
        ((photo, crop, crop, matrix[:, :2], landmarks), r"matrix must be \[2, 3\], got \(2, 2\)"),
        ((photo, crop, crop, matrix, landmarks[:5]), r"landmarks must be \[68, 2\], got \(5, 2\)"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            paste_change(*args)

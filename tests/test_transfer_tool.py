"""``exprgan transfer`` on real photographs (scikit-image's astronaut and coffee), offline, with dlib.

Issue 5, acceptance 4: one reference writes an image of the identity photo's size (the new
face pasted back), ``--crop-only`` the aligned face, several references a grid; missing faces,
unknown labels and shared expressions are reported clearly. Issue 14, item 3: the face is
pasted through a feathered mask of its landmarks, not as the crop's square.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from exprgan.cache import read_image
from exprgan.cli import cli_main
from exprgan.datamodules.face_renderer import EXPRESSIONS
from exprgan.preprocessing.align import transform_points, warp
from exprgan.tools.checkpoints import load_model
from exprgan.tools.faces import DEFAULT_FEATHER, FOREHEAD, FaceFinder, NoFaceError, face_mask, paste_face
from exprgan.tools.transfer import label_index, transfer_grid
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


def test_one_reference_writes_the_identity_photo_with_the_new_face(
    photos: dict[str, Path], run_transfer, dlib_backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "smiling.png"
    run_transfer(photos["identity"], [photos["mirror"]], out, "--identity-label", "neutral")
    printed = capsys.readouterr().out
    assert "neutral (given)" in printed and "(predicted)" in printed and f"wrote {out} (512x512" in printed

    result, original = read_image(out), read_image(photos["identity"])
    assert result.shape == original.shape == (512, 512, 3)
    # only the face changes: the face box is x 175-265, y 76-166; the rest of the photo is untouched
    np.testing.assert_array_equal(result[:, :120], original[:, :120])
    np.testing.assert_array_equal(result[260:], original[260:])
    changed = np.abs(result.astype(int) - original.astype(int)).sum(axis=2) > 0
    rows, columns = np.nonzero(changed)
    assert changed.any() and 150 < columns.mean() < 290 and 60 < rows.mean() < 190

    # the same transfer as an aligned crop: on the nose (deep inside the mask) the photo shows
    # exactly that crop warped back; the crop's square is not pasted: its corners keep the photo
    crop_out = tmp_path / "crop.png"
    run_transfer(photos["identity"], [photos["mirror"]], crop_out, "--identity-label", "neutral", "--crop-only")
    face = FaceFinder(dlib_backend, SIZE, min_score=0.5).most_confident(photos["identity"])[1]
    inverse = cv2.invertAffineTransform(face.matrix)
    warped = cv2.warpAffine(read_image(crop_out), inverse, (512, 512), flags=cv2.INTER_LINEAR)
    for x, y in np.round(face.landmarks[27:36]).astype(int):  # the nose
        np.testing.assert_array_equal(result[y - 1 : y + 2, x - 1 : x + 2], warped[y - 1 : y + 2, x - 1 : x + 2])
    corners = transform_points(inverse, [(2, 2), (SIZE - 3, 2), (2, SIZE - 3), (SIZE - 3, SIZE - 3)])
    for x, y in np.round(corners).astype(int):
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


def test_paste_face_blends_the_warped_crop_through_the_mask_and_touches_nothing_outside() -> None:
    # a smooth photo, a rotated and scaled "alignment", an edited crop (the photo's crop inverted)
    y, x = np.mgrid[0:200, 0:240].astype(np.float64)
    image = np.stack([x, y, 0.5 * (x + y)], axis=-1) / np.array([240, 200, 220]) * 200 + 20
    image = image.round().astype(np.uint8)
    angle, scale = np.deg2rad(12.0), 0.9
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.concatenate([linear, (np.array([32.0, 32.0]) - linear @ np.array([120.0, 100.0]))[:, None]], axis=1)
    inverse = cv2.invertAffineTransform(matrix)
    landmarks = transform_points(inverse, crop_landmarks(SIZE))  # in the photo
    crop = 255 - warp(image, matrix, SIZE)
    pasted = paste_face(image, crop, matrix, landmarks)
    assert pasted.shape == image.shape and pasted.dtype == np.uint8

    # at the face's centre the photo shows exactly the edited crop warped back
    warped = cv2.warpAffine(crop, inverse, (240, 200), flags=cv2.INTER_LINEAR)
    centre = np.round(transform_points(inverse, [(SIZE / 2, SIZE / 2)])[0]).astype(int)
    window = (slice(centre[1] - 8, centre[1] + 8), slice(centre[0] - 8, centre[0] + 8))
    np.testing.assert_array_equal(pasted[window], warped[window])
    # far from the face nothing changes, not even by rounding; nor at the crop's corners
    np.testing.assert_array_equal(pasted[:, :50], image[:, :50])
    np.testing.assert_array_equal(pasted[:, -40:], image[:, -40:])
    for x, y in np.round(transform_points(inverse, [(2, 2), (SIZE - 3, 2), (2, SIZE - 3)])).astype(int):
        np.testing.assert_array_equal(pasted[y, x], image[y, x])

    # white face on a black photo: the output is the mask warped back, in [0, 1] and smooth in the
    # photo too (the crop's pixels are 0.9 photo pixels, so at most 0.9 of the crop's slope)
    white = paste_face(np.zeros_like(image), np.full_like(crop, 255), matrix, landmarks)[..., 0] / 255
    assert white.min() == 0.0 and white.max() == 1.0
    assert max_step(white) <= 0.9 * 1.1 / (np.sqrt(2 * np.pi) * DEFAULT_FEATHER * SIZE) + 2 / 255
    assert max_step(white) < 0.25

"""The preprocessing run with a fake backend: cache format, failures, resuming after a kill, workers, CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from exprgan.cache import JOURNAL, Journal
from exprgan.cli import cli_main
from exprgan.preprocessing import BackendSpec, CacheMismatchError, CanonicalFace, Detection, crop_name, preprocess
from exprgan.preprocessing.run import detect_faces
from tests.test_align import synthetic_landmarks

FAKE = "tests.test_preprocessing:FakeBackend"
SIZE = 64
KILL_AFTER_ENV = "EXPRGAN_TEST_KILL_AFTER"


class FakeBackend:
    """Landmarks computed from the image alone, so every process and run agrees.

    A dark image (mean < 20) has no face; a red top-left pixel adds a weaker second "face",
    returned first to check that the run keeps the most confident one. With the environment
    variable ``EXPRGAN_TEST_KILL_AFTER=K`` the process SIGKILLs itself at its (K+1)-th image.
    """

    calls = 0

    def __init__(self, tilt: float = 0.1) -> None:
        self.tilt = tilt

    def detect(self, image: np.ndarray) -> list[Detection]:
        FakeBackend.calls += 1
        kill_after = os.environ.get(KILL_AFTER_ENV)
        if kill_after is not None and FakeBackend.calls > int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
        if image.mean() < 20:
            return []
        height, width = image.shape[:2]
        shift = float(image[..., 1].mean()) / 255 * 0.1 * width  # the face moves with the content
        points = synthetic_landmarks(
            (0.35 * width + shift, 0.40 * height),
            (0.65 * width + shift, 0.40 * height + self.tilt * width),
            (0.5 * width + shift, 0.72 * height),
        )
        box = (0.2 * width, 0.2 * height, 0.8 * width, 0.9 * height)
        detections = [Detection(box=box, score=0.9, landmarks=points)]
        if tuple(image[0, 0]) == (255, 0, 0):
            weak = synthetic_landmarks((2.0, 2.0), (8.0, 2.0), (5.0, 9.0))
            detections.insert(0, Detection(box=(0, 0, 10, 10), score=0.3, landmarks=weak))
        return detections


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(40, 256, size=shape, dtype=np.uint8)


def make_tree(root: Path, images: int = 10) -> pd.DataFrame:
    """Images (and a video) under ``root`` with every kind of trouble, and their listing."""
    rng = np.random.default_rng(0)
    paths, frames = [], []
    for i in range(images):
        path = f"subject{i % 3}/img_{i:02d}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_noise(rng, (96, 80, 3))).save(root / path)
        paths.append(path)
        frames.append(-1)
    Image.fromarray(np.zeros((96, 80, 3), dtype=np.uint8)).save(root / "dark.png")  # no face
    two = _noise(rng, (96, 80, 3))
    two[0, 0] = (255, 0, 0)
    Image.fromarray(two).save(root / "two_faces.png")
    Image.fromarray(_noise(rng, (90, 90))).save(root / "gray.jpg")  # grayscale: converted
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    good = (root / paths[0]).read_bytes()
    (root / "truncated.png").write_bytes(good[: len(good) // 3])
    _write_video(root / "clip.avi", rng)
    paths += ["dark.png", "two_faces.png", "gray.jpg", "corrupt.jpg", "truncated.png", "missing.png"]
    paths += ["clip.avi", "clip.avi"]
    frames += [-1, -1, -1, -1, -1, -1, 2, 99]  # frame 99: past the end
    rows = len(paths)
    return pd.DataFrame(
        {
            "path": paths,
            "frame": frames,
            "label": [i % 7 for i in range(rows)],
            "label_name": [f"class{i % 7}" for i in range(rows)],
            "subject": [f"S{i % 3:03d}" for i in range(rows)],
            "pose": [0] * rows,
            "split": ["train" if i % 4 else "test" for i in range(rows)],
            "fold": [i % 5 for i in range(rows)],
            "sequence": [""] * rows,
            "note": [f"extra column {i}" for i in range(rows)],
        }
    )


def _write_video(path: Path, rng: np.random.Generator) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (80, 96))
    for _ in range(5):
        writer.write(_noise(rng, (96, 80, 3)))
    writer.release()


def run(listing: pd.DataFrame, root: Path, out: Path, **options) -> object:
    options = {"backend": BackendSpec(FAKE), "size": SIZE, "progress": False} | options
    return preprocess(listing, root, out, **options)


def cache_contents(out: Path) -> dict[str, bytes]:
    """Every file of a finished cache but the journal (whose line order follows completion order)."""
    files = {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
    files.pop(JOURNAL)
    return files


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    root = tmp_path / "data"
    return root, make_tree(root)


def test_a_run_writes_crops_index_failures_and_meta(tree, tmp_path: Path) -> None:
    root, listing = tree
    out = tmp_path / "cache"
    summary = run(listing, root, out, dataset="toy")
    index = pd.read_csv(out / "index.csv", keep_default_na=False)
    failures = pd.read_csv(out / "failures.csv", keep_default_na=False)
    assert (summary.rows, summary.crops, summary.failures) == (len(listing), len(index), len(failures))
    # every listing row is in exactly one table, both keep the listing's order and all its columns
    assert sorted(index["note"].tolist() + failures["note"].tolist()) == sorted(listing["note"])
    assert index["note"].tolist() == [n for n in listing["note"] if n in set(index["note"])]
    assert list(index.columns) == [*listing.columns, "crop", "score", "box", "n_faces", "other_faces"]
    assert list(failures.columns) == [*listing.columns, "reason"]

    reasons = dict(zip(zip(failures["path"], failures["frame"]), failures["reason"]))
    assert reasons[("dark.png", -1)] == "no face found"
    assert reasons[("corrupt.jpg", -1)].startswith("unreadable: not a readable image")
    assert reasons[("truncated.png", -1)].startswith("unreadable:")
    assert reasons[("missing.png", -1)] == "unreadable: no such file"
    assert reasons[("clip.avi", 99)].startswith("unreadable: no frame 99")
    assert len(reasons) == 5

    rows = {(p, f): row for p, f, row in zip(index["path"], index["frame"], index.itertuples())}
    assert {("gray.jpg", -1), ("clip.avi", 2), ("two_faces.png", -1)} <= set(rows)
    assert rows[("clip.avi", 2)].crop == "crops/clip_avi_f000002.png"
    two = rows[("two_faces.png", -1)]
    assert two.n_faces == 2 and two.score == 0.9  # the most confident kept, the other recorded
    assert json.loads(two.other_faces) == [{"score": 0.3, "box": [0.0, 0.0, 10.0, 10.0]}]
    assert json.loads(rows[("gray.jpg", -1)].box) == [18.0, 18.0, 72.0, 81.0]
    for crop in index["crop"]:
        with Image.open(out / crop) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["dataset"] == "toy" and meta["settings"]["size"] == SIZE
    assert meta["settings"]["canonical"] == CanonicalFace().to_dict()
    assert meta["settings"]["backend"]["name"] == FAKE
    assert meta["counts"] == {"rows": len(listing), "crops": len(index), "failures": len(failures)}


class _CentroidBackend:
    """All 68 "landmarks" at the brightness centroid, the box around the image."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
        weights = image[..., 0].astype(np.float64)
        centroid = [(xx * weights).sum() / weights.sum(), (yy * weights).sum() / weights.sum()]
        box = (0.0, 0.0, image.shape[1] - 1.0, image.shape[0] - 1.0)
        return [Detection(box=box, score=1.0, landmarks=np.tile(centroid, (68, 1)))]


def test_detection_on_a_reduced_copy_maps_back_to_full_resolution() -> None:
    yy, xx = np.mgrid[:600, :800]
    blob = np.exp(-((xx - 512.3) ** 2 + (yy - 201.7) ** 2) / (2 * 12.0**2))
    image = np.repeat(np.round(255 * blob).astype(np.uint8)[..., None], 3, axis=-1)
    full = detect_faces(_CentroidBackend(), image)[0]
    reduced = detect_faces(_CentroidBackend(), image, max_side=200)[0]
    np.testing.assert_allclose(reduced.landmarks, full.landmarks, atol=0.05)
    np.testing.assert_allclose(reduced.box, (1.5, 1.5, 797.5, 597.5))  # centres of the corner 4 x 4 blocks
    assert detect_faces(_CentroidBackend(), image, max_side=800)[0].box == full.box  # not larger: untouched


class RaisingBackend:
    """A backend that fails on every image."""

    def detect(self, image: np.ndarray) -> list[Detection]:
        raise RuntimeError("landmark model exploded")


def test_a_backend_error_on_one_image_is_recorded_not_raised(tree, tmp_path: Path) -> None:
    root, listing = tree
    raising = BackendSpec("tests.test_preprocessing:RaisingBackend")
    summary = run(listing.iloc[:2], root, tmp_path / "cache", backend=raising)
    assert (summary.crops, summary.failures) == (0, 2)
    reasons = pd.read_csv(tmp_path / "cache" / "failures.csv")["reason"]
    assert reasons.tolist() == ["error: RuntimeError: landmark model exploded"] * 2


def test_crop_names_are_deterministic_and_distinct() -> None:
    assert crop_name("Image/original/train_00001.jpg", -1) == "crops/Image/original/train_00001_jpg.png"
    assert crop_name("a.png", -1) != crop_name("a.jpg", -1)
    assert crop_name("Sessions/1/S001-001.avi", 42) == "crops/Sessions/1/S001-001_avi_f000042.png"
    assert crop_name("../up/x.png", -1) == "crops/__/up/x_png.png"
    assert crop_name("/abs/x.png", -1) == "crops/abs/x_png.png"


def _run_then_get_killed(listing: pd.DataFrame, root: Path, out: Path, kill_after: int) -> None:
    os.environ[KILL_AFTER_ENV] = str(kill_after)  # this child process only
    FakeBackend.calls = 0
    run(listing, root, out)


def test_a_run_killed_midway_resumes_to_the_same_cache_as_an_uninterrupted_one(tree, tmp_path: Path) -> None:
    root, listing = tree
    listing_file = tmp_path / "listing.csv"
    listing.to_csv(listing_file, index=False)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    # a child process (forked: no second import of everything) SIGKILLs itself at its 7th detection
    child = multiprocessing.get_context("fork").Process(target=_run_then_get_killed, args=(listing, root, killed, 6))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL
    done_before = len(Journal(killed / JOURNAL).records)
    assert 6 <= done_before < len(listing) - 1  # 6 detections (+ unreadable files met on the way)
    assert not (killed / "index.csv").exists()

    resumed_listing = pd.read_csv(listing_file, keep_default_na=False)
    FakeBackend.calls = 0
    summary = run(resumed_listing, root, killed)
    assert summary.resumed == done_before and summary.processed == len(listing) - done_before
    assert FakeBackend.calls <= summary.processed  # finished images were not redone

    run(resumed_listing, root, whole)
    assert cache_contents(killed).keys() == cache_contents(whole).keys()
    for name, data in cache_contents(whole).items():
        if name != "meta.json":
            assert cache_contents(killed)[name] == data, name
    meta_killed, meta_whole = (json.loads((out / "meta.json").read_text()) for out in (killed, whole))
    assert meta_killed == meta_whole


def test_a_partial_journal_line_and_stray_temporaries_are_cleaned_up(tree, tmp_path: Path) -> None:
    root, listing = tree
    out = tmp_path / "cache"
    run(listing, root, out)
    expected = cache_contents(out)
    journal = (out / JOURNAL).read_bytes()
    lines = journal.splitlines(keepends=True)
    (out / JOURNAL).write_bytes(b"".join(lines[:4]) + lines[4][:20])  # killed while appending line 5
    crop = out / pd.read_csv(out / "index.csv")["crop"].iloc[1]  # of the image of journal line 2
    crop.unlink()  # a crop lost: redone
    stray = crop.with_name(f".{crop.name}.123.tmp")
    stray.write_bytes(b"half a png")
    summary = run(listing, root, out)
    assert summary.resumed == 3 and not stray.exists()  # 4 whole lines, one of them for the lost crop
    assert cache_contents(out) == expected
    assert all(json.loads(line) for line in (out / JOURNAL).read_text().splitlines())


def test_workers_give_the_same_cache_as_one_process(tree, tmp_path: Path) -> None:
    root, listing = tree
    run(listing, root, tmp_path / "one")
    run(listing, root, tmp_path / "two", workers=2)  # spawn, the command's default
    assert cache_contents(tmp_path / "one") == cache_contents(tmp_path / "two") | {
        "meta.json": cache_contents(tmp_path / "one")["meta.json"]
    }


def test_resuming_with_other_settings_is_an_error_and_retry_failures_redoes_failures(tree, tmp_path: Path) -> None:
    root, listing = tree
    out = tmp_path / "cache"
    run(listing, root, out)
    with pytest.raises(CacheMismatchError, match="size"):
        run(listing, root, out, size=SIZE * 2)
    with pytest.raises(CacheMismatchError, match="backend"):
        run(listing, root, out, backend=BackendSpec(FAKE, {"tilt": 0.0}))
    Image.fromarray(np.full((96, 80, 3), 128, dtype=np.uint8)).save(root / "missing.png")
    assert run(listing, root, out).failures == 5  # failures are not retried by default
    assert run(listing, root, out, retry_failures=True).failures == 4


def test_a_listing_without_frames_and_with_another_index(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.full((40, 40, 3), 100, dtype=np.uint8)).save(root / "a.png")
    listing = pd.DataFrame({"path": ["a.png", "a.png"], "label": [1, 2]}, index=[10, 20])  # a duplicate image
    summary = run(listing, root, tmp_path / "cache")
    assert (summary.crops, summary.processed) == (2, 1)
    with pytest.raises(ValueError, match="'path' column"):
        run(pd.DataFrame({"file": ["a.png"]}), root, tmp_path / "cache2")


def test_cli_preprocesses_a_listing_csv(tree, tmp_path: Path, capsys) -> None:
    root, listing = tree
    listing_file = tmp_path / "listing.csv"
    listing.to_csv(listing_file, index=False)
    out = tmp_path / "cache"
    common = ["--listing", str(listing_file), "--root", str(root), "--out", str(out), "--no-progress"]
    cli_main(["preprocess", *common, "--backend", FAKE, "--size", str(SIZE), "--workers", "1"])
    assert f"{len(listing)} rows" in capsys.readouterr().out
    assert json.loads((out / "meta.json").read_text())["dataset"] == str(listing_file)
    with pytest.raises(SystemExit) as exit_info:  # another size in the same folder: a message, not a traceback
        cli_main(["preprocess", *common, "--backend", FAKE, "--size", "32"])
    assert exit_info.value.code == 1 and "other settings" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["preprocess", *common, "--backend", "dlib", "--detector-weights", "x.pth"])
    assert exit_info.value.code == 2 and "face_alignment backend" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["preprocess", *common, "--backend", "nope"])
    assert exit_info.value.code == 2 and "unknown landmark backend" in capsys.readouterr().err


def test_cli_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["preprocess", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--dataset", "--listing", "--root", "--out", "--backend", "--size", "--workers", "--predictor"):
        assert option in text
    assert "0.365" in text  # the canonical positions are documented


# --- the face_alignment backend, offline: weights errors and the glue (no real weights here) ---
def test_face_alignment_weights_missing_offline_are_named(tmp_path: Path, monkeypatch) -> None:
    from urllib.error import URLError

    import torch

    from exprgan.preprocessing import BackendWeightsError
    from exprgan.preprocessing.face_alignment_backend import DETECTOR_URL, FaceAlignmentBackend, default_weights_path

    with pytest.raises(BackendWeightsError, match="--detector-weights") as error:
        FaceAlignmentBackend.prepare(detector_weights=tmp_path / "s3fd.pth")
    assert str(tmp_path / "s3fd.pth") in str(error.value)

    expected = default_weights_path(DETECTOR_URL)  # under the test's empty TORCH_HOME
    assert expected.name == "s3fd-619a316812.pth" and str(expected).startswith(os.environ["TORCH_HOME"])
    with pytest.raises(BackendWeightsError, match="downloads are off") as error:
        FaceAlignmentBackend.prepare(download=False)
    assert str(expected) in str(error.value) and DETECTOR_URL in str(error.value)

    def offline(url: str, dst: str, *args, **kwargs) -> None:
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(BackendWeightsError, match="download failed") as error:
        FaceAlignmentBackend.prepare(detector_weights=None, landmark_weights=tmp_path / "fan.pth.tar")
    assert str(expected) in str(error.value)


class _HeatmapNet:
    """Stands in for 2D-FAN-4 (whose CPU forward takes many seconds): one peak per landmark."""

    def __call__(self, images):
        import torch

        heatmaps = torch.zeros(images.shape[0], 68, 64, 64)
        for point in range(68):
            heatmaps[:, point, 16 + point % 32, 16 + point // 3] = 1.0
        return heatmaps


def test_face_alignment_backend_builds_from_local_files_and_returns_detections(tmp_path: Path, monkeypatch) -> None:
    import face_alignment.utils
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    from exprgan.preprocessing.face_alignment_backend import FaceAlignmentBackend

    fan_file, s3fd_file = tmp_path / "2DFAN4.pth.tar", tmp_path / "s3fd.pth"
    torch.save(FAN(4).state_dict(), fan_file)  # random weights: loading is what is tested
    torch.save(s3fd().state_dict(), s3fd_file)
    backend = FaceAlignmentBackend(s3fd_file, fan_file, device="cpu", filter_threshold=1.0, download=False)
    assert isinstance(backend._model.face_alignment_net, FAN)
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    assert backend.detect(image) == []  # the real detector ran; nothing scores above 1.0

    backend._model.face_alignment_net = _HeatmapNet()
    for name in ("_get_preds_fromhm", "transform_np"):  # the package's numba functions, uncompiled (saves ~20 s)
        monkeypatch.setattr(face_alignment.utils, name, getattr(face_alignment.utils, name).py_func)
    boxes = [np.array([30.0, 30.0, 50.0, 50.0, 0.6]), np.array([8.0, 6.0, 40.0, 44.0, 0.97])]
    backend._model.face_detector.detect_from_image = lambda _: boxes
    found = backend.detect(image)
    assert [d.score for d in found] == [pytest.approx(0.97), pytest.approx(0.6)]
    assert found[0].box == (8.0, 6.0, 40.0, 44.0)
    assert found[0].landmarks.shape == (68, 2) and np.isfinite(found[0].landmarks).all()
    assert (found[0].landmarks > -20).all() and (found[0].landmarks < 70).all()  # around its box

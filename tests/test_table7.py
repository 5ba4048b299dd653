"""experiments/analysis/table7.py: its intervals, JSON, rarest classes and commands, offline and without training."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch
import yaml

from exprgan.evaluation.metrics import classification_report, write_results
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "analysis" / "table7.py"
DEMO = str(REPO / "experiments" / "demo.yaml")
T_975_2 = 4.302652729911275  # t(0.975, 2 degrees of freedom), from a table
NAMES = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


@pytest.fixture(scope="module")
def table7() -> ModuleType:
    """The analysis script, imported from its path (experiments/analysis/ is not a package)."""
    return load_script(SCRIPT, "table7")


@pytest.fixture
def wild(tmp_path: Path) -> str:
    """An overlay standing in for experiments/wild.yaml: data options only."""
    path = tmp_path / "wild.yaml"
    path.write_text(yaml.safe_dump({"data": {"init_args": {"train_identities": 15, "sampling": "cycled"}}}))
    return str(path)


def settings(table7: ModuleType, wild: str, tiny: bool = False):  # noqa: ANN201 (the script's Settings)
    return table7.Settings.of([DEMO, wild], tiny)


# --- intervals ----------------------------------------------------------------------------------
def test_t_interval_known_answer(table7: ModuleType) -> None:
    interval = table7.t_interval([1.0, 2.0, 3.0])  # mean 2, sample std 1
    assert (interval.mean, interval.n) == (2.0, 3)
    assert interval.half_width == pytest.approx(T_975_2 / math.sqrt(3), rel=1e-9)
    one, none = table7.t_interval([0.4]), table7.t_interval([])
    assert (one.mean, one.n) == (0.4, 1) and math.isnan(one.half_width)
    assert none.n == 0 and math.isnan(none.mean)


def test_paired_differences_only_seeds_both_have(table7: ModuleType) -> None:
    values = {0: 0.5, 1: 0.7, 2: 0.9, 3: 0.4}
    baseline = {0: 0.4, 1: 0.5, 2: 0.6, 4: 0.1}
    diffs = table7.paired_differences(values, baseline)
    assert list(diffs) == [0, 1, 2]
    assert list(diffs.values()) == pytest.approx([0.1, 0.2, 0.3])
    interval = table7.t_interval(list(diffs.values()))
    assert interval.mean == pytest.approx(0.2) and interval.half_width == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    # in points: mean and half-width, the sign shown
    assert table7.interval_text(list(diffs.values()), sign="+") == f"+20.0 ± {100 * T_975_2 * 0.1 / math.sqrt(3):.1f}"
    assert table7.interval_text([0.25]) == "25.0" and table7.interval_text([]) == "–"


def test_rarest_classes_by_training_count_ties_in_class_order(table7: ModuleType) -> None:
    counts = {"surprise": 50, "fear": 10, "disgust": 10, "happiness": 200, "sadness": 80, "anger": 9, "neutral": 90}
    assert table7.rarest_classes(counts) == ["anger", "fear"]
    assert table7.rarest_classes({**counts, "anger": 90}) == ["fear", "disgust"]


# --- the configuration --------------------------------------------------------------------------
def test_budget_and_data_of_composed_configs(table7: ModuleType, wild: str) -> None:
    contents = table7.read_configs([DEMO, wild])
    assert table7.budget(contents) == (6300, "00:00:14:00")  # the demo's
    assert table7.budget([*contents, {"trainer": {"max_steps": 30}}]) == (30, "00:00:14:00")
    with pytest.raises(ValueError, match="max_steps"):
        table7.budget([{"trainer": {"max_steps": -1}}])
    data = table7.merge_data([c.get("data") for c in contents])
    assert data["class_path"] == "exprgan.datamodules.SyntheticFacesDataModule"
    assert data["init_args"]["image_size"] == 64 and data["init_args"]["train_identities"] == 15
    other = table7.merge_data([*(c.get("data") for c in contents), {"class_path": "x.Y", "init_args": {"a": 1}}])
    assert other == {"class_path": "x.Y", "init_args": {"a": 1}}
    assert settings(table7, wild, tiny=True).max_steps == table7.TINY_STEPS


# --- the commands -------------------------------------------------------------------------------
def overlays(args: list[str]) -> list[str]:
    return [Path(args[i + 1]).name for i, arg in enumerate(args) if arg == "--config"]


def test_every_variant_adds_its_overlay_and_options(table7: ModuleType, wild: str, tmp_path: Path) -> None:
    s = settings(table7, wild)
    expected = {
        "ours": [],
        "no_synfi": ["no_synfi.yaml"],
        "no_expr": ["no_expr.yaml"],
        "no_interl": ["no_interl.yaml"],
        "twostage": ["twostage.yaml"],
        "shuffled": ["no_synfi.yaml"],
    }
    for name, files in expected.items():
        args = table7.fit_args(s, name, 1, tmp_path / f"{name}-s1")
        assert overlays(args) == ["demo.yaml", "wild.yaml", *files], name
        assert all((table7.ABLATIONS / f).is_file() for f in files)
        assert "--seed_everything=1" in args and "--data.init_args.seed=0" in args  # the data: seed 0 always
        assert f"--trainer.max_steps={s.max_steps}" in args
        assert ("--data.init_args.sampling=shuffled" in args) == (name == "shuffled"), name
    test = table7.test_args(s, "ours", 1, tmp_path / "ours-s1")
    assert f"--ckpt_path={tmp_path / 'ours-s1' / 'checkpoints' / 'last.ckpt'}" in test
    assert f"--trainer.default_root_dir={tmp_path}" in test  # one oracle cache for every run


def test_kn_reads_the_same_seeds_ours_checkpoint(
    table7: ModuleType, wild: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert table7.run_plan(["2N"], [3]) == [(3, ["ours", "2N"])]
    table7.main(
        ["--dry-run", "--config", DEMO, wild, "--variants", "2N", "0N", "--seeds", "3", "--runs-dir", str(runs)]
    )
    assert not runs.exists()  # a dry run writes nothing
    commands = [line[len("$ exprgan ") :].split() for line in capsys.readouterr().out.splitlines() if line[:2] == "$ "]
    assert [c[0] for c in commands] == ["fit", "test", "synthesize", "fit", "test", "fit", "test"]  # ours, 0N, 2N
    synthesize = commands[2]
    assert synthesize[synthesize.index("--ckpt") + 1] == str(runs / "ours-s3" / "checkpoints" / "last.ckpt")
    assert synthesize[synthesize.index("--per-image") + 1] == "2" and synthesize[synthesize.index("--seed") + 1] == "3"
    assert overlays(synthesize) == ["demo.yaml", "wild.yaml"]  # the base data, no variant's
    fit_2n = commands[5]
    assert overlays(fit_2n) == ["demo.yaml", "wild.yaml", "no_synfi.yaml", "data.yaml"]
    assert str(runs / "2N-s3" / "data.yaml") in fit_2n and not any(a.startswith("--data.") for a in fit_2n)
    data = table7.kn_data(settings(table7, wild), runs / "synth-s3", 2)["data"]
    assert data["class_path"] == "exprgan.datamodules.SynthesizedDataModule"
    assert data["init_args"]["synthesized"] == str(runs / "synth-s3") and data["init_args"]["per_image"] == 2
    inner = data["init_args"]["data"]["init_args"]
    assert inner["train_identities"] == 15 and inner["sampling"] == "cycled" and inner["seed"] == 0


def test_default_seeds(table7: ModuleType) -> None:
    plan = dict(table7.run_plan(list(table7.VARIANTS)))
    assert sorted(plan) == [0, 1, 2, 3, 4]
    assert plan[0] == list(table7.VARIANTS)
    assert plan[3] == ["ours", "no_synfi", "0N", "1N", "2N", "4N", "6N"]
    assert plan[0][0] == "ours"  # before the kN that read its checkpoint


# --- the report ---------------------------------------------------------------------------------
def fake_run(run: Path, preds: list[int], steps: int, transfer: dict[str, float] | None = None) -> None:
    """A finished run's files, the test results written by exprgan's own writer."""
    target = list(range(7)) * 2
    write_results(classification_report(torch.tensor(preds), torch.tensor(target), NAMES), run / "results")
    (run / "fit.json").write_text(json.dumps({"global_step": steps}))
    if transfer is not None:
        (run / "results" / "test_transfer.json").write_text(json.dumps(transfer))


def test_json_structure_table_and_plot(table7: ModuleType, wild: str, tmp_path: Path) -> None:
    runs, right = tmp_path / "runs", list(range(7)) * 2
    fake_run(runs / "ours-s0", right, 6300, {"target_acc": 0.8, "edit_recall": 0.5, "oracle_acc": 1.0})
    fake_run(runs / "ours-s1", [0] * 14, 6000)  # cut by max_time; says surprise to everything
    fake_run(
        runs / "no_synfi-s0", right[:13] + [0], 6300, {"target_acc": 0.25, "edit_recall": 0.2}
    )  # one neutral wrong
    fake_run(runs / "2N-s0", right, 6300)
    (runs / "no_synfi-s1").mkdir()  # unfinished: left out
    figures, meta = table7.collect(runs, 6300)
    assert {name: list(by_seed) for name, by_seed in figures.items()} == {"ours": [0, 1], "no_synfi": [0], "2N": [0]}
    assert figures["ours"][1]["acc"] == pytest.approx(2 / 14) and figures["ours"][1]["recall"]["surprise"] == 1.0
    assert figures["no_synfi"][0]["recall"]["neutral"] == 0.5
    assert figures["no_synfi"][0]["mean_class_acc"] == pytest.approx(6.5 / 7)
    assert meta["cut_by_max_time"] == {"ours": [1]} and meta["test_faces"] == [14]
    assert meta["synthesis"] == {  # every variant that transfers
        "ours": {0: {"target_acc": 0.8, "edit_recall": 0.5, "oracle_acc": 1.0}},
        "no_synfi": {0: {"target_acc": 0.25, "edit_recall": 0.2}},
    }

    s = settings(table7, wild)
    meta = {"train_counts": dict.fromkeys(NAMES, 15), "rarest": ["surprise", "fear"], **meta}
    table7.write_json(tmp_path / "t.json", figures, meta)
    written = json.loads((tmp_path / "t.json").read_text())
    assert set(written) == {"ours", "no_synfi", "2N", "_meta"}
    assert written["ours"]["1"] == {
        "acc": pytest.approx(2 / 14),
        "mean_class_acc": pytest.approx(1 / 7),
        "recall": {name: 1.0 if name == "surprise" else 0.0 for name in NAMES},
    }
    assert written["_meta"]["synthesis"]["ours"]["0"]["edit_recall"] == 0.5

    table7.write_table(tmp_path / "t.md", figures, meta, s, tmp_path / "t.json")
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in (tmp_path / "t.md").read_text().splitlines()}
    assert rows["ours"][2] == "2" and rows["ours"][-1] == "seeds 1 |"
    assert rows["ours"][-3] == f"+{100 / 14:.1f} (n=1)"  # seed 0 only: 100% - 13/14
    assert rows["no_synfi"][-3] == "" and "recall surprise" in rows["variant"][5]
    text = (tmp_path / "t.md").read_text()
    assert "The transfers of `ours`" in text and "The transfers of `no_synfi`" in text and "25.0%" in text
    table7.write_plot(tmp_path / "t.png", figures, tiny=False)
    assert (tmp_path / "t.png").stat().st_size > 0

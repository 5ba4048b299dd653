"""experiments/analysis/generated_labels.py: who sees the given label in a model's generated faces."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from tests.conftest import load_script, tiny_data, tiny_model

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "analysis" / "generated_labels.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """The analysis script, imported from its path (experiments/analysis/ is not a package)."""
    return load_script(SCRIPT, "generated_labels")


class SaysSurprise(nn.Module):
    """An oracle stub that calls every face expression 0."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # a device to read

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.zeros(len(images), dtype=torch.long), 7).float() + self.anchor


def test_an_unchanged_face_is_judged_under_the_given_label_not_its_own(script: ModuleType) -> None:
    """A generator that returns its input: the oracle's verdicts follow the given labels
    (``I_c``: ``y_b``) and the source's (``y_a``) as the stream drew them, and the three ways of
    asking C agree (the generated face is its source). Catches: given and source labels swapped,
    I_c and I_d out of order, a judge fed other faces."""
    torch.manual_seed(0)
    model, data = tiny_model(), tiny_data()
    data.setup("fit")
    seen = script.judge(model, data, SaysSurprise(), batches=3)
    given, source = [], []
    for index, batch in enumerate(data.train_dataloader()):
        if index == 3:
            break
        given.append(torch.cat([batch["label_b"], batch["label_a"]]))
        source.append(torch.cat([batch["label_a"], batch["label_b"]]))
    given, source = torch.cat(given), torch.cat(source)
    assert len(given) == 3 * 2 * 2 and set(seen) == {"oracle", "oracle still source", *script.JUDGES}
    assert torch.equal(seen["oracle"], given == 0) and torch.equal(seen["oracle still source"], source == 0)
    assert torch.equal(seen["C"], seen["C pixels"]) and torch.equal(seen["C"], seen["C R"])
    assert all(len(v) == len(given) for v in seen.values())


def test_report_gives_share_precision_and_recall_against_the_oracle(script: ModuleType) -> None:
    t, f = True, False
    seen = {
        "oracle": torch.tensor([t, t, f, f]),
        "oracle still source": torch.tensor([f, f, t, t]),
        "C": torch.tensor([t, t, t, t]),  # accepts all: precision 50%, recall 100%
        "C pixels": torch.tensor([t, f, f, f]),  # 25%, 100%, 50%
        "C R": torch.tensor([f, f, t, f]),  # 25%, 0%, 0%
        "D": torch.tensor([f, f, f, f]),
    }
    lines = script.report("m", seen).splitlines()
    assert "50.0%" in lines[0] and lines[3:] == [
        "| C | 100.0% | 50.0% | 100.0% |",
        "| C pixels | 25.0% | 100.0% | 50.0% |",
        "| C R | 25.0% | 0.0% | 0.0% |",
        "| D | 0.0% | 0.0% | 0.0% |",
    ]

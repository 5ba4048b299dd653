"""Parameter counts against the paper, Sec. IV-B."""

from __future__ import annotations

from exprgan.cli import cli_main
from exprgan.summary import parameter_breakdown


def test_parameter_counts_match_the_paper() -> None:
    counts = parameter_breakdown(num_expressions=7, image_size=256, backbone="vgg19")
    assert abs(counts["GAN"] - 14.0e6) <= 0.03 * 14.0e6
    assert abs(counts["classifier"] - 140.1e6) <= 0.005 * 140.1e6
    assert abs(counts["total"] - 154.1e6) <= 0.005 * 154.1e6
    assert counts["GAN"] == counts["G_enc"] + counts["G_dec"] + counts["D1"] + counts["D2"]


def test_params_command_prints_the_breakdown(capsys) -> None:
    cli_main(["params", "--num-expressions", "6", "--image-size", "64", "--backbone", "resnet18"])
    printed = capsys.readouterr().out
    for part in ("G_enc", "G_dec", "D1", "D2", "GAN", "classifier", "total"):
        assert f"| {part} |" in printed

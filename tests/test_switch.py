"""The switch unit: block boundaries, exact swaps of the two expressions' blocks, interpolation, the switch code."""

from __future__ import annotations

import pytest
import torch

from exprgan.models import Decoder, Generator, SwitchUnit, block_bounds


def test_block_bounds_follow_the_rounding_rule() -> None:
    assert [e for _, e in block_bounds(512, 7)] == [73, 146, 219, 293, 366, 439, 512]
    assert [e for _, e in block_bounds(512, 6)] == [85, 171, 256, 341, 427, 512]
    for n, sizes in ((7, {73, 74}), (6, {85, 86})):
        bounds = block_bounds(512, n)
        assert bounds[0][0] == 0 and bounds[-1][1] == 512
        assert all(end == start for (_, end), (start, _) in zip(bounds, bounds[1:]))  # contiguous
        assert {end - start for start, end in bounds} == sizes


def test_block_bounds_reject_impossible_splits() -> None:
    with pytest.raises(ValueError, match="num_expressions"):
        block_bounds(512, 1)


def _codes(batch: int, channels: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """R_a, R_b whose every entry names its sample and channel (a positive, b negative)."""
    channel = torch.arange(channels, dtype=torch.float32)
    sample = torch.arange(batch, dtype=torch.float32)[:, None] * 10_000
    r_a = (1 + sample + channel)[:, :, None, None].expand(-1, -1, 2, 3).clone()
    return r_a, -r_a


@pytest.mark.parametrize("n", [6, 7])
def test_swap_exchanges_exactly_blocks_i_and_j_per_sample(n: int) -> None:
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]  # a different (i, j) per sample
    y_a = torch.tensor([i for i, _ in pairs])
    y_b = torch.tensor([j for _, j in pairs])
    r_a, r_b = _codes(len(pairs))
    r_c, r_d = SwitchUnit(n).swap(r_a, r_b, y_a, y_b)

    bounds = block_bounds(512, n)
    for k, (i, j) in enumerate(pairs):
        from_b = torch.zeros(512, dtype=torch.bool)
        for block in (i, j):
            from_b[bounds[block][0] : bounds[block][1]] = True
        expected_c = torch.where(from_b[:, None, None], r_b[k], r_a[k])
        expected_d = torch.where(from_b[:, None, None], r_a[k], r_b[k])
        assert torch.equal(r_c[k], expected_c), (k, i, j)
        assert torch.equal(r_d[k], expected_d), (k, i, j)
        assert int(from_b.sum()) == (bounds[i][1] - bounds[i][0]) + (bounds[j][1] - bounds[j][0])


def test_interpolation_endpoints_and_midpoint() -> None:
    switch = SwitchUnit(7)
    r_a, r_b = torch.randn(4, 512, 2, 2), torch.randn(4, 512, 2, 2)
    y_a, y_b = torch.tensor([0, 1, 2, 6]), torch.tensor([5, 4, 3, 0])
    r_c, r_d = switch.swap(r_a, r_b, y_a, y_b)

    p1 = switch.interpolate(r_a, r_b, y_a, y_b, p=1.0)
    assert torch.equal(p1[0], r_a) and torch.equal(p1[1], r_b)
    p0 = switch.interpolate(r_a, r_b, y_a, y_b, p=0.0)
    assert torch.equal(p0[0], r_c) and torch.equal(p0[1], r_d)
    half_c, half_d = switch.interpolate(r_a, r_b, y_a, y_b, p=0.5)
    mask = switch.mask(y_a, y_b).expand_as(r_a)
    assert torch.allclose(half_c[mask], (r_a[mask] + r_b[mask]) / 2)
    assert torch.allclose(half_d[mask], (r_a[mask] + r_b[mask]) / 2)
    assert torch.equal(half_c[~mask], r_a[~mask]) and torch.equal(half_d[~mask], r_b[~mask])


def test_swap_refuses_equal_labels() -> None:
    r = torch.zeros(2, 512, 1, 1)
    with pytest.raises(ValueError, match="y_a != y_b"):
        SwitchUnit(7).swap(r, r, torch.tensor([1, 2]), torch.tensor([1, 3]))


@pytest.mark.parametrize("n", [6, 7])
def test_switch_code_is_the_label_pair_repeated_20_times(n: int) -> None:
    switch = SwitchUnit(n)
    like = torch.zeros(2, 512, 3, 3)
    code = switch.code(torch.tensor([0, n - 1]), torch.tensor([2, 1]), like)
    assert code.shape == (2, 20 * n, 3, 3)
    expected = torch.zeros(2, n)
    expected[0, [0, 2]] = 1
    expected[1, [n - 1, 1]] = 1
    for k in range(2):
        per_pixel = code[k].permute(1, 2, 0).reshape(9, 20, n)  # every pixel, every repeat
        assert torch.equal(per_pixel, expected[k].expand(9, 20, n))
    zero = switch.zero_code(like)
    assert zero.shape == (2, 20 * n, 3, 3) and not zero.any()


@pytest.mark.parametrize("n", [6, 7])
def test_decoder_input_has_1024_plus_20n_channels(n: int) -> None:
    assert Generator(n).decoder.in_channels == 1024 + 20 * n
    assert Decoder(code_extra=20 * n).blocks[0][0].in_channels == 1024 + 20 * n

"""The switch unit (paper Eq. 3 and 6, Fig. 3): swap expression blocks of two codes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def block_bounds(channels: int, num_expressions: int) -> list[tuple[int, int]]:
    """Channel range ``[start, end)`` of every expression block of R.

    Block ``i`` spans ``round(C * i / n) .. round(C * (i + 1) / n)`` (halves round up), so
    the blocks tile all ``C`` channels with sizes differing by at most one:
    ``C = 512, n = 7`` gives 73/74-channel blocks, ``n = 6`` gives 85/86.
    """
    if not 2 <= num_expressions <= channels:
        raise ValueError(f"need 2 <= num_expressions <= channels ({channels}), got {num_expressions}")
    edges = [math.floor(channels * i / num_expressions + 0.5) for i in range(num_expressions + 1)]
    return list(zip(edges, edges[1:]))


class SwitchUnit(nn.Module):
    """Swaps, per sample, the blocks of the two labels between two representations.

    Tensor contract (``n`` expressions, ``C`` channels, any spatial size):

    - ``swap(r_a, r_b, y_a, y_b)``: ``r_a, r_b: [N, C, h, w]``, ``y_a, y_b: [N]`` int64 with
      ``y_a != y_b`` elementwise. Returns ``(r_c, r_d)``: ``r_c`` is ``r_a`` with blocks
      ``y_a`` and ``y_b`` taken from ``r_b`` (it carries expression ``y_b``), ``r_d`` is
      ``r_b`` with those blocks taken from ``r_a`` (expression ``y_a``).
    - ``interpolate(r_a, r_b, y_a, y_b, p)``: Eq. 6, the swapped blocks become
      ``p * own + (1 - p) * other``; ``p = 1`` gives back ``(r_a, r_b)``, ``p = 0`` gives
      ``swap``'s ``(r_c, r_d)``.
    - ``code(y_a, y_b, like)``: the switch code S, ``[N, code_repeat * n, h, w]`` with the
      spatial size, device and dtype of ``like`` (a code R): the n-vector with ones at
      ``y_a`` and ``y_b``, tiled ``code_repeat`` times along channels (channel ``k * n + e``
      holds entry ``e``) and broadcast over space.
    - ``zero_code(like)``: the all-zero S used for reconstruction.

    It has no parameters: the same unit serves training and inference.

    Args:
        num_expressions: ``n``, the number of expression blocks.
        channels: channels of R (512 in the paper).
        code_repeat: how many times S repeats the n-vector (20 in the paper).
    """

    def __init__(self, num_expressions: int, channels: int = 512, code_repeat: int = 20) -> None:
        super().__init__()
        self.num_expressions = num_expressions
        self.channels = channels
        self.code_repeat = code_repeat
        self.bounds = block_bounds(channels, num_expressions)
        block_of_channel = torch.repeat_interleave(torch.tensor([end - start for start, end in self.bounds]))
        self.register_buffer("block_of_channel", block_of_channel, persistent=False)  # [C]: block of each channel

    @property
    def code_channels(self) -> int:
        """Channels of S: ``code_repeat * n``."""
        return self.code_repeat * self.num_expressions

    def _check(self, r_a: torch.Tensor, r_b: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor) -> None:
        if r_a.shape != r_b.shape or r_a.ndim != 4 or r_a.shape[1] != self.channels:
            raise ValueError(
                f"SwitchUnit expects two [N, {self.channels}, h, w] codes, got "
                f"{tuple(r_a.shape)} and {tuple(r_b.shape)}"
            )
        if y_a.shape != (r_a.shape[0],) or y_b.shape != (r_a.shape[0],):
            raise ValueError(f"labels must have shape [{r_a.shape[0]}], got {tuple(y_a.shape)} and {tuple(y_b.shape)}")
        if bool((y_a == y_b).any()):
            raise ValueError("the switch unit needs y_a != y_b for every sample; use the zero code to reconstruct")

    def mask(self, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        """``[N, C, 1, 1]`` bool: True on the channels of blocks ``y_a`` and ``y_b``."""
        blocks = self.block_of_channel.unsqueeze(0)  # [1, C]
        selected = (blocks == y_a.unsqueeze(1)) | (blocks == y_b.unsqueeze(1))  # [N, C]
        return selected[:, :, None, None]

    def swap(
        self, r_a: torch.Tensor, r_b: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 3: ``(r_c, r_d)``."""
        self._check(r_a, r_b, y_a, y_b)
        mask = self.mask(y_a, y_b)
        return torch.where(mask, r_b, r_a), torch.where(mask, r_a, r_b)

    def interpolate(
        self, r_a: torch.Tensor, r_b: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, p: float = 0.5
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 6: ``(r_c^p, r_d^p)``, the swapped blocks mixed ``p`` own + ``(1 - p)`` other."""
        self._check(r_a, r_b, y_a, y_b)
        mask = self.mask(y_a, y_b)
        mixed_c = p * r_a + (1.0 - p) * r_b
        mixed_d = p * r_b + (1.0 - p) * r_a
        return torch.where(mask, mixed_c, r_a), torch.where(mask, mixed_d, r_b)

    def code(self, y_a: torch.Tensor, y_b: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Switch code S for swapping ``y_a`` and ``y_b``: ``[N, code_repeat * n, h, w]``."""
        one_hot = (F.one_hot(y_a, self.num_expressions) | F.one_hot(y_b, self.num_expressions)).to(like.dtype)
        tiled = one_hot.repeat(1, self.code_repeat)  # [N, 20n]
        return tiled[:, :, None, None].expand(-1, -1, *like.shape[-2:])

    def zero_code(self, like: torch.Tensor) -> torch.Tensor:
        """The all-zero S of reconstruction: ``[N, code_repeat * n, h, w]`` like ``like``."""
        return like.new_zeros(like.shape[0], self.code_channels, *like.shape[-2:])

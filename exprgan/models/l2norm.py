"""The paper's l2-N layer (ELEGANT's pixel-wise l2 normalisation)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class _FusedL2Norm(torch.autograd.Function):
    """``gain * x / max(||x||, eps) + bias`` over ``dim=1`` with a hand-written backward.

    The composite version (``F.normalize``, then ``mul`` and ``add``) makes autograd walk
    ~10 element-wise passes over the activation; this one makes 3 forward and 4 backward.
    Same values up to floating-point rounding (``tests/test_models.py``).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)  # [N, 1, H, W]
        inv = norm.clamp_min(eps).reciprocal()
        ctx.save_for_backward(x, inv, norm > eps, gain)
        return torch.addcmul(bias, x, inv * gain)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, inv, unclamped, gain = ctx.saved_tensors
        needs_x, needs_gain, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_gain = grad_bias = None
        if needs_x or needs_gain:
            # <g, x_hat> per pixel: [N, 1, H, W]; it is also the gain's gradient before summing
            dot = (grad * x).sum(dim=1, keepdim=True) * inv
            if needs_x:
                # d/dx of x / ||x||: inv * (g - x_hat * <g, x_hat>); inv is a constant where clamped
                scale = inv * gain
                grad_x = torch.addcmul(grad * scale, x, scale * inv * dot * unclamped, value=-1.0)
            if needs_gain:
                grad_gain = dot.sum().reshape(gain.shape)
        if needs_bias:
            grad_bias = grad.sum().reshape(gain.shape)
        return grad_x, grad_gain, grad_bias, None


class L2Norm(nn.Module):
    """L2-normalise each pixel's channel vector, then apply one scalar gain and bias.

    Unlike batch or instance norm there are no per-channel statistics and no running
    buffers: ``y = gain * x / ||x||_2 + bias`` with the norm taken over ``dim=1``, and
    ``gain`` (init 1) and ``bias`` (init 0) are single learnable scalars for the layer.
    The output of a sample never depends on the rest of its batch.

    Args:
        eps: lower bound on the norm, so an all-zero pixel stays finite.
        fused: compute it with one hand-written autograd function (fewer passes over
            memory, same values up to rounding) instead of PyTorch's composite ops; the
            training fast path switches it on (``JointExprGAN(fused_norm=True)``).
    """

    def __init__(self, eps: float = 1e-12, fused: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.fused = fused
        self.gain = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> same
        if self.fused:
            return _FusedL2Norm.apply(x, self.gain, self.bias, self.eps)
        return self.gain * F.normalize(x, p=2.0, dim=1, eps=self.eps) + self.bias

"""Networks: shapes at 32/64/256 px, gradients, residual wiring, l2-N, the settings that build them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from exprgan.losses import r1_penalty
from exprgan.models import (
    ConditionalDiscriminator,
    Encoder,
    ExpressionClassifier,
    Generator,
    L2Norm,
    MultiScaleDiscriminator,
)
from exprgan.models.l2norm import _L2Norm
from tests.conftest import images, tiny_model

N = 7


def _labels() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([0, 5]), torch.tensor([3, 1])


def test_l2norm_normalises_each_pixel_with_scalar_gain_and_bias() -> None:
    layer = L2Norm()
    assert [tuple(p.shape) for p in layer.parameters()] == [(), ()]
    x = torch.randn(2, 5, 3, 3)
    y = layer(x)
    assert torch.allclose(y.norm(dim=1), torch.ones(2, 3, 3), atol=1e-6)
    with torch.no_grad():
        layer.gain.fill_(2.0)
        layer.bias.fill_(0.5)
    assert torch.allclose(layer(x), 2 * y + 0.5, atol=1e-6)
    assert torch.allclose(layer(x[:1]), layer(x)[:1])  # no batch statistics


def _composite_l2norm(layer: L2Norm, x: torch.Tensor) -> torch.Tensor:
    """The reference: l2-N in PyTorch's composite operations (autograd derives every order)."""
    return layer.gain * F.normalize(x, p=2.0, dim=1, eps=layer.eps) + layer.bias


def _scaled_layer() -> L2Norm:
    layer = L2Norm().double()
    with torch.no_grad():
        layer.gain.fill_(1.7)
        layer.bias.fill_(-0.3)
    return layer


def test_l2norm_has_the_composite_values_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    x[1, :, 2, 3] = 0.0  # an all-zero pixel: the norm is clamped to eps
    layer = _scaled_layer()
    outputs, gradients = [], []
    for run in (layer, lambda t: _composite_l2norm(layer, t)):
        layer.zero_grad(set_to_none=True)
        x_ = x.clone().requires_grad_()
        y = run(x_)
        y.backward(torch.linspace(-1, 1, y.numel(), dtype=torch.float64).reshape(y.shape))
        outputs.append(y.detach())
        gradients.append((x_.grad, layer.gain.grad, layer.bias.grad))
    torch.testing.assert_close(outputs[0], outputs[1])
    for grad, reference in zip(gradients[0], gradients[1]):
        torch.testing.assert_close(grad, reference)


def test_l2norm_first_and_second_derivatives_match_finite_differences() -> None:
    layer = _scaled_layer()
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64, requires_grad=True)

    def run(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return _L2Norm.apply(x, gain, bias, layer.eps)

    inputs = (x, layer.gain.detach().clone().requires_grad_(), layer.bias.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)
    # where the norm is clamped to eps (a pixel of norm ~0.3 under eps = 1): the layer is x / eps there
    small = x.detach().clone()
    small[0, :, 1, 1] *= 0.3 / small[0, :, 1, 1].norm()
    small.requires_grad_()

    def clamped(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return _L2Norm.apply(x, gain, bias, 1.0)

    assert torch.autograd.gradcheck(clamped, (small, *inputs[1:]))
    assert torch.autograd.gradgradcheck(clamped, (small, *inputs[1:]))


def test_r1_gradient_through_l2norm_equals_the_composite_layers() -> None:
    """R1 differentiates D's input gradient (``create_graph``): the l2-N layers' second
    derivative must be right, or D's update from the penalty is wrong."""
    torch.manual_seed(0)
    discriminator = MultiScaleDiscriminator(N, 32, width=4, conditioning="projection").double()
    real = images(3, 32).double().requires_grad_()
    labels = torch.tensor([0, 4, 6])
    parameters = list(discriminator.parameters())

    def r1_grads() -> list[torch.Tensor]:
        penalty = r1_penalty(discriminator(real, labels), real)
        grads = torch.autograd.grad(penalty, parameters, allow_unused=True)  # biases of the last layers: unused
        return [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)]

    library = r1_grads()
    originals = {}
    for module in discriminator.modules():
        if isinstance(module, L2Norm):
            originals[module] = module.forward
            module.forward = lambda x, module=module: _composite_l2norm(module, x)
    reference = r1_grads()
    assert originals  # the discriminator has l2-N layers, all replaced
    for grad, expected in zip(library, reference):
        torch.testing.assert_close(grad, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("size", [32, 64, 256])
def test_generator_and_discriminator_shapes(size: int) -> None:
    generator, discriminator = Generator(N), MultiScaleDiscriminator(N, size)
    a, b = images(2, size), images(2, size)
    y_a, y_b = _labels()
    out = generator(a, b, y_a, y_b, interpolate=True)
    for image in (out.image_c, out.image_d, out.recon_a, out.recon_b, out.interp_c, out.interp_d):
        assert image is not None and image.shape == (2, 3, size, size)
        assert image.min() >= -1 and image.max() <= 1
    assert out.code_a.shape == out.code_b.shape == (2, 512, size // 32, size // 32)
    logits = discriminator(out.image_c, y_b)
    assert [tuple(t.shape) for t in logits] == [(2,), (2,)]
    assert discriminator.d2.image_size == size // 2


@pytest.mark.parametrize("size", [32, 64, 256])
def test_classifier_shapes(size: int) -> None:
    classifier = ExpressionClassifier(N, backbone="vgg19").eval()
    x = images(1, size)
    representation = Encoder()(x)
    assert classifier(x, representation).shape == (1, N)
    features = classifier.forward_features(x)
    assert features.shape == (1, 512, size // 32, size // 32)  # VGG19 pool5
    torch.testing.assert_close(classifier.forward_head(features, representation), classifier(x, representation))


@pytest.mark.parametrize("backbone", ["vgg19_bn", "resnet50", "resnet18", "mobilenet_v3_small"])
def test_other_backbones(backbone: str) -> None:
    classifier = ExpressionClassifier(6, backbone=backbone).eval()
    x = images(1, 64)
    assert classifier(x, Encoder()(x)).shape == (1, 6)


def test_generator_outputs_stay_in_range_for_extreme_inputs() -> None:
    generator = Generator(N, identity_init=False)
    for module in generator.decoder.modules():  # blow up the residual
        if isinstance(module, torch.nn.ConvTranspose2d):
            module.weight.data.mul_(50)
    a, b = torch.ones(2, 3, 32, 32), -torch.ones(2, 3, 32, 32)
    out = generator(a, b, *_labels())
    for image in (out.image_c, out.image_d, out.recon_a, out.recon_b):
        assert image.min() >= -1 and image.max() <= 1


def _assert_finite_grads(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert sum(float(p.grad.abs().sum()) for p in module.parameters()) > 0


def test_every_parameter_gets_a_finite_gradient_at_64px() -> None:
    generator, discriminator = Generator(N, identity_init=False), MultiScaleDiscriminator(N, 64)
    classifier = ExpressionClassifier(N, backbone="vgg19")
    a, b = images(2, 64), images(2, 64)
    y_a, y_b = _labels()
    out = generator(a, b, y_a, y_b, interpolate=True)
    fakes = torch.cat([out.image_c, out.image_d, out.interp_c, out.interp_d, out.recon_a, out.recon_b])
    labels = torch.cat([y_b, y_a, y_b, y_a, y_a, y_b])
    loss = sum(logit.mean() for logit in discriminator(fakes, labels))
    loss = loss + classifier(out.image_c, generator.encode(out.image_c)).logsumexp(1).mean()
    loss.backward()
    for module in (generator, discriminator, classifier):
        _assert_finite_grads(module)


def test_batched_decoding_equals_one_call_per_input() -> None:
    generator = Generator(N, identity_init=False)
    a, b = images(2, 32), images(2, 32)
    y_a, y_b = _labels()
    out = generator(a, b, y_a, y_b, interpolate=True)

    feats_a, feats_b = generator.encoder.forward_features(a), generator.encoder.forward_features(b)
    r_a, r_b = feats_a[-1], feats_b[-1]
    r_c, r_d = generator.switch.swap(r_a, r_b, y_a, y_b)
    s = generator.switch.code(y_a, y_b, r_a)
    image_c = (a + generator.decoder(r_c, r_a, s, feats_a[:-1])).clamp(-1, 1)
    image_d = (b + generator.decoder(r_d, r_b, s, feats_b[:-1])).clamp(-1, 1)
    recon_a = (a + generator.decoder(r_a, r_a, generator.switch.zero_code(r_a), feats_a[:-1])).clamp(-1, 1)
    p_c, _ = generator.switch.interpolate(r_a, r_b, y_a, y_b, 0.5)
    interp_c = (a + generator.decoder(p_c, r_a, s, feats_a[:-1])).clamp(-1, 1)
    for got, want in ((out.image_c, image_c), (out.image_d, image_d), (out.recon_a, recon_a), (out.interp_c, interp_c)):
        assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(generator.reconstruct(a), recon_a, atol=1e-5)


def test_untrained_generator_is_the_identity_and_then_learns_everywhere() -> None:
    generator = Generator(N)  # identity_init: the residual starts at exactly 0
    a, b = images(2, 32), images(2, 32)
    out = generator(a, b, *_labels())
    assert torch.equal(out.image_c, a) and torch.equal(out.recon_b, b)
    # only the last deconv gets a gradient at first; after one step every layer does
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        out = generator(a, b, *_labels())
        (out.image_c - b).abs().mean().backward()
        optimizer.step()
    _assert_finite_grads(generator)
    assert all(float(p.grad.abs().sum()) > 0 for p in generator.parameters())


def test_decoder_adds_the_edited_images_skips() -> None:
    generator = Generator(N, identity_init=False)
    a, b = images(2, 32), images(2, 32)
    feats = generator.encoder.forward_features(a)
    code = feats[-1]
    zero = generator.switch.zero_code(code)
    with_skips = generator.decoder(code, code, zero, feats[:-1])
    without = generator.decoder(code, code, zero, [torch.zeros_like(f) for f in feats[:-1]])
    assert not torch.allclose(with_skips, without)
    # I_c is built on I_a: it changes when I_a changes even with the code held fixed
    y_a, y_b = _labels()
    assert not torch.allclose(generator(a, b, y_a, y_b).image_c, generator(b, a, y_a, y_b).image_c)


def test_decoder_output_block_ends_with_a_block_and_a_conv_at_full_resolution() -> None:
    plain = Generator(N, width=8)
    assert isinstance(plain.decoder.to_residual, torch.nn.ConvTranspose2d)  # the paper's last layer
    assert {"decoder.to_residual.weight", "decoder.to_residual.bias"} <= set(plain.state_dict())  # old checkpoints
    generator = Generator(N, width=8, decoder_output_block=True)
    a, b = images(2, 32), images(2, 32)
    out = generator(a, b, *_labels())
    assert torch.equal(out.image_c, a) and torch.equal(out.recon_b, b)  # still the identity at first
    block, last = generator.decoder.to_residual
    deconv, norm, activation = block  # the fifth block: deconv to full resolution, l2-N, LeakyReLU
    assert isinstance(deconv, torch.nn.ConvTranspose2d) and deconv.stride == (2, 2)
    assert deconv.in_channels == deconv.out_channels == 8
    assert isinstance(norm, L2Norm) and isinstance(activation, torch.nn.LeakyReLU)
    assert isinstance(last, torch.nn.Conv2d) and last.stride == (1, 1) and last.kernel_size == (3, 3)
    torch.nn.init.normal_(last.weight, std=0.1)
    feats = generator.encoder.forward_features(a)
    code = feats[-1]
    zero = generator.switch.zero_code(code)
    x = torch.cat([code, code, zero], dim=1)
    for up, skip in zip(generator.decoder.blocks, reversed(feats[:-1])):
        x = up(x) + skip
    assert x.shape[-1] == 16  # four blocks reach half resolution
    by_hand = 2.0 * torch.tanh(last(block(x)))  # a fifth block to 32 px, then the 3x3 conv
    residual = generator.decoder(code, code, zero, feats[:-1])
    assert residual.shape == a.shape and torch.allclose(residual, by_hand, atol=1e-6)
    assert float(residual.abs().amax()) > 0
    # the option reaches the model built from a configuration
    assert isinstance(tiny_model(decoder_output_block=True).generator.decoder.to_residual, torch.nn.Sequential)
    assert isinstance(tiny_model().generator.decoder.to_residual, torch.nn.ConvTranspose2d)


def test_transfer_with_equal_labels_is_the_reconstruction() -> None:
    generator = Generator(N, identity_init=False)
    a, b = images(2, 32), images(2, 32)
    out = generator.transfer(a, b, torch.tensor([2, 2]), torch.tensor([2, 4]))
    assert torch.allclose(out[0], generator.reconstruct(a[:1])[0], atol=1e-5)
    full = generator(a, b, torch.tensor([2, 2]), torch.tensor([3, 4])).image_c
    assert torch.allclose(out[1], full[1], atol=1e-5)


def test_discriminator_is_conditioned_on_the_label() -> None:
    discriminator = ConditionalDiscriminator(N, 32)
    x = images(1, 32).repeat(2, 1, 1, 1)
    logits = discriminator(x, torch.tensor([0, 4]))
    assert not torch.isclose(logits[0], logits[1])


def test_projection_discriminator_adds_the_label_embedding_times_the_pooled_features() -> None:
    torch.manual_seed(0)
    discriminator = ConditionalDiscriminator(N, 32, channels=(8, 8, 8, 16), conditioning="projection")
    assert discriminator.blocks[0][0].in_channels == 3  # the image alone: no label channels
    x = images(3, 32)
    labels = torch.tensor([0, 4, 6])
    features = discriminator.blocks(x)  # [3, 16, 2, 2]
    unconditional = discriminator.fc(features.flatten(1)).squeeze(1)
    expected = unconditional + (discriminator.embedding.weight[labels] * features.sum(dim=(2, 3))).sum(1)
    assert torch.allclose(discriminator(x, labels), expected, atol=1e-6)
    # only the label's own embedding row moves the logit
    with torch.no_grad():
        discriminator.embedding.weight[1].add_(5.0)
    assert torch.allclose(discriminator(x, labels), expected, atol=1e-6)
    with pytest.raises(ValueError, match="conditioning"):
        ConditionalDiscriminator(N, 32, conditioning="input")  # type: ignore[arg-type]


def test_sizes_that_are_not_multiples_of_32_are_refused() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        Encoder()(images(1, 48))
    with pytest.raises(ValueError, match="32x32"):
        ConditionalDiscriminator(N, 32)(images(1, 64), torch.tensor([0]))


def test_classifier_without_representation_is_the_no_expr_ablation() -> None:
    plain = ExpressionClassifier(N, backbone="resnet18", representation_channels=0).eval()
    assert plain(images(1, 32)).shape == (1, N)
    fused = ExpressionClassifier(N, backbone="resnet18").eval()
    with pytest.raises(ValueError, match="representation"):
        fused(images(1, 32))
    with pytest.raises(ValueError, match="representation must be"):
        fused(images(1, 32), torch.zeros(1, 512, 2, 2))


def test_the_authors_release_settings_reach_the_decoder_and_the_optimisers() -> None:
    """``experiments/ablations/release.yaml``: a ReLU decoder (``decoder_negative_slope: 0``), weight
    decay in G's, D's and C's optimisers, a per-epoch learning-rate decay. Catches: a setting that
    no longer reaches the network or optimiser it names."""
    release = Path(__file__).resolve().parents[1] / "experiments" / "ablations" / "release.yaml"
    options = yaml.safe_load(release.read_text())["model"]
    assert options["networks"]["decoder_negative_slope"] == 0.0
    model = tiny_model(decoder_negative_slope=0.0, **options["optimization"])
    activations = [m for m in model.generator.decoder.modules() if isinstance(m, nn.ReLU | nn.LeakyReLU)]
    assert activations and all(type(m) is nn.ReLU for m in activations)
    assert {m.negative_slope for m in tiny_model().generator.decoder.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    optimizers, schedulers = model.configure_optimizers()
    g, d, c = optimizers
    assert g.defaults["weight_decay"] == d.defaults["weight_decay"] == options["optimization"]["gan_weight_decay"]
    assert c.defaults["weight_decay"] == options["optimization"]["classifier_weight_decay"]
    assert all(s.gamma == options["optimization"]["lr_decay"] for s in schedulers)


@pytest.mark.parametrize("side", [2, 7, 8])
def test_the_classifier_head_is_the_7x7_pool_then_the_linear_layers(side: int) -> None:
    """The head contracts the pool and its first layer in one einsum: the same function (and
    gradient) as ``AdaptiveAvgPool2d(7) -> flatten -> Linear``, whatever the map's size. Catches:
    a pooling matrix with the wrong bins or the weight read in another channel/cell order."""
    torch.manual_seed(0)
    classifier = ExpressionClassifier(7, backbone="resnet18", representation_channels=0, hidden_features=16).double()
    classifier.eval()  # no dropout
    features = torch.randn(3, 512, side, side, dtype=torch.float64, requires_grad=True)
    logits = classifier.forward_head(features)
    fused = classifier.fuse(features)
    expected = classifier.head(F.adaptive_avg_pool2d(fused, 7).flatten(1))
    torch.testing.assert_close(logits, expected, rtol=1e-10, atol=1e-12)
    (grad,) = torch.autograd.grad(logits.square().sum(), features)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), features)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_a_discriminator_judges_each_image_under_several_labels_as_under_each_alone(conditioning: str) -> None:
    """``D(images, labels [N, K])`` is ``[D(images, labels[:, k]) for k]`` as columns (projection reads
    the blocks once). Catches: columns swapped, labels paired with the wrong images."""
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(N, 32, width=8, conditioning=conditioning).double()
    x = images(3, 32).double()
    own, other = torch.tensor([0, 5, 2]), torch.tensor([4, 1, 6])
    together = d(x, torch.stack([own, other], dim=1))
    for scale, (first, second) in enumerate(zip(d(x, own), d(x, other))):
        torch.testing.assert_close(together[scale], torch.stack([first, second], dim=1), rtol=1e-12, atol=1e-12)

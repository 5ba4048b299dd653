"""The training objective, pinned by known answers on one hand-built batch.

One training batch runs through ``training_step`` under a tiny Trainer while a recorder
watches: the generator's output, every discriminator call (images, labels, logits), every
pass of C's backbone (images, features) and of its head (features, representation,
logits: each head row is traced back to the image the backbone read), each loss handed to
``manual_backward`` and what it did to G's gradients, and G's gradients when each
optimiser steps. A call belongs to the phase (D, G or C) whose optimiser steps next. The
batch has distinct labels everywhere (``y_a = [0, 1]``, ``y_b = [2, 3]``) and G starts away
from the identity, so every image row names its source (I_a, I_b, I_c, I_d or an
interpolated image) and every label tells which one it was given.

Each test names the bugs it catches; ``tests/mutate.py`` applies such bugs one at a time and
shows that each makes a test here fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader

from exprgan.losses import SCALE_WEIGHTS
from tests.conftest import images, tiny_model, tiny_trainer

Y_A, Y_B = torch.tensor([0, 1]), torch.tensor([2, 3])
# distinct weights, so that each lambda's place in the total is visible
WEIGHTS = dict(
    reconstruction=1.1,
    perceptual=1.3,
    pixel_sum=1.7,
    total_variation=1.9,
    adversarial=2.3,
    interpolation=2.9,
    classification=3.1,
    change=1.5,
)
G_TERMS = tuple(f"g/{name}" for name in WEIGHTS)  # each logged under its weight's name
# the label each image must be judged and classified with: a real face's own, a generated face's given one
GIVEN_LABEL = {"I_a": Y_A, "I_b": Y_B, "I_c": Y_B, "I_d": Y_A, "interp_c": Y_B, "interp_d": Y_A}
SOURCE_LABEL = {**GIVEN_LABEL, "I_c": Y_A, "I_d": Y_B}  # the label of the face it was made from
# added to D's logits on interpolated images (a known change of the real D's outputs): otherwise
# D judges them almost as it judges I_c, I_d, L_inter ~ L_adv, and a swap of their weights hides
INTERPOLATED_OFFSET = 2.0

Judged = tuple[str, int, int, list[torch.Tensor]]  # (source, index, label given, logit per scale)


@dataclass
class Classified:
    """One call of C's head: backbone features, representation and logits (not detached: graphs kept)."""

    features: torch.Tensor
    representation: torch.Tensor | None
    logits: torch.Tensor


@dataclass
class Phase:
    """What led to one optimiser's step."""

    judged: list[tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]] = field(default_factory=list)
    classified: list[Classified] = field(default_factory=list)
    backward: list[torch.Tensor] = field(default_factory=list)  # each loss handed to manual_backward
    generator_grad_changed: list[bool] = field(default_factory=list)  # by each of those backward passes
    generator_grads: dict[str, torch.Tensor | None] = field(default_factory=dict)  # when it stepped


def _grads(network: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {k: None if p.grad is None else p.grad.detach().clone() for k, p in network.named_parameters()}


def _same(first: dict[str, torch.Tensor | None], second: dict[str, torch.Tensor | None]) -> bool:
    return all(
        second[k] is None if g is None else second[k] is not None and torch.equal(g, second[k])
        for k, g in first.items()
    )


class StepRecorder(Callback):
    """Wraps G, D, C and ``manual_backward``; each record goes to the phase whose optimiser steps next."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.outputs: list[Any] = []  # GeneratorOutput of each generator call
        self.backbone: list[tuple[torch.Tensor, torch.Tensor]] = []  # (images, features) of each backbone pass
        self.phases: dict[str, Phase] = {}
        self._pending = Phase()
        model.generator.register_forward_hook(lambda module, args, output: self.outputs.append(output))
        model.discriminator.register_forward_hook(self._judged, with_kwargs=True)
        classifier = model.classifier
        forward_features, forward_head = classifier.forward_features, classifier.forward_head
        backward = model.manual_backward

        def recorded_features(images: torch.Tensor) -> torch.Tensor:
            features = forward_features(images)
            self.backbone.append((images.detach().clone(), features.detach().clone()))
            return features

        def recorded_head(features: torch.Tensor, representation: torch.Tensor | None = None) -> torch.Tensor:
            logits = forward_head(features, representation)
            self._pending.classified.append(Classified(features, representation, logits))
            return logits

        def manual_backward(loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
            before = _grads(model.generator)
            backward(loss, *args, **kwargs)
            self._pending.backward.append(loss)
            self._pending.generator_grad_changed.append(not _same(before, _grads(model.generator)))

        classifier.forward_features, classifier.forward_head = recorded_features, recorded_head
        model.manual_backward = manual_backward

    def _is_interpolated(self, row: torch.Tensor) -> bool:
        out = self.outputs[-1]
        return any(t is not None and any(torch.equal(row, r) for r in t) for t in (out.interp_c, out.interp_d))

    def _judged(self, module, args, kwargs, output: list[torch.Tensor]) -> list[torch.Tensor]:
        image_batch, labels = [*args, *(kwargs[k] for k in ("images", "labels") if k in kwargs)][:2]
        offset = torch.tensor([INTERPOLATED_OFFSET if self._is_interpolated(row) else 0.0 for row in image_batch])
        output = [s + offset.view(-1, *[1] * (s.ndim - 1)).to(s) for s in output]
        # labels [N, K]: each image judged under K labels, recorded as K rows
        columns = labels.T if labels.ndim == 2 else labels[None]
        for k, column in enumerate(columns):
            logits = [(s[:, k] if s.ndim == 2 else s).detach() for s in output]
            self._pending.judged.append((image_batch.detach().clone(), column.clone(), logits))
        return output

    def on_train_start(self, trainer, pl_module) -> None:
        owners = {name[0].upper(): getattr(pl_module, name) for name in ("generator", "discriminator", "classifier")}
        owned = {name: {id(p) for p in net.parameters()} for name, net in owners.items()}
        for optimizer in trainer.optimizers:
            params = {id(p) for group in optimizer.param_groups for p in group["params"]}
            (name,) = [n for n, ids in owned.items() if params & ids]
            optimizer.register_step_pre_hook(lambda opt, args, kwargs, name=name: self._step(name))

    def _step(self, name: str) -> None:
        assert name not in self.phases, f"optimiser {name} stepped twice in one batch"
        self._pending.generator_grads = _grads(self.model.generator)
        self.phases[name], self._pending = self._pending, Phase()


@dataclass
class Step:
    """One recorded training batch."""

    model: Any
    out: Any  # the step's GeneratorOutput
    known: dict[str, torch.Tensor]  # the images a row can come from, by name
    phases: dict[str, Phase]
    backbone: list[tuple[torch.Tensor, torch.Tensor]]  # (images, features) of each pass of C's backbone
    metrics: dict[str, float]  # what the step logged


def run_step(**overrides: Any) -> Step:
    """One training batch of a tiny model with ``WEIGHTS`` (perceptual loss on), ``overrides`` on top."""
    torch.manual_seed(0)
    weights = {**WEIGHTS, **overrides.pop("loss_weights", {})}
    model = tiny_model(generator_identity_init=False, loss_weights=weights, **overrides)
    with torch.no_grad():  # logits of order 1, so that D's verdicts differ between images
        for module in model.discriminator.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(30)
    batch = {"image_a": images(2, 32), "image_b": images(2, 32), "label_a": Y_A, "label_b": Y_B}
    batch["step"] = torch.tensor(0)
    recorder = StepRecorder(model)
    trainer = tiny_trainer(max_epochs=1, callbacks=[recorder])
    trainer.fit(model, train_dataloaders=DataLoader([batch], batch_size=None, num_workers=0))
    assert sorted(recorder.phases) == ["C", "D", "G"] and len(recorder.outputs) == 1
    out = recorder.outputs[0]
    known = {"I_a": batch["image_a"], "I_b": batch["image_b"], "I_c": out.image_c, "I_d": out.image_d}
    if out.interp_c is not None:
        known.update(interp_c=out.interp_c, interp_d=out.interp_d)
    known = {name: t.detach() for name, t in known.items()}
    rows = torch.cat(list(known.values())).flatten(1)
    assert len(torch.unique(rows, dim=0)) == len(rows), "two known images coincide: rows cannot be told apart"
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return Step(model, out, known, recorder.phases, recorder.backbone, metrics)


@pytest.fixture(scope="module")
def runs() -> Callable[..., Step]:
    """``run_step``, each set of options run once per module."""
    done: dict[str, Step] = {}

    def run(**overrides: Any) -> Step:
        key = repr(sorted(overrides.items()))
        if key not in done:
            done[key] = run_step(**overrides)
        return done[key]

    return run


@pytest.fixture(scope="module")
def step(runs) -> Step:
    return runs()


# the cheap variants: without the perceptual loss (no VGG19 to build)
NO_SYNTHESIZED = dict(synthesized_images=False, loss_weights={"perceptual": 0.0})
NO_REPRESENTATION = dict(expression_representation=False, loss_weights={"perceptual": 0.0})


def source(step: Step, row: torch.Tensor) -> tuple[str, int]:
    """Which known image ``row`` is: ``(name, index in its batch)``."""
    found = [(name, i) for name, t in step.known.items() for i in range(len(t)) if torch.equal(t[i], row)]
    assert len(found) == 1, f"a row matches {found or 'no known image'}"
    return found[0]


def read_by_backbone(step: Step, features: torch.Tensor) -> tuple[str, int]:
    """Which known image C's backbone read to give the feature row ``features``."""
    found = [images[j] for images, out in step.backbone for j in range(len(out)) if torch.equal(out[j], features)]
    assert len(found) == 1, f"a feature row matches {len(found)} backbone outputs"
    return source(step, found[0])


def judged(step: Step, phase: str) -> list[Judged]:
    """Every image a discriminator judged in ``phase``."""
    rows = []
    for image_batch, labels, logits in step.phases[phase].judged:
        for j, row in enumerate(image_batch):
            rows.append((*source(step, row), int(labels[j]), [s[j] for s in logits]))
    return rows


def expected(names: list[str]) -> list[tuple[str, int, int]]:
    """``(source, index, label given)`` of both pairs of each named image, sorted."""
    return sorted((name, i, int(GIVEN_LABEL[name][i])) for name in names for i in range(2))


def bce(rows: list[Judged], targets: list[float]) -> float:
    """Multi-scale BCE over ``rows``, one target each: averaged over the rows per scale, scales weighted."""
    target = torch.tensor(targets)
    return sum(
        w * float(F.binary_cross_entropy_with_logits(torch.stack([r[3][k] for r in rows]), target))
        for k, w in enumerate(SCALE_WEIGHTS)
    )


def test_discriminators_judge_real_faces_real_and_generated_faces_fake_under_the_right_labels(step) -> None:
    """Catches: D conditioned on y_a for I_c (y_b for I_d) or on the wrong labels for the
    interpolated images, real/fake targets swapped, images missing from D's phase."""
    rows = judged(step, "D")
    assert sorted(r[:3] for r in rows) == expected(["I_a", "I_b", "I_c", "I_d", "interp_c", "interp_d"])
    swapped = [r for r in rows if r[0] in ("I_a", "I_b", "I_c", "I_d")]
    targets = [1.0 if r[0] in ("I_a", "I_b") else 0.0 for r in swapped]
    assert step.metrics["d/adversarial"] == pytest.approx(bce(swapped, targets), rel=1e-5)
    assert step.metrics["d/adversarial"] != pytest.approx(bce(swapped, [1 - t for t in targets]), rel=1e-3)
    interpolated = [r for r in rows if r[0].startswith("interp")]
    assert step.metrics["d/interpolation"] == pytest.approx(bce(interpolated, [0.0] * 4), rel=1e-5)


def test_generator_wants_its_images_judged_real_under_the_labels_it_gave_them(step) -> None:
    """Catches: G's adversarial target "fake" (G learns to look fake), I_c/I_d or the
    interpolated images judged with the wrong labels in G's terms, real faces in G's terms."""
    rows = judged(step, "G")
    assert sorted(r[:3] for r in rows) == expected(["I_c", "I_d", "interp_c", "interp_d"])
    swapped = [r for r in rows if r[0] in ("I_c", "I_d")]
    assert step.metrics["g/adversarial"] == pytest.approx(bce(swapped, [1.0] * 4), rel=1e-5)
    assert step.metrics["g/adversarial"] != pytest.approx(bce(swapped, [0.0] * 4), rel=1e-3)
    interpolated = [r for r in rows if r[0].startswith("interp")]
    assert step.metrics["g/interpolation"] == pytest.approx(bce(interpolated, [1.0] * 4), rel=1e-5)


@pytest.mark.parametrize("synthesized", [True, False])
def test_classifier_learns_real_faces_and_generated_faces_under_the_labels_they_were_given(
    synthesized: bool, step, runs
) -> None:
    """Catches: C trained on I_c/I_d with y_a/y_b (their source faces' labels) instead of the
    y_b/y_a they were given, generated faces used with ``synthesized_images`` off, G's L_C on
    the wrong images or labels."""
    run = step if synthesized else runs(**NO_SYNTHESIZED)
    faces = ["I_a", "I_b", "I_c", "I_d"] if synthesized else ["I_a", "I_b"]
    for phase, metric in (("C", "c/classification"), ("G", "g/classification")):
        calls = run.phases[phase].classified
        rows = [read_by_backbone(run, row) for call in calls for row in call.features.detach()]
        logits = torch.cat([call.logits.detach() for call in calls])
        assert sorted((name, i, int(GIVEN_LABEL[name][i])) for name, i in rows) == expected(faces), phase
        given = torch.stack([GIVEN_LABEL[name][i] for name, i in rows])
        assert run.metrics[metric] == pytest.approx(float(F.cross_entropy(logits, given)), rel=1e-5), phase
        if synthesized:  # the check tells the given labels from the source faces' labels
            source_labels = torch.stack([SOURCE_LABEL[name][i] for name, i in rows])
            assert run.metrics[metric] != pytest.approx(float(F.cross_entropy(logits, source_labels)), rel=1e-4)


def test_each_lambda_multiplies_its_own_term_of_eq12(step) -> None:
    """Catches: a lambda on another term (e.g. pixel-sum weighted by lambda1), a term left out
    of the total, a term computed on the wrong images."""
    m = step.metrics
    values = {term: m[term] for term in G_TERMS}
    assert all(v > 0 for v in values.values())
    assert m["g/total"] == pytest.approx(sum(WEIGHTS[t[2:]] * v for t, v in values.items()), rel=1e-5)
    for t1, t2 in itertools.combinations(G_TERMS, 2):  # swapping any two lambdas changes the total
        w1, w2 = WEIGHTS[t1[2:]], WEIGHTS[t2[2:]]
        assert abs((w1 - w2) * (values[t2] - values[t1])) > 1e-4 * m["g/total"], (t1, t2)
    d_total = WEIGHTS["adversarial"] * m["d/adversarial"] + WEIGHTS["interpolation"] * m["d/interpolation"]
    assert m["d/total"] == pytest.approx(d_total, rel=1e-5)

    a, b, c, d = (step.known[k] for k in ("I_a", "I_b", "I_c", "I_d"))
    recon_a, recon_b = step.out.recon_a.detach(), step.out.recon_b.detach()
    assert m["g/reconstruction"] == pytest.approx(
        float(((recon_a - a) ** 2).mean() + ((recon_b - b) ** 2).mean()), rel=1e-5
    )
    assert m["g/pixel_sum"] == pytest.approx(float((a + b - c - d).abs().mean()), rel=1e-5)
    assert m["g/change"] == pytest.approx(float((c - a).abs().mean() + (d - b).abs().mean()), rel=1e-5)
    cd = torch.cat([c, d])
    tv = (cd[..., 1:, :] - cd[..., :-1, :]).abs().mean() + (cd[..., 1:] - cd[..., :-1]).abs().mean()
    assert m["g/total_variation"] == pytest.approx(float(tv), rel=1e-5)
    with torch.no_grad():  # the perceptual network is frozen: the same after the step
        perceptual = float(step.model.perceptual(a, b, c, d))  # P(I_a, I_d) + P(I_b, I_c)
        assert perceptual != pytest.approx(float(step.model.perceptual(a, b, d, c)), rel=1e-4)
    assert m["g/perceptual"] == pytest.approx(perceptual, rel=1e-5)


def graph(loss: torch.Tensor) -> set[Any]:
    """Every node of ``loss``'s autograd graph (the nodes outlive the backward pass)."""
    seen, stack = set(), [loss.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return seen


def reached(loss: torch.Tensor) -> set[int]:
    """``id`` of every parameter ``loss``'s graph leads to (its AccumulateGrad nodes)."""
    return {id(fn.variable) for fn in graph(loss) if hasattr(fn, "variable")}


def test_only_the_generators_own_loss_reaches_the_generator(step) -> None:
    """Catches: D's or C's backward pass adding to G's gradients, generated images not detached
    in D's phase."""
    params = {name: {id(p) for p in getattr(step.model, name).parameters()} for name in ("generator", "discriminator")}
    for phase in ("D", "G", "C"):  # one backward pass each; only G's changes G's gradients
        assert step.phases[phase].generator_grad_changed == [phase == "G"], phase
    assert all(g is None or not g.any() for g in step.phases["D"].generator_grads.values())  # none before G's phase
    assert _same(step.phases["G"].generator_grads, step.phases["C"].generator_grads)  # none added after it
    (d_loss,) = step.phases["D"].backward
    assert reached(d_loss) & params["discriminator"] and not reached(d_loss) & params["generator"]


@pytest.mark.parametrize("path", ["pixels", "representation"])
def test_the_generators_l_c_reaches_it_through_the_generated_pixels_and_the_representation(path: str, runs) -> None:
    """G's gradient with L_C minus the one without it (same seed, same everything else) is
    L_C's own. Through the pixels of I_c, I_d alone (No_ExpR) it reaches G's decoder; through
    the real faces' representation R alone (No_SynFI) only G's encoder. Catches: L_C cut off
    from G's pixels or from R, L_C computed although its weight is 0 (TwoStage)."""
    options = NO_REPRESENTATION if path == "pixels" else NO_SYNTHESIZED
    with_l_c = runs(**options)
    without = runs(**{**options, "loss_weights": {**options["loss_weights"], "classification": 0.0}})
    assert not without.phases["G"].classified and "g/classification" not in without.metrics  # skipped, not x 0
    assert with_l_c.phases["G"].classified and with_l_c.metrics["g/classification"] > 0
    first, second = with_l_c.phases["G"].generator_grads, without.phases["G"].generator_grads
    changed = {k for k in first if not torch.allclose(first[k], second[k], rtol=1e-4, atol=1e-8)}
    decoder = {k for k in first if k.startswith("decoder.")}
    assert changed - decoder  # the encoder, in both cases
    assert bool(changed & decoder) == (path == "pixels")


def test_the_mismatch_term_judges_real_faces_fake_under_the_other_faces_label(step, runs) -> None:
    """``loss_weights.mismatch``: D also judges ``(I_a, y_b)`` and ``(I_b, y_a)`` and calls
    them fake. Catches: the real faces given their own labels (D would learn to call real
    faces fake), the target "real", the term missing from D's total or weighted by another
    lambda, mismatched faces reaching G's loss, the term computed when its weight is 0."""
    assert "d/mismatch" not in step.metrics  # off by default: the paper's D
    run = runs(loss_weights={"mismatch": 3.7, "perceptual": 0.0})
    rows = judged(run, "D")
    real = [r for r in rows if r[0] in ("I_a", "I_b")]
    own = [r for r in real if r[2] == int(GIVEN_LABEL[r[0]][r[1]])]
    other = [r for r in real if r[2] != int(GIVEN_LABEL[r[0]][r[1]])]
    assert sorted(r[:3] for r in own) == expected(["I_a", "I_b"])
    wanted = [("I_a", i, int(Y_B[i])) for i in range(2)] + [("I_b", i, int(Y_A[i])) for i in range(2)]
    assert sorted(r[:3] for r in other) == sorted(wanted)
    m = run.metrics
    assert m["d/mismatch"] == pytest.approx(bce(other, [0.0] * 4), rel=1e-5)
    assert m["d/mismatch"] != pytest.approx(bce(other, [1.0] * 4), rel=1e-3)
    d_total = WEIGHTS["adversarial"] * m["d/adversarial"] + WEIGHTS["interpolation"] * m["d/interpolation"]
    assert m["d/total"] == pytest.approx(d_total + 3.7 * m["d/mismatch"], rel=1e-5)
    assert all(r[0] not in ("I_a", "I_b") for r in judged(run, "G"))


def test_each_phase_loss_runs_on_plain_networks_without_a_trainer() -> None:
    """``exprgan.objective.Objective`` on plain ``nn.Module``s: each phase's loss is the weighted sum
    of its terms, named by their ``LossWeights`` fields; D's and C's losses reach their own network
    only, G's reaches G (and D, which judges its images: the step updates G alone; C's gradient
    comes to G by hand). Catches: a term named otherwise than its weight, a total that is not the
    weighted sum, D's or C's loss reaching G."""
    from dataclasses import fields

    from exprgan.losses import LossWeights
    from exprgan.models import ExpressionClassifier, Generator, MultiScaleDiscriminator
    from exprgan.objective import Objective, Pairs

    torch.manual_seed(0)
    generator = Generator(7, width=8, identity_init=False)
    discriminator = MultiScaleDiscriminator(7, 32, width=8, conditioning="projection")
    classifier = ExpressionClassifier(7, backbone="resnet18", representation_channels=64, hidden_features=16)
    weights = LossWeights(**{**WEIGHTS, "perceptual": 0.0}, r1=3.0, mismatch=0.7)
    objective = Objective(generator, discriminator, classifier, None, weights, r1_every=2)
    pairs = Pairs(images(2, 32), images(2, 32), Y_A, Y_B)
    out = objective.generate(pairs)
    networks = {"d": discriminator, "g": generator, "c": classifier}
    features = objective.backbone_features(pairs, out)
    losses = {
        "d": objective.d_loss(pairs, out, step=0),
        "g": objective.g_loss(pairs, out, features),
        "c": objective.c_loss(pairs, out, features)[:2],
    }
    names = {f.name for f in fields(LossWeights)}
    expected_terms = {
        "d": {"adversarial", "interpolation", "mismatch", "r1"},
        "g": {
            "adversarial",
            "interpolation",
            "reconstruction",
            "pixel_sum",
            "change",
            "total_variation",
            "classification",
        },
        "c": {"classification"},
    }
    for phase, (loss, terms) in losses.items():
        assert set(terms) == expected_terms[phase] and set(terms) <= names, phase
        scale = {"r1": 2 / 2} if phase == "d" else {}  # r1 / 2 * E||grad D||^2, every 2nd batch at twice the weight
        weighted = sum(getattr(weights, k) * scale.get(k, 1.0) * float(v.detach()) for k, v in terms.items())
        assert float(loss) == pytest.approx(float(terms["classification"]) if phase == "c" else weighted, rel=1e-5)
        touched = {name for name, net in networks.items() if {id(p) for p in net.parameters()} & reached(loss)}
        assert touched == ({"g", "d"} if phase == "g" else {phase}), phase
    assert "r1" not in objective.d_loss(pairs, out, step=1)[1]  # lazy: not due on odd batches


@pytest.mark.parametrize("share", [1.0, 0.25, 0.0])
def test_a_generated_face_counts_loss_weights_synthesized_of_a_real_one_in_cs_loss(share: float) -> None:
    """C's loss is ``(sum over real faces + share * sum over generated faces) / (their count
    weighted alike)`` of the per-face cross-entropy under the given labels. Catches: the share on
    the real faces instead of the generated ones, an unweighted mean when the share is not 1,
    generated faces under their source faces' labels."""
    from exprgan.losses import LossWeights
    from exprgan.models import ExpressionClassifier, Generator, MultiScaleDiscriminator
    from exprgan.objective import Objective, Pairs

    torch.manual_seed(0)
    generator = Generator(7, width=8, identity_init=False)
    discriminator = MultiScaleDiscriminator(7, 32, width=8, conditioning="projection")
    classifier = ExpressionClassifier(7, backbone="resnet18", representation_channels=64, hidden_features=16)
    weights = LossWeights(perceptual=0.0, synthesized=share)
    objective = Objective(generator, discriminator, classifier, None, weights)
    pairs = Pairs(images(2, 32), images(2, 32), Y_A, Y_B)
    out = objective.generate(pairs)
    loss, _, logits = objective.c_loss(pairs, out, objective.backbone_features(pairs, out))
    logits = logits.detach()

    def weighted(labels: torch.Tensor, w: torch.Tensor) -> float:
        return float((w * F.cross_entropy(logits, labels, reduction="none")).sum() / w.sum())

    real, generated = torch.ones(4), torch.full((4,), share)
    given = torch.cat([pairs.real_labels, pairs.given_labels])
    sources = torch.cat([pairs.real_labels, pairs.real_labels])
    assert float(loss) == pytest.approx(weighted(given, torch.cat([real, generated])), rel=1e-6)
    if share > 0:  # at 0 the generated faces' labels do not count
        assert float(loss) != pytest.approx(weighted(sources, torch.cat([real, generated])), rel=1e-4)
    if share != 1:
        assert float(loss) != pytest.approx(float(F.cross_entropy(logits, given)), rel=1e-4)
        assert float(loss) != pytest.approx(weighted(given, torch.cat([generated, real])), rel=1e-4)

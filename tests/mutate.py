"""Mutation check of the training objective.

Each mutation below is a one-line bug in the training objective (``exprgan/objective.py``)
of a kind that once left every core test green. For each, this script copies the
repository's ``exprgan/``, ``tests/`` and ``pyproject.toml`` to a temporary folder (the
working tree is never touched), applies the mutation there (failing loudly unless ``old``
occurs exactly once), runs the objective's tests on the copy (``pytest -x``) and prints a
table: mutation -> killed / survived, with the first test that failed (``--keep-going``: all
of them). The unmutated copy runs first and must pass. Exit code: 0 when every mutation is
killed, 1 when one survives, 2 on a setup problem (baseline failing, snippet not found, a
mutation that breaks collection instead of a test).

    OMP_NUM_THREADS=1 python tests/mutate.py             # all mutations
    python tests/mutate.py --only a,e --root /some/tree   # a subset, another tree
    python tests/mutate.py --keep-going --tests tests/test_objective.py  # every killer
    python tests/mutate.py --extra                        # and more bugs of the same kind

When the objective is refactored, update ``old``/``new`` below (keep them minimal and
unique in their file). Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

OBJECTIVE = "exprgan/objective.py"


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (exactly one occurrence) by ``new`` in ``path`` (relative to the root)."""

    name: str
    description: str
    path: str
    old: str
    new: str


GIVEN = "(images.detach() if detach else images, pairs.given_labels)"  # the labels D is told of generated images
MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "a",
        "G's adversarial target 'fake' (G learns to look fake)",
        OBJECTIVE,
        'multiscale_adversarial_loss(logits["swapped"], real=True)',
        'multiscale_adversarial_loss(logits["swapped"], real=False)',
    ),
    Mutation(
        "b",
        "D told y_a for I_c and y_b for I_d",
        OBJECTIVE,
        GIVEN,
        "(images.detach() if detach else images, pairs.real_labels if detach else pairs.given_labels)",
    ),
    Mutation(
        "c",
        "C trained on I_c, I_d with y_a, y_b",
        OBJECTIVE,
        "features.features, [real_code, code], [pairs.real_labels, pairs.given_labels]",
        "features.features, [real_code, code], [pairs.real_labels, pairs.real_labels]",
    ),
    Mutation(
        "d",
        "interpolated images judged with the wrong labels",
        OBJECTIVE,
        GIVEN,
        '(images.detach() if detach else images, pairs.real_labels if name == "interpolated" else pairs.given_labels)',
    ),
    Mutation(
        "e",
        "pixel-sum term weighted by lambda1 instead of lambda3",
        OBJECTIVE,
        'terms["pixel_sum"] = pixel_sum_loss(a, b, c, d)',
        'terms["pixel_sum"] = pixel_sum_loss(a, b, c, d) * w.reconstruction / w.pixel_sum',
    ),
)
# more bugs of the same kind (run with --extra)
EXTRA_MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "f",
        "G's L_C cut off from the pixels of I_c, I_d",
        OBJECTIVE,
        "(generated * features.pixel_gradient(grad_features)).sum()",
        "(generated.detach() * features.pixel_gradient(grad_features)).sum()",
    ),
    Mutation(
        "g",
        "L_inter weighted by the adversarial weight",
        OBJECTIVE,
        'terms["interpolation"] = multiscale_adversarial_loss(logits["interpolated"], real=True)',
        'terms["interpolation"] = multiscale_adversarial_loss(logits["interpolated"], real=True) * w.adversarial'
        " / w.interpolation",
    ),
    Mutation(
        "h",
        "L_per compares I_a with I_c instead of I_d",
        OBJECTIVE,
        'terms["perceptual"] = self.perceptual(a, b, c, d)',
        'terms["perceptual"] = self.perceptual(a, b, d, c)',
    ),
    Mutation(
        "i",
        "D told y_b for I_a and y_a for I_b",
        OBJECTIVE,
        "columns = [pairs.real_labels, pairs.given_labels] if self.do_mismatch else [pairs.real_labels]",
        "columns = [pairs.given_labels, pairs.given_labels] if self.do_mismatch else [pairs.given_labels]",
    ),
    Mutation(
        "j",
        "D's L_inter target 'real'",
        OBJECTIVE,
        'multiscale_adversarial_loss(logits["interpolated"], real=False)',
        'multiscale_adversarial_loss(logits["interpolated"], real=True)',
    ),
    Mutation(
        "k",
        "G's L_C cut off from the real faces' representation",
        OBJECTIVE,
        "codes = torch.cat([real_codes, self.generator.encode(generated)])",
        "codes = torch.cat([real_codes.detach(), self.generator.encode(generated)])",
    ),
    Mutation(
        "m",
        "G's L_C cut off from the real faces' representation, C reading no generated faces",
        OBJECTIVE,
        "real_codes = torch.cat([out.code_a, out.code_b])",
        "real_codes = torch.cat([out.code_a, out.code_b]).detach()",
    ),
    Mutation(
        "l",
        "generated images not detached in D's phase",
        OBJECTIVE,
        "judge(self.discriminator, self.generated(pairs, out, detach=True))",
        "judge(self.discriminator, self.generated(pairs, out, detach=False))",
    ),
)

TESTS: tuple[str, ...] = (
    "tests/test_objective.py",
    "tests/test_joint.py",
    "tests/test_losses.py",
    "tests/test_training_step.py",
)
COPIED: tuple[str, ...] = ("exprgan", "tests", "pyproject.toml")
ROOT = Path(__file__).resolve().parent.parent


class SetupError(RuntimeError):
    """The check itself cannot run (not a surviving mutation)."""


def copy_tree(root: Path, destination: Path) -> None:
    """The parts of the repository the tests need, without caches."""
    for name in COPIED:
        source = root / name
        if not source.exists():
            raise SetupError(f"{source} not found: is --root the repository?")
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)


def mutated(mutation: Mutation, root: Path) -> str:
    """The text of ``mutation.path`` under ``root`` with ``mutation`` applied; refuses unless
    ``old`` occurs exactly once."""
    path = root / mutation.path
    if not path.is_file():
        raise SetupError(f"mutation {mutation.name}: {path} not found")
    text = path.read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise SetupError(
            f"mutation {mutation.name}: {mutation.old!r} occurs {count} times in {mutation.path} "
            "(expected exactly once): update the snippet in tests/mutate.py"
        )
    return text.replace(mutation.old, mutation.new)


def run_tests(root: Path, tests: tuple[str, ...], keep_going: bool = False) -> tuple[int, str]:
    """``pytest -x -q`` on the copy at ``root``: (exit code, the failing tests or pytest's last line).

    ``keep_going``: without ``-x``, every failing test is listed.
    """
    env = {**os.environ, "PYTHONPATH": str(root)}
    stop = [] if keep_going else ["-x"]
    command = [sys.executable, "-m", "pytest", *stop, "-q", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    failed = [line.split(" - ")[0].split(" ", 1)[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return done.returncode, ", ".join(failed) if failed else (lines[-1] if lines else done.stderr.strip()[-200:])


def check_imports_copy(root: Path) -> None:
    """The copy's ``exprgan`` must be the one imported there (not the installed working tree)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", "import exprgan; print(exprgan.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    imported = Path(done.stdout.strip() or "?").resolve()
    if not imported.is_relative_to(root.resolve()):
        raise SetupError(f"the copy at {root} imports exprgan from {imported}: {done.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository to copy (default: this one)")
    parser.add_argument("--only", default="", help="comma-separated mutation names (default: all)")
    parser.add_argument("--tests", nargs="+", default=list(TESTS), help="test files to run")
    parser.add_argument("--extra", action="store_true", help="also the extra mutations (f, g, ...)")
    parser.add_argument("--keep-going", action="store_true", help="no -x: list every test a mutation fails")
    args = parser.parse_args(argv)
    pool = MUTATIONS + (EXTRA_MUTATIONS if args.extra else ())
    wanted = {n for n in args.only.split(",") if n}
    unknown = wanted - {m.name for m in pool}
    if unknown:
        parser.error(f"unknown mutations {sorted(unknown)}; known: {[m.name for m in pool]} (extras need --extra)")
    mutations = [m for m in pool if not wanted or m.name in wanted]
    tests = tuple(args.tests)

    rows: list[tuple[str, str, str]] = []
    problems = survivors = 0
    with tempfile.TemporaryDirectory(prefix="exprgan-mutate-") as tmp:
        source = Path(tmp) / "source"  # one snapshot: others may edit the tree meanwhile
        source.mkdir()
        copy_tree(args.root, source)
        for mutation in mutations:  # every snippet is checked before anything runs
            mutated(mutation, source)
        baseline = Path(tmp) / "baseline"
        baseline.mkdir()
        copy_tree(source, baseline)
        check_imports_copy(baseline)
        code, failing = run_tests(baseline, tests)
        if code != 0:
            print(f"baseline: the unmutated tests fail (exit {code}: {failing}); nothing to compare", file=sys.stderr)
            return 2
        print(f"baseline (no mutation): {' '.join(tests)} pass", flush=True)
        for mutation in mutations:
            tree = Path(tmp) / f"mutant_{mutation.name}"
            tree.mkdir()
            copy_tree(source, tree)
            (tree / mutation.path).write_text(mutated(mutation, source))
            code, failing = run_tests(tree, tests, args.keep_going)
            if code == 1:
                verdict = "killed"
            elif code == 0:
                verdict, failing = "SURVIVED", ""
                survivors += 1
            else:  # collection error, interrupted, ...: the mutation broke something else
                verdict = f"error (exit {code})"
                problems += 1
            rows.append((f"({mutation.name}) {mutation.description}", verdict, failing))
            print(f"  ({mutation.name}) {verdict}", flush=True)
            shutil.rmtree(tree)

    table = [("mutation", "result", "failing test" if not args.keep_going else "failing tests"), *rows]
    widths = [max(len(row[k]) for row in table) for k in range(2)]
    print()
    for mutation_text, verdict, failing in table:
        print(f"{mutation_text:<{widths[0]}}  {verdict:<{widths[1]}}  {failing}")
    if problems:
        return 2
    return 1 if survivors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as error:
        print(f"mutate.py: {error}", file=sys.stderr)
        sys.exit(2)

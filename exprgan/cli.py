"""The ``exprgan`` command: ``fit | validate | test | predict`` through LightningCLI, and the tools.

A command's modules are imported when it runs, so ``exprgan --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from exprgan import __version__

# ``exprgan NAME ...`` for each tool: its "module:function" and what it does
TOOLS: dict[str, tuple[str, str]] = {
    "preprocess": ("exprgan.preprocessing.cli:preprocess_main", "align and crop a data set's faces into a cache"),
    "recognize": ("exprgan.tools.recognize:recognize_main", "recognise the expression of every face in photos (CSV)"),
    "transfer": ("exprgan.tools.transfer:transfer_main", "put a reference face's expression on an identity's face"),
    "fid": ("exprgan.tools.fid:fid_main", "per-expression FID of one or more checkpoints (Tables V-VI)"),
    "cv": ("exprgan.tools.cv:cv_main", "run the 5 subject-independent folds and report mean and std"),
    "synthesize": ("exprgan.tools.synthesize:synthesize_main", "write transfers of every training image to K others"),
    "report": ("exprgan.tools.report:report_main", "gather finished runs into the paper's tables"),
    "params": ("exprgan.summary:params_main", "the model's parameter breakdown"),
}

USAGE = """usage: exprgan COMMAND [options]

Training and evaluation (LightningCLI; `exprgan fit --help` for every option):
  fit | validate | test | predict --config FILE   e.g. exprgan fit --config experiments/demo.yaml

Tools (`exprgan COMMAND --help`):
""" + "".join(f"  {name:<12} {about}\n" for name, (_, about) in TOOLS.items())


def exprgan_cli(args: Sequence[str] | None, **kwargs: Any) -> Any:
    """The LightningCLI of ``exprgan fit | validate | test | predict``: ``JointExprGAN``, a
    ``PairDataModule`` subclass, the data's sizes and class names linked to the model's, the
    evaluation report (``--report.*``). ``kwargs`` go to ``LightningCLI`` (``run=False``: build
    the model, data and trainer of ``args``, e.g. ``["--config=experiments/demo.yaml"]``, only)."""
    from pytorch_lightning.cli import LightningCLI

    from exprgan.callbacks import EvaluationReport
    from exprgan.datamodules import PairDataModule
    from exprgan.joint import RETIRED_HPARAMS, JointExprGAN

    class ExprGANCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 (jsonargparse parser)
            for name in ("num_expressions", "image_size", "class_names"):
                parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
            # every run reports beyond accuracy: per class and pose, transfers, results files (--report.*)
            parser.add_lightning_class_args(EvaluationReport, "report")
            # --ckpt_path applies the checkpoint's hyperparameters: an older one may hold retired settings
            for name, kind in RETIRED_HPARAMS.items():
                parser.add_argument(f"--model.{name}", type=kind | None, default=None, help=argparse.SUPPRESS)

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            for name in RETIRED_HPARAMS:  # parsed, never passed on
                config.model.pop(name, None)
            # G, D and C are updated in separate backward passes: DDP must allow unused parameters
            if config.trainer.strategy == "ddp":
                config.trainer.strategy = "ddp_find_unused_parameters_true"

    options = dict(
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"logger": {"class_path": "exprgan.loggers.AutoWandbLogger"}},
    )
    return ExprGANCLI(JointExprGAN, PairDataModule, args=args, **{**options, **kwargs})


def lightning_main(args: Sequence[str] | None) -> None:
    """``exprgan fit | validate | test | predict --config FILE``."""
    from exprgan.cache import BadImageError, CacheError
    from exprgan.datamodules import DataRootError, EmptyClassError, LabelFileError
    from exprgan.models.pretrained import PretrainedWeightsError
    from exprgan.objective import NonFiniteLossError

    # JointExprGAN's checkpoints are taken after a batch's three updates, with the pair stream's
    # next position: a consistent state to resume from, which is what this warning asks about
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
    # a mid-epoch resume is exact: PairDataModule's own state_dict restores the pair stream's
    # position (tests/test_joint.py checks the losses), which Lightning does not see on the loader
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable")
    user_errors = (BadImageError, CacheError, DataRootError, EmptyClassError, LabelFileError, PretrainedWeightsError)
    try:
        exprgan_cli(args)
    except (NonFiniteLossError, *user_errors) as error:
        # bad data, missing weights, a diverged run: the message says what to do, no traceback
        print(f"exprgan: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from error


def cli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``exprgan`` console script (``args`` default to ``sys.argv[1:]``)."""
    from exprgan.runtime import keep_freed_memory

    keep_freed_memory()  # large tensors reuse freed memory instead of faulting in fresh pages
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in TOOLS:
        module, function = TOOLS[argv[0]][0].split(":")
        getattr(importlib.import_module(module), function)(argv[1:])
    elif not argv or argv[0] in {"-h", "--help"}:
        print(USAGE, end="")
    elif argv[0] in {"--version", "-V"}:
        print(f"exprgan {__version__}")
    else:
        lightning_main(None if args is None else argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    cli_main()

"""The ``exprgan`` command: ``fit | validate | test | predict`` through LightningCLI, and tools."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence

from exprgan import __version__


def params_main(args: Sequence[str]) -> None:
    """``exprgan params``: print the parameter breakdown of the model."""
    from exprgan.summary import format_breakdown, parameter_breakdown

    parser = argparse.ArgumentParser(prog="exprgan params", description=params_main.__doc__)
    parser.add_argument("--num-expressions", type=int, default=7, help="n, the number of expressions (7)")
    parser.add_argument("--image-size", type=int, default=256, help="image side in pixels (256)")
    parser.add_argument("--backbone", default="vgg19", help="classifier backbone (vgg19)")
    options = parser.parse_args(args)
    print(format_breakdown(parameter_breakdown(options.num_expressions, options.image_size, options.backbone)))


# ``exprgan NAME ...`` for each tool: "module:function", imported only when the tool runs
TOOLS: dict[str, str] = {
    "params": "exprgan.cli:params_main",
    "preprocess": "exprgan.preprocessing.cli:preprocess_main",
    "recognize": "exprgan.tools.recognize:recognize_main",
    "transfer": "exprgan.tools.transfer:transfer_main",
    "fid": "exprgan.tools.fid:fid_main",
    "cv": "exprgan.tools.cv:cv_main",
    "synthesize": "exprgan.tools.synthesize:synthesize_main",
    "report": "exprgan.tools.report:report_main",
}

USAGE = """usage: exprgan COMMAND [options]

Training and evaluation (LightningCLI; `exprgan fit --help` for every option):
  fit | validate | test | predict --config FILE   e.g. exprgan fit --config experiments/demo.yaml

Tools (`exprgan COMMAND --help`):
  preprocess   detect, align and crop a data set's faces into a cache
  recognize    recognise the expression of every face in photos (CSV)
  transfer     put a reference face's expression on an identity's face
  fid          per-expression FID of one or more checkpoints (Tables V-VI)
  cv           run the 5 subject-independent folds and report mean and std
  synthesize   write transfers of every training image to K other expressions
  report       gather finished runs into the paper's tables
  params       the model's parameter breakdown
"""


def _tool(name: str) -> Callable[[Sequence[str]], None]:
    module, function = TOOLS[name].split(":")
    return getattr(importlib.import_module(module), function)


def lightning_main(args: Sequence[str] | None) -> None:
    """``exprgan fit | validate | test | predict --config FILE``."""
    from pytorch_lightning.cli import LightningCLI

    from exprgan.datamodules import PairDataModule
    from exprgan.joint import JointExprGAN, NonFiniteLossError

    # JointExprGAN's checkpoints are taken after a batch's three updates, with the pair stream's
    # next position: a consistent state to resume from, which is what this warning asks about
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
    # a mid-epoch resume is exact: PairDataModule's own state_dict restores the pair stream's
    # position (tests/test_joint.py checks the losses), which Lightning does not see on the loader
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable")

    class ExprGANCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 (jsonargparse parser)
            for name in ("num_expressions", "image_size", "class_names"):
                parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            # G, D and C are updated in separate backward passes: DDP must allow unused parameters
            if config.trainer.strategy == "ddp":
                config.trainer.strategy = "ddp_find_unused_parameters_true"

    try:
        ExprGANCLI(
            JointExprGAN,
            PairDataModule,
            subclass_mode_data=True,
            args=args,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={
                "logger": {"class_path": "exprgan.loggers.AutoWandbLogger"},
            },
        )
    except (NonFiniteLossError, *_user_errors()) as error:
        # bad data, missing weights, a diverged run: the message says what to do, no traceback
        print(f"exprgan: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(1) from error


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that report a problem with the user's data or files, not a bug."""
    from exprgan.datamodules import BadImageError, CacheError, DataRootError, EmptyClassError, LabelFileError
    from exprgan.models.pretrained import PretrainedWeightsError

    return (BadImageError, CacheError, DataRootError, EmptyClassError, LabelFileError, PretrainedWeightsError)


def cli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``exprgan`` console script (``args`` default to ``sys.argv[1:]``)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in TOOLS:
        _tool(argv[0])(argv[1:])
        return
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE, end="")
        return
    if argv and argv[0] in {"--version", "-V"}:
        print(f"exprgan {__version__}")
        return
    lightning_main(None if args is None else argv)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    cli_main()

"""The ``exprgan`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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


COMMANDS = {"params": params_main}


def cli_main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``exprgan`` console script."""
    args = list(sys.argv[1:] if args is None else args)
    if args and args[0] in COMMANDS:
        COMMANDS[args[0]](args[1:])
        return
    parser = argparse.ArgumentParser(prog="exprgan", description="Joint expression synthesis and recognition.")
    parser.add_argument("--version", action="version", version=f"exprgan {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), help="what to run")
    parser.parse_args(args)


if __name__ == "__main__":
    cli_main()

"""The ``exprgan`` tools beyond ``fit | test``: each module holds one command (see ``exprgan.cli.TOOLS``)."""

from __future__ import annotations

import argparse
from typing import Any


def tool_parser(prog: str, description: str | None, **options: Any) -> argparse.ArgumentParser:
    """A tool's parser: ``description`` (its module docstring) printed as written, no abbreviated options.

    ``options`` (``usage``, ``epilog``) go to :class:`argparse.ArgumentParser`.
    """
    formatter = argparse.RawDescriptionHelpFormatter
    return argparse.ArgumentParser(
        prog, description=description, formatter_class=formatter, allow_abbrev=False, **options
    )

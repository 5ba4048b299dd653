"""The ``exprgan`` tools beyond ``fit | test``: each module holds one command (see ``exprgan.cli.TOOLS``)."""

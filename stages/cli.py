"""`gid`: one command line for every stage. Each subcommand lives in its own `cmd_*` module.

Heavy libraries (torch, Ray, MLflow) are imported inside the commands, so `gid --help` is fast.
Errors a user can fix (bad arguments, missing files) end as one line on stderr and exit code 2.
"""
from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="gid",
    help="Generative Image Dynamics: turn one still photo into a video of natural oscillating motion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# One module per subcommand, each with `register(app)`. Order is the order of `gid --help`.
COMMAND_MODULES = ["synth", "preview", "preprocess", "train", "train_renderer", "animate", "render", "motion", "loop", "interact", "serve", "eval", "convert_weights", "demo"]

for _name in COMMAND_MODULES:
    importlib.import_module(f"gid.stages.cmd_{_name}").register(app)


class UserError(Exception):
    """An error whose message tells the user what was wrong and what to do; printed without traceback."""


USER_ERRORS = (UserError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError)


def main() -> None:
    try:
        app()
    except USER_ERRORS as err:
        print(f"gid: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

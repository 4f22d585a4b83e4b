"""`gid`: one command line for every stage. Each subcommand lives in its own `cmd_*` module.

Heavy libraries (torch, Ray, MLflow) are imported inside the commands, so `gid --help` is fast.

Every failure a user can cause ends as one line on stderr, ``gid: error: <what> (<input>); <what to
do>``, with exit code 2: bad options (click's usage errors included), missing or unreadable files,
and user errors raised inside Ray tasks, actors or Ray Train workers (unwrapped from Ray's wrappers).
A failure of Ray itself ends as one line naming Ray's log file, exit code 1. ``gid --debug …`` (or
``GID_DEBUG=1``) prints the traceback instead.
"""
from __future__ import annotations

import importlib
import os
import sys

import typer

try:  # typer ≥ 0.24 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover (older typer uses click itself)
    from click import exceptions as click_errors

app = typer.Typer(
    name="gid",
    help="Generative Image Dynamics: turn one still photo into a video of natural oscillating motion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_debug = {"on": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Print the full traceback of an error "
                                                                 "(same as GID_DEBUG=1).")) -> None:
    """Generative Image Dynamics: turn one still photo into a video of natural oscillating motion."""
    _debug["on"] = _debug["on"] or debug


# One module per subcommand, each with `register(app)`. Order is the order of `gid --help`.
COMMAND_MODULES = ["synth", "preview", "preprocess", "train", "train_renderer", "animate", "render", "motion", "loop", "interact", "serve", "eval", "convert_weights", "demo"]

for _name in COMMAND_MODULES:
    importlib.import_module(f"gid.stages.cmd_{_name}").register(app)


class UserError(Exception):
    """An error whose message tells the user what was wrong and what to do; printed without traceback."""


USER_ERRORS = (UserError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError,
               FileExistsError)


def user_error(err: BaseException) -> BaseException | None:
    """The user error ``err`` is or wraps (Ray task/actor errors, Ray Train worker failures), else None."""
    seen = set()
    stack = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        cause = getattr(e, "cause", None)  # RayTaskError / RayActorError: the exception raised in the worker
        if isinstance(e, USER_ERRORS) and not _is_ray_wrapper(e):
            return e
        failures = getattr(e, "worker_failures", None)  # ray.train WorkerGroupError: {rank: exception}
        if isinstance(failures, dict):
            stack.extend(failures.values())
        stack.extend([cause, e.__cause__])
    return None


def _is_ray_wrapper(err: BaseException) -> bool:
    """Ray's RayTaskError subclasses the raised type; its message is a whole remote traceback."""
    return type(err).__module__.startswith("ray.") or type(err).__name__.startswith("RayTaskError")


def _ray_error(err: BaseException) -> bool:
    return any(type(e).__module__.startswith("ray.") for e in (err, err.__cause__, err.__context__) if e is not None)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def main(argv: list[str] | None = None) -> None:
    """Run `gid` (``argv`` defaults to ``sys.argv[1:]``); exits with 0, 1 (gid or Ray failed) or 2 (bad input)."""
    from gid.stages.ray_runtime import enable_log_file, ray_log_path, restore_stderr

    enable_log_file()
    _debug["on"] = os.environ.get("GID_DEBUG", "") not in ("", "0")
    code = 0
    try:
        result = app(args=argv, standalone_mode=False, prog_name="gid")
        code = result if isinstance(result, int) else 0
    except click_errors.NoArgsIsHelpError as err:
        restore_stderr()
        print(err.ctx.get_help() if err.ctx else str(err), file=sys.stderr)
        code = 2
    except click_errors.ClickException as err:  # bad options or arguments, before the command ran
        restore_stderr()
        command = err.ctx.command_path if getattr(err, "ctx", None) else "gid"
        print(f"gid: error: {_one_line(err.format_message()).rstrip('.')}; see `{command} --help`", file=sys.stderr)
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        restore_stderr()
        print("gid: interrupted", file=sys.stderr)
        code = 130
    except Exception as err:  # noqa: BLE001 (every failure ends as one line unless --debug)
        restore_stderr()
        if _debug["on"]:
            raise
        cause = user_error(err)
        log = ray_log_path()
        if cause is not None:
            print(f"gid: error: {_one_line(cause)}", file=sys.stderr)
            code = 2
        elif _ray_error(err):
            print(f"gid: error: Ray failed: {type(err).__name__}: {_one_line(err)}"
                  + (f"; see Ray's log {log}" if log else "") + "; rerun with --debug for the traceback",
                  file=sys.stderr)
            code = 1
        else:
            print(f"gid: error: {type(err).__name__}: {_one_line(err)}; this is a bug in gid: rerun with --debug "
                  "and report the traceback", file=sys.stderr)
            code = 1
    else:
        restore_stderr()
        log = ray_log_path()
        if log:
            print(f"Ray's log: {log}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()

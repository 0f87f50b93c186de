"""The ``segeval`` command line. It owns the terminal: results on stdout, progress, warnings and
errors on stderr. A user's mistake is one line ``segeval: error: ...`` and exit code 1 (bad data)
or 2 (bad usage), never a traceback. Heavy modules are imported only inside commands, so
``segeval --version`` and ``--help`` start fast.

Commands: ``score`` and ``merge`` (:mod:`segeval.cli.score`), ``leaderboard`` and ``codabench``
(:mod:`segeval.cli.leaderboard`), ``model`` (:mod:`segeval.cli.model`). Each is a thin shell
over the library: the options are the parameters of the function it calls.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import NoReturn

import click
from click.exceptions import NoArgsIsHelpError

from segeval import __version__
from segeval.cli.common import fail, missing_extra
from segeval.formats.registry import FORMATS

__all__ = ["FORMATS", "cli", "entry", "main"]


#: command name -> (module, attribute): imported when the command runs or the help lists it
_COMMANDS = {
    "score": ("segeval.cli.score", "score"),
    "merge": ("segeval.cli.score", "merge"),
    "leaderboard": ("segeval.cli.leaderboard", "leaderboard"),
    "codabench": ("segeval.cli.leaderboard", "codabench"),
    "model": ("segeval.cli.model", "model"),
}


class _Commands(click.Group):
    """A group whose commands are imported when first asked for (``segeval score`` does not
    import the leaderboard's or the model's options and their imports)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            import importlib

            module, attribute = _COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="segeval")
def cli() -> None:
    """Evaluate image segmentation: mIoU and friends, equal to the official tools, fast."""


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # stops the engines' workers on the way out (finally blocks)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: click's usage errors, too, are one line on stderr; Ctrl-C
    and SIGTERM stop the workers and exit 130 / 143 without a traceback; bare ``segeval``
    prints the help (exit 0); a missing optional dependency is one line naming the extra to
    install (exit 2)."""
    terminated = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal terminated
        terminated = True
        _terminate(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
    try:
        code = cli.main(args=argv, prog_name="segeval", standalone_mode=False)
    except NoArgsIsHelpError as e:  # bare ``segeval`` (or ``segeval model``): the help, exit 0
        click.echo(e.ctx.get_help() if e.ctx else e.format_message())
        sys.exit(0)
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        fail(e.format_message() + hint, e.exit_code)
    except click.ClickException as e:
        fail(e.format_message(), e.exit_code)
    except ModuleNotFoundError as e:
        extra = missing_extra(e)
        if extra is None:
            raise
        fail(extra, 2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("segeval: terminated" if terminated else "segeval: aborted", err=True)
        sys.exit(143 if terminated else 130)
    sys.exit(code if isinstance(code, int) else 0)


def entry() -> NoReturn:
    """The ``segeval`` console script and ``python -m segeval.cli``: :func:`main` in a process
    of its own, with what a short command spends around its work cut
    (``benchmarks/bench_cityscapes.py``: about 40 ms of a 0.25 s command on 2 cores):

    * numpy's OpenBLAS threads wait for work 2**4 cycles, not 2**28 (~0.1 s of a spinning
      thread per core after ``import numpy``) unless ``OPENBLAS_THREAD_TIMEOUT`` is set: a
      score never calls BLAS, and ``segeval model`` only wakes them a little later;
    * the cyclic garbage collector runs its passes 14 times less often (thresholds
      ``(10000, 50, 50)``, not ``(700, 10, 10)``): loading the modules makes many long-lived
      objects and no garbage, and every pass walks them;
    * on the way out, once the output is flushed and the ``atexit`` handlers have run, the
      process ends without tearing the interpreter down (``os._exit``; numpy's teardown alone
      is ~16 ms), as long as no other thread is alive. Every file segeval writes is closed
      before that.

    The exit code is :func:`main`'s. In-process callers (tests, notebooks) call :func:`main`,
    which leaves the interpreter alone."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    gc.set_threshold(10_000, 50, 50)
    try:
        main()
    except SystemExit as e:
        code = e.code
    else:  # pragma: no cover - main() always exits
        code = 0
    if not isinstance(code, int) or _threads_alive():
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # a closed pipe: the interpreter says so as it always does
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _threads_alive() -> bool:
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


if __name__ == "__main__":  # pragma: no cover
    entry()

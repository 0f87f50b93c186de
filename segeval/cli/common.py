"""What the commands share: the one-line error, logging to stderr, the typed option values,
the all-or-nothing writing of reports. Imports nothing heavy."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

#: ``--ignore-index none``: no ignore index.
NO_IGNORE = "none"


def flag(parameter: str) -> str:
    """The command-line flag of a parameter of :func:`segeval.evaluate`: ``--pred-ids``."""
    return "--" + parameter.replace("_", "-")


def escape(text: str) -> str:
    """``text`` with every character that is not printable (a newline, a control character, a
    surrogate that stands for a byte of a non-UTF-8 file name) written as Python's ``repr``
    writes it (``\\n``, ``\\x1b``, ``\\udcff``); the rest, spaces included, as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def fail(err: BaseException | str, code: int) -> NoReturn:
    """Print ``segeval: error: <one line>`` to stderr and exit with ``code``; a
    :class:`~segeval.errors.SegevalError` says its parameters as flags. The message is one
    line whatever it quotes: its non-printable characters are escaped (:func:`escape`)."""
    message = err.message_for(flag) if hasattr(err, "message_for") else str(err)
    click.echo(f"segeval: error: {escape(message)}", err=True)
    sys.exit(code)


@contextmanager
def user_errors(output: Path | None = None) -> Iterator[None]:
    """Turn a :class:`~segeval.errors.SegevalError` (exit code of its class) and an
    ``OSError`` while writing ``output`` (exit 1) into :func:`fail`."""
    from segeval.errors import SegevalError

    try:
        yield
    except SegevalError as e:
        fail(e, e.exit_code)
    except OSError as e:
        fail(f"{e.filename or output or 'output'}: cannot write ({e.strerror or e})", 1)


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"segeval: {record.levelname.lower()}: {record.getMessage()}", err=True)


def setup_logging() -> None:
    """segeval's warnings as ``segeval: warning: ...`` lines on stderr."""
    log = logging.getLogger("segeval")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.WARNING)
    log.propagate = False


class IgnoreIndex(click.ParamType):
    """An integer label, or ``none`` for no ignore index (returned as ``None``)."""

    name = "INT|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == NO_IGNORE:
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not an integer or 'none'", param, ctx)


#: Optional dependencies: the top-level module -> the extra that installs it.
EXTRAS = {"dask": "dask", "distributed": "dask", "cupy": "gpu", "cupy_backends": "gpu",
          "numba_cuda": "gpu", "matplotlib": "plot", "faster_coco_eval": "fast",
          "nibabel": "medical"}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The one-line message for an optional dependency that is not installed (``None`` when
    ``error`` is about any other module): what is missing and the extra that installs it."""
    name = (error.name or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return (f"this needs the optional package {name!r}, which is not installed: "
            f"pip install 'segeval[{extra}]'")


def check_outputs(*paths: Path | None) -> None:
    """Usage errors for output paths, before any work: same file twice (``-``, standard
    output, counts as a file), no such folder, a folder where a file goes."""
    outputs = [p for p in paths if p is not None]
    if len({p if is_stdout(p) else p.resolve() for p in outputs}) < len(outputs):
        fail("the output options must name different files (at most one '-')", 2)
    for path in outputs:
        if is_stdout(path):
            continue
        if path.is_dir():
            fail(f"{path}: is a folder, not a file", 2)
        if not path.parent.is_dir():
            fail(f"{path}: the folder {path.parent} does not exist", 2)


def is_stdout(path: Path | None) -> bool:
    """``-`` as an output file: standard output."""
    return path is not None and str(path) == "-"


def read_class_names(path: Path | None) -> tuple[str, ...] | None:
    """The names of a ``--class-names`` file (``None`` without one)."""
    if path is None:
        return None
    from segeval.formats.folder import read_class_names as read

    return read(path)

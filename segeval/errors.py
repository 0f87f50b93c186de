"""The errors segeval raises for a user's mistake.

Every message is one line that names the file, image or array concerned, what was expected and
what was found, e.g. ``preds/2007_000033.png: label 23 is not a class (expected 0..20 or the
ignore index 255)``. The CLI prints that line to stderr and exits with :attr:`exit_code`
(1 for bad data, 2 for a bad invocation); no traceback is shown for these errors.

One voice for a bad parameter value, built by :func:`bad_value` (scikit-learn's template), an
:class:`InvalidParameterError`::

    The 'missing' parameter must be 'error' or 'zero'. Got 'nope' instead.

Library errors name parameters (``parameters`` holds them), never command-line flags; the CLI
says the same with its flags (:meth:`SegevalError.message_for`: ``--missing must be ...``).
An :class:`InvalidParameterError` is also a ``ValueError`` and a ``TypeError``, what Python code
expects of a bad argument.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any


class SegevalError(Exception):
    """Base class of every error caused by the user's input; ``str(err)`` is the whole message.

    ``parameters`` names the parameters of :func:`segeval.evaluate` (or of the function called)
    that the message is about, so that a command line can say its flags instead.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, parameters: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.parameters = tuple(parameters)

    def __reduce__(self) -> tuple[Any, ...]:  # pickles across worker processes, keeps names
        return _rebuild, (type(self), str(self), self.parameters)

    def message_for(self, flag: Callable[[str], str]) -> str:
        """The message with each named parameter written as ``flag(name)`` (``--name``):
        ``The 'name' parameter`` and a bare ``name`` become the flag, ``name='value'`` (or
        ``name=value``) becomes ``flag value`` and ``name=True`` the flag alone."""
        text = str(self)
        for name in self.parameters:
            the = flag(name)
            text = re.sub(rf"The '{re.escape(name)}' parameter(?: of [\w.]+)?", the, text)
            # name=value, not inside a path or another word (``data/gt``, ``gt_folder``)
            text = re.sub(rf"(?<![\w'./-]){re.escape(name)}=(?:'([^']*)'|([\w.:/-]+))",
                          lambda m, the=the: the if m[2] == "True" else f"{the} {m[1] or m[2]}",
                          text)
            text = re.sub(rf"(?<![\w'./-]){re.escape(name)}(?![\w'./-])", the, text)
        return text


def _rebuild(cls: type[SegevalError], message: str, parameters: tuple[str, ...]
             ) -> SegevalError:
    err = cls.__new__(cls)
    SegevalError.__init__(err, message, parameters=parameters)
    return err


class UsageError(SegevalError):
    """Options that do not fit together or do not fit the data (exit code 2)."""

    exit_code = 2


class InvalidParameterError(UsageError, ValueError, TypeError):
    """A parameter value that is not allowed (wrong type or out of range), in the one voice of
    :func:`bad_value`. A :class:`UsageError` (exit code 2) that is also a ``ValueError`` and a
    ``TypeError``, as scikit-learn's ``InvalidParameterError`` is."""


class Shown(str):
    """A ``got`` for :func:`bad_value` already in words (``Shown("5 names")``): shown as it is,
    not as a ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6
_REPR.maxdict = 4


def shown(value: Any) -> str:
    """``value`` in a one-line message: an array as its dtype and shape, anything else as a
    ``repr`` cut to a few dozen characters."""
    if isinstance(value, Shown):
        return str(value)
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        if not shape and hasattr(value, "item"):  # a NumPy scalar: its Python value
            return shown(value.item())
        return f"an array of dtype {dtype} and shape {shape}"
    return " ".join(_REPR.repr(value).split())


def one_of(values: Any) -> str:
    """The allowed values for :func:`bad_value`'s ``expected``: ``'a', 'b' or 'c'``."""
    shown_values = [repr(v) for v in values]
    return (", ".join(shown_values[:-1]) + " or " if len(shown_values) > 1 else "") \
        + shown_values[-1]


def bad_value(parameter: str, expected: str, got: Any, *, function: str | None = None,
              cls: type[SegevalError] = InvalidParameterError) -> SegevalError:
    """The one error for a parameter value that is not allowed: an
    :class:`InvalidParameterError` (unless ``cls`` says otherwise) whose ``parameters`` is
    ``(parameter,)`` and whose message is ::

        The 'missing' parameter[ of evaluate] must be 'error' or 'zero'. Got 'nope' instead.

    ``expected`` is written after "must be"; ``got`` is the value (see :func:`shown`; a
    :class:`Shown` is written as it is).
    """
    of = f" of {function}" if function else ""
    return cls(f"The '{parameter}' parameter{of} must be {expected}. Got {shown(got)} instead.",
               parameters=(parameter,))


class DeviceError(UsageError):
    """The GPU was asked for but cannot be used: CuPy is not installed, or no CUDA device."""


class DataError(SegevalError):
    """The input files or arrays are not what the evaluation needs (exit code 1)."""


class MissingFileError(DataError):
    """A prediction or ground-truth file that should exist does not, or a folder is empty."""


class FileFormatError(DataError):
    """A file is unreadable, corrupt, or of the wrong kind (e.g. RGB where indices are expected)."""


class SizeMismatchError(DataError):
    """A prediction and its ground truth do not have the same height and width."""


class LabelError(DataError):
    """A label value that is neither a class of the task nor the ignore index."""

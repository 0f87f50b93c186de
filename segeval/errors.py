"""The errors segeval raises for a user's mistake.

Every message is one line that names the file, image or array concerned, what was expected and
what was found, e.g. ``preds/2007_000033.png: label 23 is not a class (expected 0..20 or the
ignore index 255)``. The CLI prints that line to stderr and exits with :attr:`exit_code`
(1 for bad data, 2 for a bad invocation); no traceback is shown for these errors.

Programming errors in the Python API (a wrong type or a negative ``num_classes``) raise the
usual ``TypeError`` / ``ValueError`` with a message of the same shape.
"""

from __future__ import annotations


class SegevalError(Exception):
    """Base class of every error caused by the user's input; ``str(err)`` is the whole message."""

    exit_code = 1


class UsageError(SegevalError):
    """Options that do not fit together or do not fit the data (exit code 2)."""

    exit_code = 2


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

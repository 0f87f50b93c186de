"""``python -m segeval.cli``: the ``segeval`` command."""

from segeval.cli import entry

if __name__ == "__main__":
    entry()

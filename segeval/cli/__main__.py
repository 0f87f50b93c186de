"""``python -m segeval.cli``: the ``segeval`` command."""

from segeval.cli import main

if __name__ == "__main__":
    main()

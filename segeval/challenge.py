"""The EvalAI entry point's historical address: ``segeval.challenge.evaluate`` (an EvalAI
challenge configuration names this module). The code is :mod:`segeval.leaderboard.challenge`."""

from segeval.leaderboard.challenge import codabench, evaluate

__all__ = ["codabench", "evaluate"]

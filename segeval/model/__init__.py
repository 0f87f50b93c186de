"""The reference encoder-decoder model: a small U-Net in plain NumPy that trains on a CPU.

It exists to show the ideas behind segmentation networks in code that can be read in one
sitting, and to give segeval something real to score: convolutions going down
(:mod:`segeval.model.layers`), transposed convolutions or max-unpooling going up, skip
connections (:mod:`segeval.model.unet`), a synthetic data set (:mod:`segeval.model.data`) and a
training loop that measures itself with segeval's own :class:`~segeval.ConfusionMatrix`
(:mod:`segeval.model.train`). Nothing in segeval's evaluation path imports this package.

This ``__init__`` imports nothing heavy, so that the CLI can register ``segeval model`` without
loading NumPy.
"""

DEFAULT_EPOCHS = 10  # `segeval model train` and benchmarks/bench_model.py

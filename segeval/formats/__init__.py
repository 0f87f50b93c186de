"""Format adapters: a dataset's files in, a plan out (:mod:`segeval.formats.base`).

Each adapter pairs predictions with ground truth the way the dataset's official tooling does
and knows its label table; :mod:`segeval.formats.registry` maps ``--format`` names to adapters.
"""

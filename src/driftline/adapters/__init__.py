"""Adapters: the outside systems the pipeline talks to, behind the core's protocols.

``registry`` is the MLflow store (tracking + registry, built once per run from ``Settings`` and passed in),
the ``driftline.model_registry.ModelRegistry`` the core's promotion rules use; ``pyfunc`` the model class
MLflow pickles. Adapters import the core, never ``driftline.app``, ``tasks`` or ``flows``.
"""

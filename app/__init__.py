"""The composition root: where the library, the stages and the flows are wired together.

The layers, top to bottom (import-linter contracts in ``pyproject.toml`` enforce them):

- ``app`` (this package): the ``correlearn`` CLI, the lookup of the stage and flow registries
  (:mod:`app.registry`) and the Dask task-runner wiring (:mod:`app.dask`);
- ``flows``: Prefect flows; they name stages and pass artifact references;
- ``stages``: one small module per stage, each a thin binding of a library function to a config
  section and its inputs; independent of one another;
- ``correlearn``: the library; it imports none of the above and receives a stage registry as an
  argument where it needs one (:class:`correlearn.pipeline.Pipeline`).

Why a top-level package and not ``correlearn/app``: the contracts are between top-level packages, and
a root inside the library would make ``correlearn`` import ``stages`` and ``flows`` again. The
torchrun worker (:mod:`correlearn.pretrain.worker`) is not here: it takes a typed training job and calls
a library function, so it needs no registry and the flows' deployments (which run without the CLI)
can launch it too.
"""

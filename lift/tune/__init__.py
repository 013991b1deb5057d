"""Ray Tune + Optuna ablation service for LIFT.

- :mod:`lift.tune.trainable`: the function trainable wrapping ``lift.train.fit``.
- :mod:`lift.tune.study_config`: the study config (arms, search space, budgets, resources).
- :mod:`lift.tune.search`: per-arm Optuna TPE search that records ASHA stops as PRUNED.
- :mod:`lift.tune.study`: the study stages (validate, tune, confirm, baselines, summary).
- :mod:`lift.tune.ray_setup`: start/join Ray, dashboard URL, resource checks.

The CLI is ``studies/context_ablation.py``. Submodules are imported on use: importing
``lift.tune`` alone does not import Ray.
"""

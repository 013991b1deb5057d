"""Ray Tune + Optuna ablation service for LIFT.

- :mod:`lift.tune.trainable`: the function trainable wrapping ``lift.train.fit``.
- :mod:`lift.tune.study_config`: the study config (arms, search space, budgets, resources).
- :mod:`lift.tune.search`: per-arm Optuna TPE search that records ASHA stops as PRUNED.
- :mod:`lift.tune.study`: the study's protocol and entry point ``run_study`` (baselines, summary),
  over its stages: :mod:`lift.tune.study_validation` (everything checked before any trial),
  :mod:`lift.tune.trials` (tuning and confirm runs as one Tune experiment) and
  :mod:`lift.tune.study_folder` (the folder layout, resume check, stage clock).
- :mod:`lift.tune.ledger`: finished trials, recorded first, trusted on resume.
- :mod:`lift.tune.console`: one line per finished trial.
- :mod:`lift.tune.ray_setup`: start/join Ray, dashboard URL, resource checks.

The CLI is ``studies/context_ablation.py``. Submodules are imported on use: importing
``lift.tune`` alone does not import Ray.
"""

"""Ray for the tune tests: started once per test session, shut down at its end (never `ray stop`)."""

from __future__ import annotations

import os

import pytest

# A study small enough for a test: 2 arms (window 3 and 7), 2 trials each, 3 epochs of 2 steps,
# a tiny network on 48x64 frames of the embedded real clips, one confirm seed.
TINY_STUDY = [
    "arms.windows=[3,7]", "arms.offsets=[1]",
    "search.num_samples=2", "search.max_concurrent=2",
    "asha.grace_period=1", "asha.reduction_factor=2",
    "confirm.seeds=1", "failure.max_failures=2",
    "train.epochs=3", "train.max_steps_per_epoch=2", "train.batch_size=2", "train.eval_batch_size=4",
    "optim.warmup_steps=1",
    "data.crop_size=[32,32]", "data.frame_size=[48,64]", "data.eval_targets_per_video=1",
    "model.width=0.125", "model.block_depth=1",
    "logging.image_every=0", "logging.progress='off'",
]


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray with 2 CPUs for every tune test; returns its GCS address."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
                 log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_study() -> tuple[str, ...]:
    return tuple(TINY_STUDY)

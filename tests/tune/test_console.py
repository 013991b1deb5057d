"""The study's console lines: counts per stage, ASHA stops, ETA from the finishing rate."""

from __future__ import annotations

import io
from types import SimpleNamespace

from lift.tune.console import TrialLines


def _trial(trial_id: str, stage: str, arm: str, seed: int = 0, status: str = "RUNNING") -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, status=status, last_result={},
                           config={"study": {"stage": stage, "arm": arm, "seed": seed}})


def test_one_line_per_finished_trial_with_stage_counts_and_outcome() -> None:
    out = io.StringIO()
    lines = TrialLines({"tune": 4, "confirm": 2}, epochs=5, stream=out)
    a = _trial("t1", "tune", "window=3")
    b = _trial("t2", "tune", "window=15,offset=1")
    earlier = _trial("t0", "tune", "window=3", status="TERMINATED")  # finished in an earlier session
    trials = [earlier, a, b]
    for t in (a, b):
        lines.on_trial_start(0, trials, t)
    lines.on_trial_result(0, trials, a, {"training_iteration": 2, "val_psnr": 28.4123})
    lines.on_trial_complete(0, trials, a)
    a.status = "TERMINATED"
    lines.on_trial_result(0, trials, b, {"training_iteration": 5, "val_psnr": 30.0})
    lines.on_trial_complete(0, trials, b)
    first, second = out.getvalue().splitlines()
    assert first.startswith("[tune 2/4] window=3 trial t1: stopped by ASHA at epoch 2/5, val PSNR 28.41 dB")
    assert first.endswith("stage ETA ?")  # one finished trial in this session: no rate yet
    assert second.startswith("[tune 3/4] window=15,offset=1 trial t2: epoch 5/5, val PSNR 30.00 dB")
    assert "stage ETA ?" not in second


def test_confirm_lines_name_the_seed_and_errors_say_so() -> None:
    out = io.StringIO()
    lines = TrialLines({"tune": 2, "confirm": 2}, epochs=3, stream=out)
    c = _trial("c1", "confirm", "window=15,offset=1", seed=1001)
    lines.on_trial_start(0, [c], c)
    lines.on_trial_recover(0, [c], c)
    lines.on_trial_result(0, [c], c, {"training_iteration": 1, "val_psnr": 25.0})
    lines.on_trial_error(0, [c], c)
    recover, failed = out.getvalue().splitlines()
    assert recover == ("[confirm] window=15,offset=1 seed 1001: failed; Ray restarts it from its last checkpoint "
                       "(failure.max_failures)")
    assert failed.startswith("[confirm 1/2] window=15,offset=1 seed 1001: failed for good at epoch 1/3")


def test_eta_is_remaining_trials_over_the_finishing_rate(monkeypatch) -> None:
    clock = iter([0.0, 20.0])  # stage start, then the second finish (the first gives no ETA)
    monkeypatch.setattr("lift.tune.console.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    lines = TrialLines({"tune": 6}, epochs=1, stream=out)
    trials = [_trial(f"t{i}", "tune", "window=3") for i in range(6)]
    lines.on_trial_start(0, trials, trials[0])          # stage starts at t=0
    for t in trials[:2]:
        lines.on_trial_result(0, trials, t, {"training_iteration": 1, "val_psnr": 20.0})
        lines.on_trial_complete(0, trials, t)
        t.status = "TERMINATED"
    # 2 trials in 20 s, 4 left: 40 s.
    assert out.getvalue().splitlines()[1].endswith("stage ETA 0:40")

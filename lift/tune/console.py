"""A study's console: one line per finished trial, instead of Ray Tune's per-trial tables.

Ray's own progress output (``RunConfig(verbose=...)``) redraws a box of every trial at every
report; with dozens of trials the line that matters, which trial just finished and how long the
stage has left, scrolls away. :class:`TrialLines` prints exactly that line, e.g.::

    [tune 5/12] window=15,offset=1 trial 3fa2_00004: stopped by ASHA at epoch 2/5, val PSNR 28.41 dB; stage ETA 2:10
    [confirm 1/6] window=3 seed 1000: epoch 5/5, val PSNR 30.02 dB; stage ETA 4:55

Full detail stays where it was: each trial's folder (result.json, TensorBoard events), the Ray
dashboard and the study summary. The counts come from the trial list Ray passes to every callback,
so a resumed study counts the trials its earlier sessions finished; the ETA is the stage's remaining
trials over this session's finishing rate since the stage's first trial started (with fewer than
two finished trials it is "?").
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from lift.logging.progress import format_duration

STAGES = ("tune", "confirm")
_FINISHED = ("TERMINATED", "ERROR")


def _study_info(trial: Any) -> dict[str, Any]:
    return dict((trial.config or {}).get("study", {}))


class TrialLines(Callback):
    """Prints a line per finished trial (and per failed attempt) with arm, epoch, validation PSNR
    and the ETA of its stage.

    totals: trials per stage ({"tune": arms x num_samples, "confirm": arms x seeds});
    epochs: epochs of a full-budget trial (ASHA stops others earlier).
    """

    def __init__(self, totals: dict[str, int], epochs: int, stream: TextIO | None = None) -> None:
        self.totals = dict(totals)
        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stdout
        self.stage_started: dict[str, float] = {}
        self.finished_here = {stage: 0 for stage in STAGES}
        self.last_result: dict[str, dict[str, Any]] = {}

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.stage_started.setdefault(_study_info(trial).get("stage", "tune"), time.monotonic())

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        study = _study_info(trial)
        # A dead worker and an exception in the trial (e.g. a diverged loss) both land here.
        print(f"[{study.get('stage', 'tune')}] {self._what(study, trial)}: failed; Ray restarts it from its last "
              "checkpoint (failure.max_failures)", file=self.stream, flush=True)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        self.last_result[trial.trial_id] = result

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finished(trials, trial, error=None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finished(trials, trial, error="failed for good")

    def _finished(self, trials: list[Any], trial: Any, error: str | None) -> None:
        study = _study_info(trial)
        stage = study.get("stage", "tune")
        self.finished_here[stage] = self.finished_here.get(stage, 0) + 1
        done = self._done_in_stage(trials, stage, trial)
        total = self.totals.get(stage, done)
        print(f"[{stage} {done}/{total}] {self._what(study, trial)}: {self._outcome(trial, error)}; "
              f"stage ETA {format_duration(self._eta_s(stage, total - done))}", file=self.stream, flush=True)

    @staticmethod
    def _done_in_stage(trials: list[Any], stage: str, current: Any) -> int:
        # Ray marks the trial TERMINATED only after the callbacks ran; count it explicitly.
        others = sum(1 for t in trials if t is not current and t.status in _FINISHED
                     and _study_info(t).get("stage", "tune") == stage)
        return others + 1

    @staticmethod
    def _what(study: dict[str, Any], trial: Any) -> str:
        arm = study.get("arm", "?")
        if study.get("stage") == "confirm":
            return f"{arm} seed {study.get('seed')}"
        return f"{arm} trial {trial.trial_id}"

    def _outcome(self, trial: Any, error: str | None) -> str:
        result = self.last_result.get(trial.trial_id) or getattr(trial, "last_result", None) or {}
        epoch = int(result.get("training_iteration", 0) or 0)
        psnr = result.get("val_psnr")
        psnr_text = f"val PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else "no validation yet"
        if error:
            return f"{error} at epoch {epoch}/{self.epochs} ({psnr_text}); see its error.txt in the trial folder"
        if epoch < self.epochs:
            return f"stopped by ASHA at epoch {epoch}/{self.epochs}, {psnr_text}"
        return f"epoch {epoch}/{self.epochs}, {psnr_text}"

    def _eta_s(self, stage: str, remaining: int) -> float:
        finished = self.finished_here.get(stage, 0)
        if remaining <= 0:
            return 0.0
        started = self.stage_started.get(stage)
        if finished < 2 or started is None:
            return float("nan")
        # Trials run concurrently, so the rate at which they finish already includes parallelism.
        return remaining * (time.monotonic() - started) / finished


__all__ = ["TrialLines", "STAGES"]

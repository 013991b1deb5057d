"""lift.tune.study_validation: what the design allows is known before any trial (the CLI's checks that
need data or Ray are in test_cli.py)."""

from __future__ import annotations

import pytest

from lift.tune.study_config import StudyError, load_study_config
from lift.tune.study_validation import check_design


def test_fewer_than_three_seeds_refuses_without_allow_underpowered(tiny_study) -> None:
    cfg = load_study_config("footage", [*tiny_study, "confirm.seeds=2"])
    sources = {"test": [f"s{i}" for i in range(6)]}
    with pytest.raises(StudyError, match=r"confirm.seeds=2: a verdict needs at least 3 seeds .* --set confirm.seeds=3"):
        check_design(cfg, sources)
    design = check_design(cfg, sources, allow_underpowered=True)
    assert design.underpowered and design.min_achievable_p == pytest.approx(2 ** -6)
    ok = check_design(load_study_config("footage", [*tiny_study, "confirm.seeds=3"]), sources)
    assert not ok.underpowered and ok.clusters_needed == 5

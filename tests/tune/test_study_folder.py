"""lift.tune.study_folder: a study folder is made once, and resumed only by the same study."""

from __future__ import annotations

from pathlib import Path

import pytest

from lift.tune.study_config import StudyError, load_study_config
from lift.tune.study_folder import StudyPaths, prepare_folder


def test_study_folder_rules(tmp_path: Path, tiny_study) -> None:
    cfg = load_study_config("footage", list(tiny_study))
    paths = StudyPaths(tmp_path / "s")
    prepare_folder(paths, cfg, resume=False)
    assert paths.study_yaml.is_file()
    with pytest.raises(StudyError, match="pass --resume"):
        prepare_folder(paths, cfg, resume=False)
    other = load_study_config("footage", [*tiny_study, "search.num_samples=5"])
    with pytest.raises(StudyError, match=r"search.num_samples: 2 -> 5"):
        prepare_folder(paths, other, resume=True)
    # Resources may change between sessions; the rest is the study.
    moved = load_study_config("footage", [*tiny_study, "resources.cpus_per_trial=2"])
    assert prepare_folder(paths, moved, resume=True).resources.cpus_per_trial == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(StudyError, match="not a study folder"):
        prepare_folder(StudyPaths(tmp_path / "busy"), cfg, resume=True)

"""lift.report.plan: which arms are compared by default and on request, and the options it refuses.

The study folders are the synthetic window study of conftest (build_study) and one-off tables built from
conftest.make_rows; the comparisons are read back from lift.report.analyse, which runs the plan.
"""

from __future__ import annotations

import shutil

import pytest

from lift.report import ReportError, analyse, combine_tables, load_study


def test_refuses_unknown_and_ambiguous_selectors(study_dir, options):
    study = load_study([study_dir])
    with pytest.raises(ReportError, match=r"treatment selector 'window=31' matches no arm with test rows; arms with "
                                          r"test rows: window=3, window=7,offset=1"):
        analyse(study, options(treatments=["window=31"]))
    with pytest.raises(ReportError, match=r"control selector 'baseline=median' matches no arm"):
        analyse(study, options(controls=["baseline=median"]))
    with pytest.raises(ReportError, match=r"control selector 'window=15' is ambiguous: it matches "
                                          r"window=15,offset=1, window=15,offset=2"):
        analyse(study, options(controls=["window=15"]))
    with pytest.raises(ReportError, match="malformed"):
        analyse(study, options(treatments=["window15"]))


def test_refuses_treatment_with_validation_rows_only(synth, tmp_path, options):
    root = synth.build_study(tmp_path / "s")
    shutil.rmtree(root / "confirm" / "window15_offset2")
    with pytest.raises(ReportError, match=r"window=15,offset=2 only has validation rows \(confirm stage missing\)"):
        analyse(load_study([root]), options(treatments=["offset=2"]))


def test_refuses_bad_options(study_dir, options):
    study = load_study([study_dir])
    with pytest.raises(ReportError, match=r"--alpha must be in \(0, 1\)"):
        analyse(study, options(alpha=1.5))
    with pytest.raises(ReportError, match=r"--psnr_cap must be a positive finite"):
        load_study([study_dir], psnr_cap=float("inf"))
    with pytest.raises(ReportError, match=r"unknown metric\(s\) fid"):
        load_study([study_dir], metrics=["psnr", "fid"])


def test_refuses_nothing_to_compare(synth, tmp_path, options):
    df = synth.make_rows("window=3", synth.sample_ids(["a", "b"], [1]))
    with pytest.raises(ReportError, match=r"nothing to compare: the test rows hold only the arm\(s\) window=3"):
        analyse(combine_tables([df]), options())


def test_default_treatment_is_best_by_validation(study_dir, options):
    a = analyse(load_study([study_dir]), options())
    pairs = [(c["treatment"], c["control"], c["family"]) for c in a.results["comparisons"]]
    assert pairs == [("window=15,offset=2", "window=3", "primary"), ("window=15,offset=2", "baseline=blend", "secondary"),
                     ("window=15,offset=2", "baseline=repeat", "secondary"),
                     ("window=7,offset=1", "window=3", "secondary"), ("window=15,offset=1", "window=3", "secondary"),
                     ("window=3", "baseline=blend", "sanity")]
    assert any("best validation PSNR" in n for n in a.notes)


def test_default_without_validation_compares_every_largest_window_arm(synth, tmp_path, options):
    root = synth.build_study(tmp_path / "s", val=False, summary=False, baselines=False)
    a = analyse(load_study([root]), options())
    primary = [c for c in a.results["comparisons"] if c["primary"]]
    assert [c["treatment"] for c in primary] == ["window=15,offset=1", "window=15,offset=2"]
    # Two primary treatments share alpha (Bonferroni); the window=7 arm is secondary.
    assert all(c["alpha_used"] == pytest.approx(0.025) for c in primary)
    assert [c["treatment"] for c in a.results["comparisons"] if not c["primary"]] == ["window=7,offset=1"]


def test_treatment_selector_matching_several_arms_compares_each_in_one_family(study_dir, options):
    a = analyse(load_study([study_dir]), options(treatments=["window=15"], controls=["window=3"]))
    primary = [c for c in a.results["comparisons"] if c["primary"]]
    assert [c["treatment"] for c in primary] == ["window=15,offset=1", "window=15,offset=2"]
    assert all(c["alpha_used"] == pytest.approx(0.025) for c in primary)
    assert any("matches several arms" in n for n in a.notes)


def test_baselines_become_primary_without_window3(synth, tmp_path, options):
    root = synth.build_study(tmp_path / "s", arms_gain={"window=15,offset=1": 0.5}, val=False, summary=False)
    a = analyse(load_study([root]), options())
    assert all(c["primary"] for c in a.results["comparisons"])
    assert any("no window=3 arm" in n for n in a.notes)

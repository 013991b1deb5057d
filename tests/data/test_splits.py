"""lift.data.splits: deterministic, salted assignment of videos (or source clips) to train/val/test."""

from __future__ import annotations

from lift.data.splits import assign_splits, holdout_groups


def test_assign_splits_is_deterministic_and_fills_every_split() -> None:
    for n in range(3, 30):
        ids = [f"video{i}" for i in range(n)]
        a = assign_splits(ids, 0.2, 0.2)
        assert a == assign_splits(list(reversed(ids)), 0.2, 0.2)
        counts = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
        assert min(counts.values()) >= 1, (n, counts)
        assert abs(counts["test"] - round(0.2 * n)) <= 1
    two = assign_splits(["a", "b"], 0.2, 0.2)
    assert list(two.values()).count("train") >= 1
    assert set(assign_splits(["a", "b", "c"], 0.0, 0.3).values()) == {"train", "test"}
    assert holdout_groups(["g1", "g2"], 0.2, salt="x") and len(holdout_groups(["g1", "g2"], 0.2, salt="x")) == 1
    assert holdout_groups(["g1"], 0.5, salt="x") == set()

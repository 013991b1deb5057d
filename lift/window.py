"""Window geometry: which source frames a sample around target index ``t`` uses.

Definition (shared/design/ARCHITECTURE.md): anchors at ``t - a`` and ``t + b`` with ``a + b = gap``;
``K = (window - 3) / 2`` references per side spaced by the temporal offset ``s``: left references
at ``t - a - s*k``, right references at ``t + b + s*k`` for ``k = 1..K``.

Input order (the model's ``frames[:, i]``): left anchor, right anchor, left references k=1..K,
right references k=1..K. Times are in units of the anchor gap with the left anchor at 0 and the
right anchor at 1; the target sits at ``timestep = a / gap``.

This module is the one home of the window: its geometry, its validation (:func:`check_window`,
one message wherever a window is read: config, model, study, CLI) and the rule that window 3 (two
anchors + target, the RIFE triplet) has no references, so its temporal offset means nothing
(:func:`ignores_offset`). It imports nothing from ``lift``, so every layer can ask it.
"""

from __future__ import annotations

from dataclasses import dataclass


# Two anchors + target: the RIFE triplet, the control arm. It has no reference frames.
CONTROL_WINDOW = 3
# The offset a window-3 config keeps (any other value would mean the same).
CONTROL_OFFSET = 1
WINDOW_EXPECTED = "expected an odd integer >= 3 (3 = two anchors + target, 15 = LIFT)"


class WindowError(ValueError):
    """A window is invalid or does not fit the data; the message names the value and what is expected."""


def check_window(window: object, name: str = "window") -> int:
    """`window` if it is a valid window size, else WindowError ``<name>: got <value>; expected ...``."""
    if isinstance(window, bool) or not isinstance(window, int) or window < CONTROL_WINDOW or window % 2 == 0:
        raise WindowError(f"{name}: got {window!r}; {WINDOW_EXPECTED}")
    return window


def ignores_offset(window: object) -> bool:
    """True for window 3: no references, so the temporal offset means nothing (arms that differ only
    in it are one arm, and its name leaves the offset out)."""
    return window == CONTROL_WINDOW


@dataclass(frozen=True)
class WindowSpec:
    window: int = 3
    temporal_offset: int = 1
    gap: int = 2

    def __post_init__(self) -> None:
        check_window(self.window)
        if self.temporal_offset < 1:
            raise WindowError(f"temporal_offset: got {self.temporal_offset!r}; expected an integer >= 1")
        if self.gap < 2:
            raise WindowError(f"gap: got {self.gap!r}; expected an integer >= 2 (the target lies strictly "
                              "between the anchors)")

    @property
    def has_references(self) -> bool:
        """Whether the window has reference frames beyond the anchors (every window but 3)."""
        return not ignores_offset(self.window)

    @property
    def refs_per_side(self) -> int:
        """References on each side of the anchors: ``(window - 3) / 2``."""
        return (self.window - 3) // 2

    @property
    def num_inputs(self) -> int:
        """Frames the model sees: anchors and references (the window minus the target)."""
        return self.window - 1

    @property
    def reach(self) -> int:
        """Source frames the references extend beyond each anchor."""
        return self.temporal_offset * self.refs_per_side

    @property
    def span(self) -> int:
        """Source frames covered from the first to the last input, inclusive."""
        return self.gap + 2 * self.reach + 1

    def left_distance(self, a: int) -> int:
        """Frames from the earliest input to the target."""
        return a + self.reach

    def right_distance(self, a: int) -> int:
        return (self.gap - a) + self.reach

    def default_a(self) -> int:
        return self.gap // 2

    def input_offsets(self, a: int | None = None) -> list[int]:
        """Frame offsets of the inputs relative to the target, in model input order."""
        a = self.default_a() if a is None else a
        self._check_a(a)
        b = self.gap - a
        k = range(1, self.refs_per_side + 1)
        return [-a, b] + [-a - self.temporal_offset * i for i in k] + [b + self.temporal_offset * i for i in k]

    def input_times(self, a: int | None = None) -> list[float]:
        """Relative times of the inputs (left anchor 0, right anchor 1), in model input order."""
        a = self.default_a() if a is None else a
        return [(off + a) / self.gap for off in self.input_offsets(a)]

    def timestep(self, a: int | None = None) -> float:
        a = self.default_a() if a is None else a
        self._check_a(a)
        return a / self.gap

    def valid_targets(self, length: int, a: int | None = None) -> range:
        """Target indices whose whole window lies inside a sequence of `length` frames."""
        a = self.default_a() if a is None else a
        return range(self.left_distance(a), length - self.right_distance(a))

    def check_fits(self, length: int, where: str) -> None:
        """Raise WindowError unless at least one window fits a sequence of `length` frames."""
        if length < self.span:
            raise WindowError(
                f"{where}: window={self.window} with temporal_offset={self.temporal_offset} and gap={self.gap} "
                f"needs {self.span} consecutive frames, but only {length} are available"
            )

    def _check_a(self, a: int) -> None:
        if not 0 < a < self.gap:
            raise WindowError(f"anchor distance a={a} must satisfy 0 < a < gap={self.gap}")

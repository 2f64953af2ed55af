"""Resolution-level classifier (interface; the full rule set and learning arrive next)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Classification:
    level: int
    confidence: float
    reason: str
    category: str | None = None
    severity: str | None = None
    rules: tuple[str, ...] = field(default_factory=tuple)


class Classifier:
    def __init__(self, examples=()):
        self.examples = list(examples)

    def classify(self, *, family, code, message, explanation="", recommended_action="") -> Classification:
        if code == 0:
            return Classification(0, 0.9, "Success code.", "informational", "info", ("success",))
        return Classification(2, 0.3, "No rule matched; an engineer decides.", None, None, ("default",))


_lock = threading.Lock()
_cached: Classifier | None = None


def get_classifier() -> Classifier:
    global _cached
    with _lock:
        if _cached is None:
            _cached = Classifier()
        return _cached


def reset_classifier() -> None:
    global _cached
    with _lock:
        _cached = None

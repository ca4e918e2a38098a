"""Detector settings for the wheel-spinning tests: the attempt-counting method, with or
without its early flag."""

from __future__ import annotations

from typing import Any

from services.alerts.rules import DetectorSettings, resolve


def by_attempts(**rule: Any) -> DetectorSettings:
    """Wheel-spinning by Beck & Gong's count (method ``attempts``), with ``rule`` laid over."""
    return resolve({"wheel_spinning": {"method": "attempts", **rule}})


def no_early() -> DetectorSettings:
    return by_attempts(early_enabled=False)

"""The Django app: ``INSTALLED_APPS += ["rollout.integrations.django"]``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]

from . import _read_settings, close_flags

__all__ = ["RolloutConfig"]


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting == "ROLLOUT":
        close_flags()  # override_settings(ROLLOUT=...): the next check uses the new settings


class RolloutConfig(AppConfig):  # type: ignore[misc]
    name = "rollout.integrations.django"
    label = "rollout"
    verbose_name = "Rollout feature flags"

    def ready(self) -> None:
        # Check the settings now, so a typo stops `runserver` or `migrate` with a clear
        # message; the store itself is opened only on first use.
        _read_settings()
        setting_changed.connect(_on_setting_changed, dispatch_uid="rollout.setting_changed")

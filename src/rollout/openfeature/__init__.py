"""The OpenFeature provider: ``api.set_provider_and_wait(RolloutProvider(flags))``.

Needs openfeature-sdk (``pip install 'rollout[openfeature]'``).
"""

from __future__ import annotations

from ._provider import OFF_VALUE_KEY, VALUE_KEY, ContextUser, RolloutProvider

__all__ = ["OFF_VALUE_KEY", "VALUE_KEY", "ContextUser", "RolloutProvider"]

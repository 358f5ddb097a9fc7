"""Django: one process-wide Rollout from ``settings.ROLLOUT``, and ``request.flags``.

Settings::

    INSTALLED_APPS += ["rollout.integrations.django"]
    MIDDLEWARE += ["rollout.integrations.django.middleware.RolloutMiddleware"]  # request.flags
    TEMPLATES[0]["OPTIONS"]["context_processors"] += [
        "rollout.integrations.django.context_processors.flags"                  # {{ flags }}
    ]
    ROLLOUT = {
        "STORE": "sqlite:///flags.db",      # a store URL or a Store object; "memory://" too
        "OPTIONS": {"defaults": {"new_checkout": False}},   # keyword arguments of Rollout
        "USER": "myapp.flags.user_of",      # optional: request -> user or None
    }

The Rollout is made on the first :func:`get_flags` call (not at start-up: ``migrate`` and the
autoreloader's parent process never open the store), closed when the process exits, and made
again from the new value when a test changes ``ROLLOUT`` with ``override_settings``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from ..._client.rollout import Rollout
from .. import UserFlags
from .._lazy import LazyRollout, check_options

__all__ = ["aflags_for", "close_flags", "flags_for", "get_flags", "user_of"]

UserResolver = Callable[[Any], object]

_KEYS = frozenset({"STORE", "OPTIONS", "USER"})
_EXAMPLE = "ROLLOUT = {'STORE': 'sqlite:///flags.db'}"


def user_of(request: Any) -> object:
    """The default ``USER``: ``request.user`` when authenticated, else ``None`` (anonymous)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return user


class _Config(NamedTuple):
    holder: LazyRollout
    user: UserResolver


def _read_settings() -> _Config:
    config = getattr(settings, "ROLLOUT", None)
    if config is None:
        raise ImproperlyConfigured(f"settings.ROLLOUT is not set; for example {_EXAMPLE}")
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(
            f"settings.ROLLOUT must be a dict like {_EXAMPLE}, got {config!r}"
        )
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"settings.ROLLOUT has unknown keys {unknown}; the keys are {sorted(_KEYS)}"
        )
    if "STORE" not in config:
        raise ImproperlyConfigured(
            "settings.ROLLOUT['STORE'] is not set: a store URL such as 'sqlite:///flags.db' "
            "or 'memory://', or a Store object"
        )
    try:
        options = check_options(config["STORE"], config.get("OPTIONS", {}), "settings.ROLLOUT")
    except TypeError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    user = config.get("USER", user_of)
    if isinstance(user, str):
        user = import_string(user)
    if not callable(user):
        raise ImproperlyConfigured(
            f"settings.ROLLOUT['USER'] must be a callable or its dotted path, got {user!r}"
        )
    return _Config(LazyRollout(config["STORE"], options), user)


_lock = threading.Lock()
_config: _Config | None = None


def _current() -> _Config:
    global _config
    config = _config
    if config is None:
        with _lock:
            if _config is None:
                _config = _read_settings()
            config = _config
    return config


def get_flags() -> Rollout:
    """The process-wide Rollout made from ``settings.ROLLOUT`` (on the first call)."""
    return _current().holder.get()


def flags_for(request: Any) -> UserFlags:
    """The flags bound to the request's user (``settings.ROLLOUT['USER']``), once per request."""
    cached = getattr(request, "_rollout_user_flags", None)
    if isinstance(cached, UserFlags):
        return cached
    config = _current()
    flags = request._rollout_user_flags = UserFlags(config.holder.get(), config.user(request))
    return flags


async def aflags_for(request: Any) -> UserFlags:
    """:func:`flags_for` for async views: the default ``USER`` awaits ``request.auser()``."""
    cached = getattr(request, "_rollout_user_flags", None)
    if isinstance(cached, UserFlags):
        return cached
    config = _current()
    if config.user is user_of and hasattr(request, "auser"):
        user = await request.auser()
        user = user if user.is_authenticated else None
    else:
        user = await sync_to_async(config.user)(request)
    flags = request._rollout_user_flags = UserFlags(config.holder.get(), user)
    return flags


def close_flags() -> None:
    """Close the process-wide Rollout and forget the settings; the next use reads them again."""
    global _config
    with _lock:
        config, _config = _config, None
    if config is not None:
        config.holder.close()

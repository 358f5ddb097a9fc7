"""Flask: ``FlaskRollout(app)`` or ``init_app(app)``, and ``current_flags`` for the user.

Configuration::

    app.config["ROLLOUT_STORE"] = "sqlite:///flags.db"    # a store URL or Store; "memory://"
    app.config["ROLLOUT_OPTIONS"] = {"defaults": {"new_checkout": False}}  # Rollout arguments
    rollout = FlaskRollout(app)                            # or rollout.init_app(app) later

    @app.get("/")
    def home():
        if current_flags.active("new_checkout"): ...       # for the current user
        return render_template("home.html")                # {% if flags.active("...") %}

Each application gets one Rollout, made on first use (not in ``init_app``: the reloader's
parent and ``flask`` commands never open the store) and closed when the process exits.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable
from typing import Any, cast

from flask import Flask, current_app, g, has_app_context, has_request_context, request
from werkzeug.local import LocalProxy

from .._client.rollout import Rollout
from . import UserFlags
from ._lazy import LazyRollout, check_options

__all__ = ["FlaskRollout", "current_flags", "flask_login_user"]

UserLoader = Callable[[], object]

_CACHE_KEY = "rollout.user_flags"


def flask_login_user() -> object:
    """The default user loader: flask_login's ``current_user`` when logged in, else ``None``.

    ``None`` too without flask_login, without a login manager on the app, or outside a request.
    """
    if not has_request_context() or getattr(current_app, "login_manager", None) is None:
        return None
    try:
        # By name: flask_login is optional and ships no type information.
        flask_login = importlib.import_module("flask_login")
    except ImportError:
        return None
    user = flask_login.current_user._get_current_object()  # the user, not the proxy
    return user if user.is_authenticated else None


class _AppState:
    def __init__(self, holder: LazyRollout, extension: FlaskRollout) -> None:
        self.holder = holder
        self.extension = extension


class FlaskRollout:
    """The Flask extension. ``user_loader()`` returns the current user, or ``None``."""

    def __init__(self, app: Flask | None = None, *, user_loader: UserLoader | None = None) -> None:
        if user_loader is not None and not callable(user_loader):
            raise TypeError(f"user_loader must be callable, got {user_loader!r}")
        self.load_user: UserLoader = user_loader or flask_login_user
        # So that setup code outside any app context (define_group at import) finds the app,
        # when there is only one.
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if "ROLLOUT_STORE" not in app.config:
            raise RuntimeError(
                "app.config['ROLLOUT_STORE'] is not set: a store URL such as "
                "'sqlite:///flags.db' or 'memory://', or a Store object"
            )
        store = app.config["ROLLOUT_STORE"]
        options = check_options(
            store, app.config.get("ROLLOUT_OPTIONS", {}), "app.config['ROLLOUT_OPTIONS']"
        )
        app.extensions["rollout"] = _AppState(LazyRollout(store, options), self)
        app.context_processor(_template_context)
        self._apps.add(app)

    def user_loader(self, loader: UserLoader) -> UserLoader:
        """Decorator: the function that returns the current user (or ``None``)."""
        if not callable(loader):
            raise TypeError(f"user_loader must be callable, got {loader!r}")
        self.load_user = loader
        return loader

    @property
    def flags(self) -> Rollout:
        """The current application's Rollout (made on first use).

        Outside an application context: the Rollout of the one app this extension serves.
        """
        return _state(self._app()).holder.get()

    def user_flags(self) -> UserFlags:
        """The flags bound to the current user: what ``current_flags`` stands for."""
        return _current_user_flags()

    def close(self, app: Flask | None = None) -> None:
        """Close the application's Rollout now (else at exit); the next use opens a new one."""
        _state(app if app is not None else self._app()).holder.close()

    def _app(self) -> Flask | None:
        if has_app_context():
            return None  # the current app
        apps = list(self._apps)
        if len(apps) == 1:
            return apps[0]
        raise RuntimeError(
            f"outside an application context, and this FlaskRollout serves {len(apps)} apps: "
            "use `with app.app_context():`"
        )


def _state(app: Flask | None = None) -> _AppState:
    if app is None:
        app = current_app
    state = app.extensions.get("rollout")
    if not isinstance(state, _AppState):
        raise RuntimeError(f"FlaskRollout.init_app() was not called for the app {app.name!r}")
    return state


def _current_user_flags() -> UserFlags:
    # Kept in the request's WSGI environ, so the user loader runs once a request however many
    # checks the view and its templates make. Not on `g`: requests made inside one
    # `app.app_context()` (tests do that) share one `g`, and would share the first one's user.
    cache: dict[str, Any] = request.environ if has_request_context() else g.__dict__
    flags = cache.get(_CACHE_KEY)
    if not isinstance(flags, UserFlags):
        state = _state()
        flags = cache[_CACHE_KEY] = UserFlags(state.holder.get(), state.extension.load_user())
    return flags


#: The current user's flags (a :class:`~rollout.integrations.UserFlags`), like flask_login's
#: ``current_user``: ``current_flags.active("new_checkout")`` in a view.
current_flags = cast(UserFlags, LocalProxy(_current_user_flags))


def _template_context() -> dict[str, Any]:
    return {"flags": current_flags}

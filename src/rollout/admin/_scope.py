"""Where a request is inside this app, wherever the app is mounted."""

from __future__ import annotations

from starlette.types import Scope

__all__ = ["APP_PATH", "app_path", "is_api_path", "remember_app_path"]

#: Where the path relative to the app is recorded on the scope.
APP_PATH = "rollout.app_path"


def remember_app_path(scope: Scope) -> str:
    """The path relative to this app (``/api/v1/flags``), recorded on the scope once.

    Mounted at ``/admin`` in another app, ``scope["path"]`` is ``/admin/api/v1/flags`` and
    ``root_path`` is ``/admin``. The app's own Mounts then change ``root_path`` in place as the
    request is routed, so the answer is worked out once, at the app's edge (the auth
    middleware), and read back from there by everything behind it.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        path = path[len(root) :] or "/"
    scope[APP_PATH] = path
    return path


def app_path(scope: Scope) -> str:
    return scope.get(APP_PATH) or remember_app_path(scope)


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")

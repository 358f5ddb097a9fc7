# The C accelerator of the flag check (_speedups.c); rollout._core.native says when it is used.
from collections.abc import Callable
from typing import Any

ID_GETATTR: int
ID_ATTRIBUTE: int
ID_GET_ID: int
BUCKET_NONE: int
BUCKET_CRC32: int
BUCKET_RANDOMIZED: int
BUCKET_RUBY: int

def crc32_bucket(ident: str | int, /) -> int: ...

class Active:
    def __init__(
        self,
        checks: dict[str, Any],
        anonymous: dict[str, bool],
        user_checks: dict[str, Callable[[Any], bool]],
        uncompiled: Callable[[object, object], bool],
        percentage_bounds: dict[str, int],
        id_attribute: str,
        user_id: Callable[[object], str],
    ) -> None: ...
    def __call__(self, owner: Any, name: Any, user: Any = None) -> bool: ...

class UserCheck:
    def __init__(
        self,
        *,
        check: object,
        excluded: Any,
        users: Any,
        time_percentage: float,
        everyone: bool,
        bucket: int,
        bound: int,
        seed: object,
        name: object,
        predicates: tuple[Callable[[Any], object], ...],
        id_mode: int,
        attribute: str,
        get_id: Callable[[Any], object],
        user_id: Callable[[object], str],
        on_group_error: Callable[..., None],
    ) -> None: ...
    def __call__(self, user: Any, /) -> bool: ...

class Resolution:
    """A flag's resolution function (rollout._core.decide.specialize_resolution)."""

    def __init__(
        self,
        *,
        check: object,
        excluded: Any,
        users: Any,
        percentage: float,
        time_percentage: float,
        everyone: bool,
        bucket: int,
        bound: int,
        kind: str | None,
        seed: object,
        name: object,
        predicates: tuple[Callable[[Any], object], ...],
        groups: tuple[object, ...],
        on_group_error: Callable[..., None],
        result: type,
        view: object,
        reasons: Any,
        on_variant: str,
        off_variant: str,
    ) -> None: ...
    def __call__(self, uid: str, user: Any, /) -> Any: ...

class ProviderState:
    """What ResolveBoolean reads of a provider (rollout.openfeature._native.provider_state)."""

    def __init__(
        self,
        *,
        views: dict[str, Any],
        forced: Any,
        checks: dict[str, Any],
        slot: object,
        context_users: bool,
        context_user: type,
        error: type[BaseException],
        failure: Callable[[Any, Any], Any],
    ) -> None: ...

class ResolveBoolean:
    """RolloutProvider.resolve_boolean_details's usual cases; the Python method otherwise."""

    __wrapped__: Callable[..., Any]
    def __init__(self, method: Callable[..., Any], /) -> None: ...
    def __call__(self, *args: Any) -> Any: ...

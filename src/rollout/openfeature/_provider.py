"""An OpenFeature provider backed by a :class:`~rollout.Rollout` (needs ``openfeature-sdk``).

::

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from rollout.openfeature import RolloutProvider

    api.set_provider(RolloutProvider(flags))
    client = api.get_client()
    client.get_boolean_value("chat", False, EvaluationContext(targeting_key="42"))

A boolean is ``flags.active(name, user)`` for the context's targeting key; string, number and
object flags take their value from the flag's data (``value`` when on, ``off_value`` or the
caller's default when off). Every change to a flag, made here or replicated from elsewhere,
emits ``PROVIDER_CONFIGURATION_CHANGED`` with the changed names. ``import rollout`` never
imports this module (nor the SDK).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent, ProviderEventDetails
from openfeature.exception import (
    FlagNotFoundError,
    GeneralError,
    InvalidContextError,
    OpenFeatureError,
    ParseError,
    TargetingKeyMissingError,
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.hook import Hook
from openfeature.provider import AbstractProvider, Metadata

from .._client.rollout import Rollout
from .._core.feature import Feature
from ._context import ContextUser, targeting_key
from ._flag import (
    OFF_VALUE_KEY,
    VALUE_KEY,
    FlagView,
    as_float,
    as_int,
    as_object,
    as_str,
    copy_json,
)

__all__ = ["OFF_VALUE_KEY", "VALUE_KEY", "ContextUser", "RolloutProvider"]

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class RolloutProvider(AbstractProvider):
    """The OpenFeature provider of a :class:`~rollout.Rollout`.

    ``user_from_context(context)`` builds the object that ``flags.active`` and the group
    predicates receive for a context with a targeting key; by default a :class:`ContextUser`.
    Its id (read with the Rollout's ``id_user_by``) should be the targeting key. It is called
    only for flags that have groups: for other flags the targeting key itself is the user.
    ``hooks`` are the provider's hooks (OpenFeature 2.3.1), run on every evaluation.
    """

    def __init__(
        self,
        flags: Rollout,
        *,
        user_from_context: Callable[[EvaluationContext], object] | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        super().__init__()
        if not isinstance(flags, Rollout):
            raise TypeError(f"flags must be a rollout.Rollout, got {flags!r}")
        if user_from_context is not None and not callable(user_from_context):
            raise TypeError(
                f"user_from_context must be callable or None, got {user_from_context!r}"
            )
        hook_list = list(hooks)
        for hook in hook_list:
            if not isinstance(hook, Hook):
                raise TypeError(f"hooks must be openfeature Hook objects, got {hook!r}")
        self._flags = flags
        # flags.active is looked up on every call, never kept: flags.override() and the admin's
        # check sampler replace it on the instance for a while.
        self._in_group = flags.active_in_group
        # What flags.override() forces, name -> answer (a live view). An overridden flag answers
        # the same for every context: its reason is STATIC, and neither a missing flag nor a
        # missing targeting key is an error.
        self._forced: Mapping[str, bool] = flags.overrides
        self._user_from_context = user_from_context or ContextUser
        self._hooks = hook_list
        self._metadata = Metadata(name="rollout")
        # Flag views cached while subscribed (between initialize and shutdown): a change drops
        # the flag's view. The generation keeps a view read before a change from being stored
        # after the change dropped it.
        self._views: dict[str, FlagView] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._unsubscribe: Callable[[], None] | None = None

    # Lifecycle and events (OpenFeature 2.4, 2.5, 5.1) ---------------------------------------

    def get_metadata(self) -> Metadata:
        return self._metadata

    def get_provider_hooks(self) -> list[Hook]:
        return list(self._hooks)

    def initialize(self, evaluation_context: EvaluationContext) -> None:  # noqa: ARG002
        """Subscribe to the Rollout's changes. The flags are already loaded: nothing to wait for.

        (The global context is not used: every check gets its own.)
        """
        with self._lock:
            if self._unsubscribe is None:
                self._views.clear()
                self._unsubscribe = self._flags.subscribe(self._changed)

    def shutdown(self) -> None:
        """Unsubscribe: no more events. The Rollout stays open (it is the caller's to close)."""
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            self._generation += 1
            self._views.clear()

    def _changed(self, names: set[str]) -> None:
        with self._lock:
            self._generation += 1
            for name in names:
                self._views.pop(name, None)
        # Read once: the SDK may detach the provider on another thread meanwhile.
        emit = getattr(self, "_on_emit", None)
        if emit is not None:
            details = ProviderEventDetails(flags_changed=sorted(names))
            emit(self, ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, details)

    # Resolution (OpenFeature 2.2) -----------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        try:
            view, answer, reason = self._evaluate(flag_key, evaluation_context)
        except OpenFeatureError as error:
            return _failure(default_value, error)
        return FlagResolutionDetails(
            answer, None, None, reason, "on" if answer else "off", view.metadata
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._typed(flag_key, default_value, evaluation_context, as_str)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._typed(flag_key, default_value, evaluation_context, as_int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._typed(flag_key, default_value, evaluation_context, as_float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._typed(flag_key, default_value, evaluation_context, as_object)

    def resolve_value_details(
        self, flag_key: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[object]:
        """The flag's value for the context whatever its type: what a remote client (OFREP)
        asks for, since it says no type.

        A boolean flag (no ``value`` in its data) answers ``flags.active``; a typed flag its
        ``value`` when on, its ``off_value`` when off, and, off without an ``off_value``,
        ``None`` with no variant: the caller's default applies (OFREP's code default). The
        reasons, variants, metadata and errors are the typed resolutions' own. A flag whose
        ``value`` and ``off_value`` are not one type (or either is null) is a PARSE_ERROR: no
        client type could take both.
        """
        try:
            view, answer, reason = self._evaluate(flag_key, evaluation_context)
            if not view.has_value:
                return FlagResolutionDetails(
                    answer, None, None, reason, "on" if answer else "off", view.metadata
                )
            kind = _json_kind(view.value)
            if kind is None or (view.has_off_value and _json_kind(view.off_value) != kind):
                raise ParseError(
                    f"flag {flag_key!r} data {VALUE_KEY!r} is {view.value!r} and "
                    f"{OFF_VALUE_KEY!r} is {view.off_value if view.has_off_value else None!r}: "
                    "they must be one type (boolean, string, number or object)"
                )
            value: object = view.value
            variant: str | None = "on"
            if not answer:
                value, variant = (view.off_value, "off") if view.has_off_value else (None, None)
        except OpenFeatureError as error:
            return _failure(None, error)
        return FlagResolutionDetails(copy_json(value), None, None, reason, variant, view.metadata)

    def _typed(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[str, str, object], T],
    ) -> FlagResolutionDetails[T]:
        try:
            view, answer, reason = self._evaluate(flag_key, evaluation_context)
            if not view.has_value:
                raise TypeMismatchError(
                    f"flag {flag_key!r} has no {VALUE_KEY!r} in its data, so it is a boolean "
                    f"flag (give it one: set_feature_data({flag_key!r}, {{{VALUE_KEY!r}: ...}}))"
                )
            # Both values are checked whatever the answer, so a wrong type shows on every call.
            value = convert(flag_key, VALUE_KEY, view.value)
            variant: str | None = "on"
            if view.has_off_value:
                off = convert(flag_key, OFF_VALUE_KEY, view.off_value)
                if not answer:
                    value, variant = off, "off"
            elif not answer:
                value, variant = default_value, None
        except OpenFeatureError as error:
            return _failure(default_value, error)
        if variant is not None and isinstance(value, dict | list):
            value = copy_json(value)  # the caller may change it; the cached view must not
        return FlagResolutionDetails(value, None, None, reason, variant, view.metadata)

    def _evaluate(
        self, flag_key: str, context: EvaluationContext | None
    ) -> tuple[FlagView, bool, Reason]:
        """The flag's view, ``flags.active``'s answer for the context, and why it said so."""
        key = targeting_key(context)
        view, answer, reason = self._check(flag_key, key, context)
        if reason is None:
            # The flag changed between reading its view and checking it: read both again.
            with self._lock:
                self._generation += 1
                self._views.pop(flag_key, None)
            view, answer, reason = self._check(flag_key, key, context)
        return view, answer, Reason.UNKNOWN if reason is None else reason

    def _check(
        self, flag_key: str, key: str | None, context: EvaluationContext | None
    ) -> tuple[FlagView, bool, Reason | None]:
        view = self._view(flag_key)
        if self._forced and type(flag_key) is str and flag_key in self._forced:
            answer = self._active(flag_key, key)
            return view or FlagView(Feature(flag_key)), answer, Reason.STATIC
        if view is None:
            raise FlagNotFoundError(f"no flag named {flag_key!r}")
        user: object = key
        if key is None:
            if view.needs_key:
                raise TargetingKeyMissingError(
                    f"flag {flag_key!r} is on for a percentage of users: the evaluation "
                    "context needs a targeting_key to pick them"
                )
        elif view.groups and context is not None:
            user = self._user(context)  # only predicates see it: built for flags with groups
        answer = self._active(flag_key, user)
        return view, answer, view.reason(key, answer, user, self._in_group)

    def _active(self, flag_key: str, user: object) -> bool:
        try:
            return self._flags.active(flag_key, user)
        except (TypeError, ValueError) as exc:  # the user object has no usable id
            raise InvalidContextError(f"cannot check {flag_key!r} for {user!r}: {exc}") from exc

    def _view(self, flag_key: str) -> FlagView | None:
        try:
            view = self._views.get(flag_key)
        except TypeError:  # unhashable: no such flag
            return None
        if view is not None:
            return view
        generation = self._generation
        try:
            if not self._flags.exists(flag_key):
                return None
        except (TypeError, ValueError):  # not a possible flag name
            return None
        view = FlagView(self._flags.get(flag_key))
        with self._lock:
            if self._unsubscribe is not None and generation == self._generation:
                self._views[flag_key] = view
        return view

    def _user(self, context: EvaluationContext) -> object:
        try:
            return self._user_from_context(context)
        except Exception as exc:
            raise GeneralError(f"user_from_context raised {exc!r}") from exc


def _json_kind(value: object) -> str | None:
    """The JSON type a client would read a flag value as (int and float are one: a number)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict | list):
        return "object"
    return None


def _failure(default_value: T, error: OpenFeatureError) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        default_value, error.error_code, error.error_message, Reason.ERROR, None
    )

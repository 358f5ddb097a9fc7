"""An OpenFeature provider backed by a :class:`~rollout.Rollout` (needs ``openfeature-sdk``).

::

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from rollout.openfeature import RolloutProvider

    api.set_provider_and_wait(RolloutProvider(flags))  # set_provider initializes on a thread
    client = api.get_client()
    client.get_boolean_value("chat", False, EvaluationContext(targeting_key="42"))

A flag with a definition (variants, a default variant, targeting as data) answers what
``flags.evaluate(name, context)`` says, flagd's way (openfeature._defined). Of an on/off flag, a
boolean's answer is ``flags.active(name, user)`` for the context's targeting key; a
typed flag (one with ``value`` in its data, of any type) takes its value from the data
(``value`` when on, ``off_value`` or the caller's default when off). The reason and the flag
metadata come from ``flags.explain``'s decision, its walk without the words
(openfeature._explained); a boolean flag the same for every context answers one shared,
read-only resolution, a targeted one builds its metadata when read (openfeature._details).
Every change to a flag, made here or replicated from elsewhere, emits
``PROVIDER_CONFIGURATION_CHANGED`` with the changed names; the Rollout's readiness emits the
status events (openfeature._status). ``import rollout`` never imports this module (nor the SDK).
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
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.hook import Hook
from openfeature.provider import AbstractProvider, Metadata

from .._client.rollout import Rollout
from .._core.feature import Check, Feature
from ._arguments import checked_arguments
from ._context import ContextUser, context_user_and_key, targeting_key, user_and_id
from ._defined import resolve_defined, resolve_defined_value
from ._details import failure
from ._explained import REASONS, decide
from ._flag import (
    OFF_VALUE_KEY,
    VALUE_KEY,
    DefinedSinceError,
    Evaluated,
    FlagView,
    any_value,
    as_bool,
    as_float,
    as_int,
    as_object,
    as_str,
    typed_value,
    version_view,
)
from ._keyless import without_key
from ._native import accelerated, provider_state, resolver_of
from ._status import StatusWatch

__all__ = ["OFF_VALUE_KEY", "VALUE_KEY", "ContextUser", "RolloutProvider"]

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class RolloutProvider(AbstractProvider):
    """The OpenFeature provider of a :class:`~rollout.Rollout`.

    ``user_from_context(context)`` builds the object that ``flags.active`` and the group
    predicates receive; by default a :class:`ContextUser`. Its id (read with the Rollout's
    ``id_user_by``) should be the targeting key. It is called only for flags that have groups
    (for other flags the targeting key itself is the user), and for a context without a
    targeting key only when the context has attributes (only the predicates see it then).
    ``hooks`` are the provider's hooks (OpenFeature 2.3.1), run on every evaluation.
    ``status_interval``: every so many seconds while initialized, the provider reads the
    Rollout's readiness (its transport connected, its store reachable, not closed) and emits
    PROVIDER_STALE, PROVIDER_ERROR or PROVIDER_READY when it changes (openfeature._status);
    None reads nothing.
    """

    # Read on every resolution by the C method (a slot: one load); the rest is the instance's.
    __slots__ = ("_fast",)

    def __init__(
        self,
        flags: Rollout,
        *,
        user_from_context: Callable[[EvaluationContext], object] | None = None,
        hooks: Iterable[Hook] = (),
        status_interval: float | None = 1.0,
    ) -> None:
        super().__init__()
        hook_list = checked_arguments(flags, user_from_context, hooks, status_interval)
        self._flags = flags
        # flags.active is looked up on every call, never kept: flags.override() and the admin's
        # check sampler replace it on the instance for a while.
        # What flags.override() forces, name -> answer (a live view). An overridden flag answers
        # the same for every context (STATIC); a missing flag or targeting key is no error.
        self._forced: Mapping[str, bool] = flags.overrides
        self._user_from_context = user_from_context or ContextUser
        # The compiled checks, name -> Check (the Rollout's live dict, read, never written).
        self._checks: Mapping[str, Check] = flags._checks
        self._slot = flags._check_slot  # told of resolutions made without flags.active
        # The default ContextUser's id is the targeting key, which a Rollout reading ids as
        # `user.id` takes as it is: the provider then builds it itself, and needs no id read.
        self._context_users = user_from_context is None and flags._id_attribute == "id"
        self._hooks = hook_list
        self._metadata = Metadata(name="rollout")
        # Flag views cached while subscribed (between initialize and shutdown): a change drops
        # the flag's view. The generation keeps a view read before a change from being stored
        # after the change dropped it.
        self._views: dict[str, FlagView] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._status_interval = status_interval
        self._status: StatusWatch | None = None
        # What resolve_boolean_details in C reads (openfeature._native).
        self._fast = provider_state(flags, self._views, self._context_users)

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
            if self._status is None and self._status_interval is not None:
                self._status = StatusWatch(self._flags, self._status_interval, self._emit_status)

    def shutdown(self) -> None:
        """Unsubscribe: no more events. The Rollout stays open (it is the caller's to close)."""
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            if self._status is not None:
                self._status.close()
                self._status = None
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

    def _emit_status(self, event: ProviderEvent, details: ProviderEventDetails) -> None:
        emit = getattr(self, "_on_emit", None)  # read once, as in _changed
        if emit is not None:
            emit(self, event, details)

    # Resolution (OpenFeature 2.2) -----------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        try:
            try:  # the cached view, read here: a call of _view is a third of flags.active()
                view = self._views.get(flag_key) or self._view(flag_key)
            except TypeError:  # unhashable: no such flag
                view = None
            if view is not None and view.targeted_boolean and evaluation_context is not None:
                # The targeted check, its usual case inlined: a context with a str targeting key.
                key = evaluation_context.targeting_key
                if type(key) is not str or not key:
                    key = targeting_key(evaluation_context)
                if key is not None and not self._forced:
                    user: object = key
                    uid = key
                    if not view.groups:  # only predicates see a user object: built for them
                        pass
                    elif self._context_users:  # its id is the key, as the check reads it
                        attributes = evaluation_context.attributes
                        if type(attributes) is dict:  # ContextUser(context), without a call
                            user = made = _new(ContextUser)
                            made.id = made.targeting_key = key
                            made.context = evaluation_context
                            made.__dict__ = attributes.copy()  # as attribute_dict copies it
                        else:  # another mapping, or none: read (or refused) there
                            user, uid = context_user_and_key(evaluation_context, key)
                    else:
                        user, uid = self._user_and_id(flag_key, evaluation_context, key)
                    # The view's resolution function of the flag's check (rollout._core.decide);
                    # None: overridden, deleted or defined since the view was read.
                    check = self._checks.get(flag_key)
                    resolver = view.resolver
                    if resolver is None or resolver[0] is not check:
                        resolver = resolver_of(self._flags, flag_key, view, check)
                    if resolver is not None:
                        resolved = resolver[1](uid, user)
                        if self._slot.wrapped:  # the metrics sampler counts it as a check
                            self._slot.observed(flag_key, resolved.value)
                        return resolved
            if view is not None:
                settled = view.settled
                if settled is not None and not self._forced:
                    # The same answer for every context: the shared one while the flag's check is
                    # the one its view was read with (flags.active costs twice this). The key is
                    # read: a context with an invalid one is an error for every flag.
                    if evaluation_context is not None:
                        targeting_key(evaluation_context)
                    check = self._checks.get(flag_key)
                    if check is not view.check or check is None:
                        self._views.pop(flag_key, None)  # read again (checks are recompiled)
                    elif not self._slot.wrapped:  # else flags.active answers, counted (below)
                        return settled
                if view.defined and view.check is self._checks.get(flag_key):  # else changed
                    return resolve_defined(
                        self._flags, view, default_value, evaluation_context, as_bool
                    )
            evaluated = self._evaluate(flag_key, evaluation_context, view)
            view, answer, reason, metadata = evaluated
            if view.has_value:  # a typed flag: asked for a boolean, its value must be one
                return typed_value(evaluated, default_value, as_bool)
        except DefinedSinceError as error:  # defined since (named as below: no local more to clear)
            return resolve_defined(
                self._flags, error.view, default_value, evaluation_context, as_bool
            )
        except OpenFeatureError as error:
            return failure(default_value, error)
        variant = view.variant if answer else view.off_variant
        return FlagResolutionDetails(answer, None, None, reason, variant, metadata)

    # Its two usual cases in C, where the accelerator is (openfeature._native).
    resolve_boolean_details = accelerated(resolve_boolean_details)

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
        return self.resolve_value_of_version(flag_key, evaluation_context)[0]

    def resolve_value_of_version(
        self, flag_key: str, evaluation_context: EvaluationContext | None = None
    ) -> tuple[FlagResolutionDetails[object], bool]:
        """:meth:`resolve_value_details` and whether the version it answered has a definition
        (OFREP's variant of an answer without one): asked after, :meth:`has_definition` would
        answer for another version when a predicate of the resolution changed the flag."""
        try:
            view = self._view(flag_key)
            if view is not None and view.defined and view.check is self._checks.get(flag_key):
                return resolve_defined_value(self._flags, view, evaluation_context), True
            return any_value(self._evaluate(flag_key, evaluation_context, view)), False
        except DefinedSinceError as since:  # as in resolve_boolean_details
            return resolve_defined_value(self._flags, since.view, evaluation_context), True
        except OpenFeatureError as error:
            return failure(None, error), False

    def has_definition(self, flag_key: str) -> bool:
        """The flag has a definition (variants): ``flags.evaluate`` answers it."""
        view = self._view(flag_key)
        return view is not None and view.defined

    def _typed(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[str, str, object], T],
    ) -> FlagResolutionDetails[T]:
        try:
            view = self._view(flag_key)
            if view is not None and view.defined and view.check is self._checks.get(flag_key):
                return resolve_defined(
                    self._flags, view, default_value, evaluation_context, convert
                )
            evaluated = self._evaluate(flag_key, evaluation_context, view)
            if not evaluated[0].has_value:
                raise TypeMismatchError(
                    f"flag {flag_key!r} has no {VALUE_KEY!r} in its data, so it is a boolean "
                    f"flag (give it one: set_feature_data({flag_key!r}, {{{VALUE_KEY!r}: ...}}))"
                )
            return typed_value(evaluated, default_value, convert)
        except DefinedSinceError as since:  # as in resolve_boolean_details
            view = since.view
            return resolve_defined(self._flags, view, default_value, evaluation_context, convert)
        except OpenFeatureError as error:
            return failure(default_value, error)

    def _evaluate(
        self, flag_key: str, context: EvaluationContext | None, view: FlagView | None
    ) -> Evaluated:
        """The on/off flag's view, the answer for the context, why (``flags.explain``'s
        decision) and the metadata, all of one version of the flag: the view's (the caller's
        while still the flag's, else one read now) and its check's. The snapshot settles the
        reason of a flag on for everybody or that nothing turns on; DefinedSinceError for a
        flag defined now."""
        key = targeting_key(context)
        if self._forced and type(flag_key) is str and flag_key in self._forced:
            answer = self._active(flag_key, key)
            view = view or FlagView(Feature(flag_key))
            return view, answer, Reason.STATIC, view.metadata
        if view is None or view.check is not self._checks.get(flag_key):
            view = self._read(flag_key)  # none, or of a version since replaced: read it now
        if view is None or view.check is None:
            raise FlagNotFoundError(f"no flag named {flag_key!r}")
        if view.defined:
            raise DefinedSinceError(view)
        if view.static or view.disabled:  # the same answer for every context: the view's
            answer = view.static
            if self._slot.wrapped:  # the metrics sampler counts it as a check
                self._slot.observed(flag_key, answer)
            return view, answer, Reason.STATIC if answer else Reason.DISABLED, view.metadata
        check = view.check
        if key is None:
            return without_key(self._flags, check, view, context, self._user)
        user: object = key
        uid = key
        if view.groups and context is not None:
            user, uid = self._user_and_id(flag_key, context, key)
        decision = decide(self._flags, check, uid, user)
        if self._slot.wrapped:  # the metrics sampler counts it as a check
            self._slot.observed(flag_key, decision[0])
        return view, decision[0], REASONS[decision[1]], view.metadata_for(decision)

    def _user_and_id(
        self, flag_key: str, context: EvaluationContext, key: str
    ) -> tuple[object, str]:
        if self._context_users:
            return context_user_and_key(context, key)
        return user_and_id(self._user(context), flag_key, self._flags._check_id)

    def _active(self, flag_key: str, user: object) -> bool:
        try:
            return self._flags.active(flag_key, user)
        except (TypeError, ValueError) as exc:  # the user object has no usable id
            raise InvalidContextError(f"cannot check {flag_key!r} for {user!r}: {exc}") from exc

    def _view(self, flag_key: str) -> FlagView | None:
        """The flag's cached view, else :meth:`_read`'s."""
        try:
            view = self._views.get(flag_key)
        except TypeError:  # unhashable: no such flag
            return None
        if view is not None:
            return view
        return self._read(flag_key)

    def _read(self, flag_key: str) -> FlagView | None:
        """The flag's view read now, its snapshot and its compiled check of one version
        (None: no such flag), cached in place of the one there while subscribed."""
        generation = self._generation
        try:
            if not self._flags.exists(flag_key):
                return None
        except (TypeError, ValueError):  # not a possible flag name
            return None
        view = version_view(self._flags, self._checks, flag_key)
        if view.check is None:  # deleted since
            return None
        with self._lock:
            if self._unsubscribe is not None and generation == self._generation:
                self._views[flag_key] = view
        return view

    def _user(self, context: EvaluationContext) -> object:
        try:
            return self._user_from_context(context)
        except Exception as exc:
            raise GeneralError(f"user_from_context raised {exc!r}") from exc


_new = object.__new__

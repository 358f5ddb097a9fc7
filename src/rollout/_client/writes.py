"""The write half of the public API: every method that changes a flag.

Each method checks all of its arguments first, then makes exactly one write (one timestamp), so
bad input never leaves a flag half-changed.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any

from .._core.state import DATA, DATA_RESET, EXCLUDE, EXISTS, GROUP, PERCENTAGE, RESET, TIME, USER
from .._core.validate import data_mapping, flag_name, member_name, percentage

__all__ = ["FlagName", "WriteAPI"]

#: A flag name: a str, or an Enum member whose value is a str.
FlagName = Any


class WriteAPI(abc.ABC):
    """Write methods of :class:`rollout.Rollout`, built on two primitives it provides."""

    @abc.abstractmethod
    def _write(self, changes: Mapping[str, Mapping[str, Any]], action: str) -> None:
        """Stamp ``{flag: {register key: value}}`` with one timestamp, store it, apply it.

        ``action`` names the change in each flag's history (the public method's name).
        """

    @abc.abstractmethod
    def _user_id(self, user: object, argument: str = "user") -> str:
        """The id of a user (a str/int id or an object), as a str."""

    @abc.abstractmethod
    def _visible_users(self, name: str) -> frozenset[str]: ...

    @abc.abstractmethod
    def features(self) -> list[str]: ...

    # Whole flag -----------------------------------------------------------------------------

    def activate(self, name: FlagName) -> None:
        """On for everybody (percentage 100). Users, groups and exclusions stay as they are."""
        self._write({flag_name(name): {PERCENTAGE: 100.0}}, "activate")

    def deactivate(self, name: FlagName) -> None:
        """Off for everybody: percentages, users, exclusions and groups are all cleared.

        One register (the ``reset`` watermark): a user added concurrently elsewhere with a later
        timestamp survives, as it should. Data is kept.
        """
        self._write({flag_name(name): {RESET: None}}, "deactivate")

    def set(self, name: FlagName, on: bool) -> None:
        """``activate`` when ``on`` is true, else ``deactivate``."""
        if not isinstance(on, bool):
            raise TypeError(f"on must be a bool, got {on!r}")
        if on:
            self.activate(name)
        else:
            self.deactivate(name)

    def delete(self, name: FlagName) -> None:
        """Forget the flag: targeting and data cleared, and it leaves ``features()``."""
        self._write({flag_name(name): _DELETE}, "delete")

    def clear(self) -> None:
        """Delete every flag (one write): ``features()`` is empty afterwards."""
        names = self.features()
        if names:
            self._write(dict.fromkeys(names, _DELETE), "clear")

    # Users ----------------------------------------------------------------------------------

    def activate_user(self, name: FlagName, user: object) -> None:
        self._write({flag_name(name): {USER + self._user_id(user): True}}, "activate_user")

    def deactivate_user(self, name: FlagName, user: object) -> None:
        self._write({flag_name(name): {USER + self._user_id(user): False}}, "deactivate_user")

    def activate_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._write(
            {flag_name(name): dict.fromkeys(self._user_keys(users, USER), True)}, "activate_users"
        )

    def deactivate_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._write(
            {flag_name(name): dict.fromkeys(self._user_keys(users, USER), False)},
            "deactivate_users",
        )

    def set_users(self, name: FlagName, users: Iterable[object]) -> None:
        """Make the listed users exactly these (others listed now are removed)."""
        name = flag_name(name)
        wanted = set(self._user_keys(users, USER))
        removed = {USER + uid for uid in self._visible_users(name)} - wanted
        changes: dict[str, Any] = dict.fromkeys(removed, False)
        changes.update(dict.fromkeys(wanted, True))
        self._write({name: changes}, "set_users")

    def exclude_user(self, name: FlagName, user: object) -> None:
        """Never on for this user, whatever users, groups and percentages say."""
        self._write({flag_name(name): {EXCLUDE + self._user_id(user): True}}, "exclude_user")

    def include_user(self, name: FlagName, user: object) -> None:
        """Undo ``exclude_user``."""
        self._write({flag_name(name): {EXCLUDE + self._user_id(user): False}}, "include_user")

    def exclude_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._write(
            {flag_name(name): dict.fromkeys(self._user_keys(users, EXCLUDE), True)}, "exclude_users"
        )

    def include_users(self, name: FlagName, users: Iterable[object]) -> None:
        self._write(
            {flag_name(name): dict.fromkeys(self._user_keys(users, EXCLUDE), False)},
            "include_users",
        )

    def _user_keys(self, users: Iterable[object], prefix: str) -> list[str]:
        if isinstance(users, str | bytes) or not isinstance(users, Iterable):
            raise TypeError(f"users must be an iterable of users, got {users!r}")
        return [prefix + self._user_id(user, "users item") for user in users]

    # Groups ---------------------------------------------------------------------------------

    def activate_group(self, name: FlagName, group: FlagName) -> None:
        self._write(
            {flag_name(name): {GROUP + member_name(group, "group"): True}}, "activate_group"
        )

    def deactivate_group(self, name: FlagName, group: FlagName) -> None:
        self._write(
            {flag_name(name): {GROUP + member_name(group, "group"): False}}, "deactivate_group"
        )

    # Percentages ----------------------------------------------------------------------------

    def activate_percentage(self, name: FlagName, pct: float) -> None:
        """On for ``pct`` percent of users, the same users every time (Ruby rollout buckets)."""
        self._write({flag_name(name): {PERCENTAGE: percentage(pct, "pct")}}, "activate_percentage")

    def deactivate_percentage(self, name: FlagName) -> None:
        self._write({flag_name(name): {PERCENTAGE: 0.0}}, "deactivate_percentage")

    def activate_percentage_of_time(self, name: FlagName, pct: float) -> None:
        """On for ``pct`` percent of checks, drawn at random on every check."""
        self._write(
            {flag_name(name): {TIME: percentage(pct, "pct")}}, "activate_percentage_of_time"
        )

    def deactivate_percentage_of_time(self, name: FlagName) -> None:
        self._write({flag_name(name): {TIME: 0.0}}, "deactivate_percentage_of_time")

    # Data -----------------------------------------------------------------------------------

    def set_feature_data(self, name: FlagName, data: Mapping[str, Any]) -> None:
        """Merge keys into the flag's data (JSON values); other keys stay."""
        values = data_mapping(data)
        self._write(
            {flag_name(name): {DATA + key: value for key, value in values.items()}},
            "set_feature_data",
        )

    def replace_feature_data(self, name: FlagName, data: Mapping[str, Any]) -> None:
        """Make the flag's data exactly ``data``, in one write (keys not given are removed)."""
        values = data_mapping(data)
        changes: dict[str, Any] = {DATA_RESET: None}
        changes.update({DATA + key: value for key, value in values.items()})
        # The new keys share the watermark's timestamp, and a watermark hides only what is older.
        self._write({flag_name(name): changes}, "replace_feature_data")

    def clear_feature_data(self, name: FlagName) -> None:
        self._write({flag_name(name): {DATA_RESET: None}}, "clear_feature_data")


_DELETE: Mapping[str, Any] = {RESET: None, DATA_RESET: None, EXISTS: False}

"""``help(Rollout.active)`` documents the check, though each instance has its own compiled one."""

from __future__ import annotations

import inspect
import pydoc
import re

from rollout import Rollout


def test_the_class_attribute_active_is_documented() -> None:
    doc = inspect.getdoc(Rollout.active)
    assert doc is not None
    assert doc.startswith("Whether the flag ``name`` is on for ``user``")
    assert "flags.explain(name, user)" in doc
    assert list(inspect.signature(Rollout.active).parameters) == ["self", "name", "user"]


def text(thing: object) -> str:
    """What help() prints, without its bold (each bold letter is "x\\bx")."""
    return re.sub(".\b", "", pydoc.render_doc(thing))


def test_help_on_the_class_shows_it() -> None:
    page = text(Rollout)
    assert "active(self, name: 'FlagName', user: 'object' = None) -> 'bool'" in page
    assert "Whether the flag ``name`` is on for ``user``" in page
    method_page = text(Rollout.active)
    assert "a check without a user" in method_page


def test_instances_still_check_with_their_compiled_closure(flags: Rollout) -> None:
    flags.activate_user("chat", 42)
    # The instance's own class holds its compiled check, overriding the documented method.
    assert type(flags) is not Rollout
    assert isinstance(flags, Rollout)
    assert "active" in vars(type(flags))
    assert flags.active("chat", 42) is True
    documented = vars(Rollout)["active"]  # the class's function (typed as the check's)
    assert documented(flags, "chat", "42") is True  # through the class: the same check
    with flags.override("chat", False):
        assert documented(flags, "chat", 42) is False

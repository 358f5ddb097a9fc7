"""The pytest plugin in ``rollout.testing``, used the way an application's test suite uses it.

Each test writes a small application and its tests into a fresh directory and runs pytest on
them (pytest's own ``pytester``). Installed with rollout, the plugin is active by itself (entry
point ``rollout``); from a source tree that is not installed, ``-p rollout.testing`` loads it.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

APP = """
from rollout import Rollout

flags = Rollout()  # the application's one, module-level instance


def greeting(user):
    return "Welcome to the new home page" if flags.active("new_home", user) else "Hello"
"""


def plugin_arguments() -> list[str]:
    installed = any(e.value == "rollout.testing.plugin" for e in entry_points(group="pytest11"))
    # Loading it twice (entry point and -p) is an error in pytest, so -p only when needed.
    return [] if installed else ["-p", "rollout.testing.plugin"]


def test_the_flags_fixture_is_a_fresh_rollout_per_test_closed_after(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_fixture="""
        from rollout import Rollout

        seen = []

        def test_first(flags):
            assert isinstance(flags, Rollout)
            assert flags.features() == []
            flags.activate("chat")
            assert flags.active("chat")
            seen.append(flags)

        def test_second(flags):
            assert flags.features() == []  # nothing left from the first test
            assert flags is not seen[0]
            assert seen[0].stats()["closed"]
            assert flags.stats()["store"] == "memory"
        """
    )
    result = pytester.runpytest(*plugin_arguments())
    result.assert_outcomes(passed=2)


def test_override_steers_a_module_level_instance(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=APP)
    pytester.makepyfile(
        test_app="""
        import asyncio

        import app


        def test_the_old_page():
            assert app.greeting(42) == "Hello"


        def test_the_new_page_with_a_with_block():
            with app.flags.override("new_home", True):
                assert app.greeting(42) == "Welcome to the new home page"
            assert app.greeting(42) == "Hello"


        @app.flags.override("new_home", True)
        def test_the_new_page_as_a_decorator(flags):  # decorated tests still get fixtures
            assert app.greeting(42) == "Welcome to the new home page"
            assert not flags.active("new_home")  # the fixture's Rollout is another instance


        @app.flags.override("new_home", True)
        async def page():
            await asyncio.sleep(0)
            return app.greeting(42)


        def test_a_decorated_coroutine():
            assert asyncio.run(page()) == "Welcome to the new home page"


        def test_an_override_is_undone_even_after_a_failure():
            app.flags.activate("new_home")
            try:
                with app.flags.override("new_home", False):
                    assert app.greeting(42) == "Hello"
                    raise RuntimeError
            except RuntimeError:
                pass
            assert app.greeting(42) == "Welcome to the new home page"
            assert [e.action for e in app.flags.history("new_home")] == ["activate"]
        """
    )
    result = pytester.runpytest(*plugin_arguments())
    result.assert_outcomes(passed=5)


def test_a_project_fixture_of_the_same_name_wins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from rollout import Rollout

        @pytest.fixture
        def flags():
            with Rollout(defaults={"chat": True}) as rollout:
                yield rollout
        """
    )
    pytester.makepyfile(
        test_own="""
        def test_own_fixture(flags):
            assert flags.active("chat")
        """
    )
    pytester.runpytest(*plugin_arguments()).assert_outcomes(passed=1)


def test_no_rollout_turns_the_installed_plugin_off(pytester: pytest.Pytester) -> None:
    if plugin_arguments():
        pytest.skip("rollout is not installed with its entry point here")
    pytester.makepyfile(
        test_off="""
        def test_needs_flags(flags):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:rollout")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'flags' not found*"])

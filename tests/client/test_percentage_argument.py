"""One word for it: ``percentage``. The old keyword ``pct=`` still works, with a warning."""

from __future__ import annotations

import warnings

import pytest

from rollout import Rollout


@pytest.mark.parametrize("method", ["activate_percentage", "activate_percentage_of_time"])
def test_the_argument_is_called_percentage(flags: Rollout, method: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the name of today
        getattr(flags, method)("chat", percentage=20)
    feature = flags.get("chat")
    assert 20.0 in (feature.percentage, feature.percentage_of_time)


@pytest.mark.parametrize("method", ["activate_percentage", "activate_percentage_of_time"])
def test_pct_is_deprecated_but_still_works(flags: Rollout, method: str) -> None:
    with pytest.deprecated_call(match=rf"^{method}\(pct=\.\.\.\) is deprecated: .* percentage$"):
        getattr(flags, method)("chat", pct=30)
    feature = flags.get("chat")
    assert 30.0 in (feature.percentage, feature.percentage_of_time)


@pytest.mark.parametrize("method", ["activate_percentage", "activate_percentage_of_time"])
def test_both_names_or_neither_is_a_type_error(flags: Rollout, method: str) -> None:
    with pytest.raises(TypeError, match="both percentage and pct"):
        getattr(flags, method)("chat", 10, pct=20)
    with pytest.raises(TypeError, match="missing 1 required argument: 'percentage'"):
        getattr(flags, method)("chat")
    assert flags.features() == []


@pytest.mark.parametrize("method", ["activate_percentage", "activate_percentage_of_time"])
def test_a_bad_percentage_is_named_percentage(flags: Rollout, method: str) -> None:
    with pytest.raises(ValueError, match=r"^percentage must be a number from 0 to 100, got 150$"):
        getattr(flags, method)("chat", 150)
    with pytest.raises(TypeError, match=r"^percentage must be a number from 0 to 100, got '5'$"):
        getattr(flags, method)("chat", "5")
    assert flags.features() == []

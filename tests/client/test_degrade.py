"""Degrade: a feature whose calls fail too often is switched off, once, and stays off."""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import math
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.testing import FakeClock


class RecsError(Exception):
    pass


def call(flags: Rollout, fail: bool, **arguments: object) -> None:
    """One call of the feature, wrapped the way an application writes it at the call site."""
    try:
        with flags.degrade("recs", **arguments):  # type: ignore[arg-type]
            if fail:
                raise RecsError
    except RecsError:
        pass


def calls(flags: Rollout, failures: int, successes: int, **arguments: object) -> None:
    for _ in range(failures):
        call(flags, True, **arguments)
    for _ in range(successes):
        call(flags, False, **arguments)


def degraded_events(flags: Rollout, name: str = "recs") -> list[str | None]:
    return [event.reason for event in flags.history(name) if event.action == "degraded"]


@pytest.fixture
def ticks() -> FakeClock:
    """The degrade window's monotonic clock, in milliseconds, moved only by the test."""
    return FakeClock(start_ms=0)


# Switching off -------------------------------------------------------------------------------


def test_switches_off_once_when_the_share_reaches_the_threshold(
    flags: Rollout, ticks: FakeClock
) -> None:
    told: list[tuple[str, str]] = []

    def page(flag: str, reason: str) -> None:
        told.append((flag, reason))

    flags.activate("recs")
    options = {"threshold": 0.1, "minimum": 100, "clock": ticks, "on_degrade": page}
    calls(flags, 9, 90, **options)  # 9 of 99: below the threshold and below the minimum
    assert flags.active("recs")
    call(flags, True, **options)  # 10 of 100 = 10%
    assert not flags.active("recs")
    reason = "10 of 100 calls failed (10%) in 60 s, threshold 10%"
    assert told == [("recs", reason)]
    event = flags.history("recs")[0]
    assert (event.action, event.actor, event.reason) == ("degraded", "rollout.degrade", reason)
    assert (event.before, event.after) == ({"percentage": 100.0}, {"percentage": 0.0})
    calls(flags, 50, 0, **options)
    assert degraded_events(flags) == [reason]
    assert told == [("recs", reason)]


def test_the_minimum_holds_back_a_verdict_on_too_few_calls(
    flags: Rollout, ticks: FakeClock
) -> None:
    flags.activate("recs")
    calls(flags, 19, 0, minimum=20, clock=ticks)  # every call failed, but only 19 of them
    assert flags.active("recs")
    assert flags.degrade("recs", minimum=20, clock=ticks).counts() == (19, 19)
    call(flags, True, minimum=20, clock=ticks)
    assert not flags.active("recs")


def test_a_share_just_below_the_threshold_keeps_the_feature_on(
    flags: Rollout, ticks: FakeClock
) -> None:
    flags.activate("recs")
    calls(flags, 29, 71, threshold=0.3, clock=ticks)  # 29%
    assert flags.active("recs")
    call(flags, True, threshold=0.3, clock=ticks)  # 30 of 101 = 29.7%
    assert flags.active("recs")
    call(flags, True, threshold=0.3, clock=ticks)  # 31 of 102 = 30.4%
    assert not flags.active("recs")
    assert degraded_events(flags) == ["31 of 102 calls failed (30.4%) in 60 s, threshold 30%"]


def test_only_the_named_exceptions_are_failures_and_all_are_re_raised(
    flags: Rollout, ticks: FakeClock
) -> None:
    flags.activate("recs")
    tracker = flags.degrade("recs", failures=(TimeoutError,), minimum=3, threshold=0.5, clock=ticks)
    with pytest.raises(ValueError, match="bad input"), tracker:
        raise ValueError("bad input")  # not the feature's outage: a call that did not fail
    with pytest.raises(KeyboardInterrupt), tracker:
        raise KeyboardInterrupt  # did not finish: not counted at all
    assert tracker.counts() == (1, 0)
    with pytest.raises(TimeoutError), tracker:
        raise TimeoutError
    assert tracker.counts() == (2, 1)
    with tracker:
        pass
    assert tracker.counts() == (3, 1)
    assert flags.active("recs")  # 1 of 3 failed: 33%
    with pytest.raises(TimeoutError), tracker:
        raise TimeoutError  # 2 of 4 = 50%, at least 3 calls
    assert not flags.active("recs")


def test_a_single_exception_class_is_accepted_as_failures(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")
    tracker = flags.degrade("recs", failures=OSError, minimum=1, clock=ticks)
    with pytest.raises(ConnectionResetError), tracker:
        raise ConnectionResetError  # a subclass counts, as in an except clause
    assert not flags.active("recs")


# The window ----------------------------------------------------------------------------------


def test_failures_older_than_the_window_no_longer_count(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")
    options = {"minimum": 10, "threshold": 0.5, "clock": ticks}
    tracker = flags.degrade("recs", **options)  # type: ignore[arg-type]
    calls(flags, 9, 0, **options)  # at 0 s
    ticks.advance(59_999)
    assert tracker.counts() == (9, 9)  # still inside the last 60 s
    ticks.advance(1)
    assert tracker.counts() == (0, 0)  # 60 s old: slid out
    call(flags, True, **options)
    call(flags, False, **options)
    # Counted forever (as the Ruby gem does), this would be 10 failures of 11 calls: off.
    assert tracker.counts() == (2, 1)
    assert flags.active("recs")


def test_the_window_slides_bucket_by_bucket(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")
    options = {"minimum": 1_000, "window": 6.0, "clock": ticks}  # buckets of 100 ms
    tracker = flags.degrade("recs", **options)  # type: ignore[arg-type]
    for _ in range(12):  # one failure every 500 ms, from 0 to 5.5 s
        call(flags, True, **options)
        ticks.advance(500)
    ticks.set(5_999)
    assert tracker.counts() == (12, 12)
    ticks.set(6_000)
    assert tracker.counts() == (11, 11)
    ticks.set(9_050)
    assert tracker.counts() == (5, 5)  # 3.5, 4.0, 4.5, 5.0, 5.5 s
    ticks.set(100_000)  # a long quiet spell empties it at once
    assert tracker.counts() == (0, 0)


def test_a_clock_that_steps_back_counts_in_the_newest_bucket(
    flags: Rollout, ticks: FakeClock
) -> None:
    flags.activate("recs")
    tracker = flags.degrade("recs", clock=ticks)
    ticks.set(30_000)
    call(flags, False, clock=ticks)
    ticks.set(10_000)
    call(flags, False, clock=ticks)
    assert tracker.counts() == (2, 0)
    ticks.set(89_999)
    assert tracker.counts() == (2, 0)
    ticks.set(90_000)
    assert tracker.counts() == (0, 0)


def test_memory_stays_the_same_whatever_the_call_rate(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")
    options = {"minimum": 10**9, "clock": ticks}

    def traced_after(count: int) -> int:
        tracemalloc.start()
        try:
            for _ in range(count):
                call(flags, False, **options)
                ticks.advance(7)
            gc.collect()
            # What degrade's own code holds: the whole process's traced memory also counts what
            # other threads (a transport left running by an earlier test) allocate meanwhile.
            held = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, "*rollout/_client/degrade*")]
            )
            return sum(stat.size for stat in held.statistics("filename"))
        finally:
            tracemalloc.stop()

    traced_after(10_000)  # every bucket in use
    few, many = traced_after(1_000), traced_after(50_000)
    assert few > 0  # it sees the windows degrade keeps
    assert many - few < 4_096  # 50 times the calls, over 6 windows: no more memory


# The latch -----------------------------------------------------------------------------------


def test_stays_off_until_someone_turns_it_on_then_counts_afresh(
    flags: Rollout, ticks: FakeClock
) -> None:
    options = {"minimum": 10, "threshold": 0.5, "clock": ticks}
    tracker = flags.degrade("recs", **options)  # type: ignore[arg-type]
    flags.activate_percentage("recs", 30)
    calls(flags, 10, 0, **options)
    assert tracker.degraded
    assert flags.get("recs").percentage == 0
    calls(flags, 100, 0, **options)
    flags.set_feature_data("recs", {"owner": "search"})  # a change that leaves it off
    calls(flags, 100, 0, **options)
    assert tracker.degraded
    assert len(degraded_events(flags)) == 1
    assert tracker.counts() == (0, 0)

    flags.activate_user("recs", 42)  # on again, for one user: a fresh start
    assert not tracker.degraded
    assert tracker.counts() == (0, 0)
    calls(flags, 9, 0, **options)
    assert flags.get("recs").users == {"42"}  # nine fresh failures: below the minimum
    call(flags, True, **options)
    assert flags.get("recs").users == frozenset()
    assert len(degraded_events(flags)) == 2


def test_a_flag_already_off_is_not_written_again(flags: Rollout, ticks: FakeClock) -> None:
    told: list[str] = []
    options = {"minimum": 5, "clock": ticks, "on_degrade": lambda flag, reason: told.append(flag)}
    tracker = flags.degrade("recs", **options)  # type: ignore[arg-type]
    flags.activate("recs")
    flags.deactivate("recs")  # switched off by a person (or another process's degrade)
    writes = flags.stats()["writes"]
    calls(flags, 5, 0, **options)
    assert tracker.degraded
    assert flags.stats()["writes"] == writes
    assert degraded_events(flags) == []
    assert told == []
    assert "recs" in flags.features()
    flags.activate("recs")
    calls(flags, 5, 0, **options)
    assert len(degraded_events(flags)) == 1
    assert told == ["recs"]


def test_a_flag_never_written_is_not_created(flags: Rollout, ticks: FakeClock) -> None:
    calls(flags, 200, 0, clock=ticks)
    assert flags.features() == []
    assert flags.history("recs") == []


# Threads and tasks ---------------------------------------------------------------------------


def test_many_threads_crossing_together_make_exactly_one_write(tmp_path: Path) -> None:
    # SQLite: a write lets go of the interpreter while it commits, so other threads keep
    # crossing the threshold while the first switch-off is still being written.
    flags = Rollout(f"sqlite:///{tmp_path / 'flags.db'}")
    told: list[str] = []
    lock = threading.Lock()

    def page(flag: str, reason: str) -> None:
        with lock:
            told.append(reason)

    def yielding_clock() -> float:
        # Hands the interpreter to another thread in the middle of every counted call, so the
        # calls of the eight threads interleave as much as they can.
        time.sleep(0)
        return time.monotonic() * 1000

    options = {"minimum": 50, "threshold": 0.5, "on_degrade": page, "clock": yielding_clock}
    for round_ in range(1, 11):  # each round: on again, then 8 threads fail 25 calls each
        flags.activate("recs")
        writes = flags.stats()["writes"]
        start = threading.Barrier(8)

        def worker(start: threading.Barrier = start) -> None:
            start.wait()
            for _ in range(25):
                call(flags, True, **options)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert flags.stats()["writes"] == writes + 1
        assert len(told) == round_
        assert told[-1] == "50 of 50 calls failed (100%) in 60 s, threshold 50%"
    assert degraded_events(flags) == told
    flags.close()


def test_async_with_and_decorated_coroutines(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")
    options = {"minimum": 4, "threshold": 0.5, "clock": ticks}

    @flags.degrade("recs", **options)  # type: ignore[arg-type]
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise RecsError
        return "ok"

    async def fail_inside_async_with() -> None:
        async with flags.degrade("recs", **options):  # type: ignore[arg-type]
            await asyncio.sleep(0)
            raise RecsError

    async def main() -> list[str]:
        results = [await fetch(False)]
        for _ in range(2):
            with pytest.raises(RecsError):
                await fail_inside_async_with()
        assert flags.active("recs")
        task = asyncio.ensure_future(fetch(False))
        await asyncio.sleep(0)
        task.cancel()  # cancelled: not counted
        with pytest.raises(asyncio.CancelledError):
            await task
        assert flags.degrade("recs", **options).counts() == (3, 2)  # type: ignore[arg-type]
        results.append(await fetch(False))  # 2 of 4 failed
        return results

    assert asyncio.run(main()) == ["ok", "ok"]
    assert not flags.active("recs")


def test_a_decorated_function_keeps_its_name_and_result(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")

    @flags.degrade("recs", minimum=3, threshold=0.5, clock=ticks)
    def recommend(user: int, *, fail: bool = False) -> list[int]:
        """Some recommendations."""
        if fail:
            raise RecsError(user)
        return [user, user + 1]

    assert recommend.__name__ == "recommend"
    assert recommend.__doc__ == "Some recommendations."
    assert recommend(1) == [1, 2]
    with pytest.raises(RecsError):
        recommend(2, fail=True)
    assert flags.active("recs")
    with pytest.raises(RecsError):
        recommend(3, fail=True)
    assert not flags.active("recs")


def test_generator_functions_cannot_be_decorated(flags: Rollout) -> None:
    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        flags.degrade("recs")(numbers)
    with pytest.raises(TypeError, match="decorates a function"):
        flags.degrade("recs")(3)  # type: ignore[arg-type]


# Replication ---------------------------------------------------------------------------------


def test_the_switch_off_reaches_another_process_sharing_the_store(
    tmp_path: Path, ticks: FakeClock
) -> None:
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    with Rollout(url, node_name="web-1") as web1, Rollout(url, node_name="web-2") as web2:
        web1.activate("recs")
        web2.refresh()
        options = {"minimum": 10, "threshold": 0.5, "clock": ticks}
        calls(web1, 10, 0, **options)
        assert web2.active("recs")
        assert web2.refresh() == {"recs"}
        assert not web2.active("recs")
        (event,) = [e for e in web2.history("recs") if e.action == "degraded"]
        assert (event.node, event.actor) == ("web-1", "rollout.degrade")
        # web-2's own calls fail as well: it sees the flag already off and writes nothing more.
        calls(web2, 10, 0, **options)
        assert web2.degrade("recs", **options).degraded  # type: ignore[arg-type]
        assert len(degraded_events(web2)) == 1
        web1.refresh()
        assert len(degraded_events(web1)) == 1


def test_the_switch_off_travels_in_an_export(flags: Rollout, ticks: FakeClock) -> None:
    with Rollout() as other:
        flags.activate("recs")
        other.merge(flags.export())
        calls(flags, 100, 0, clock=ticks)
        assert other.merge(flags.export()) == {"recs"}
        assert not other.active("recs")
        assert [e.action for e in other.history("recs")] == ["degraded", "activate"]


# Callbacks and errors ------------------------------------------------------------------------


def test_a_failing_callback_is_logged_and_the_others_still_run(
    flags: Rollout, ticks: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[str] = []

    def broken(flag: str, reason: str) -> None:
        raise RuntimeError("pager down")

    def good(flag: str, reason: str) -> None:
        told.append(flag)

    flags.activate("recs")
    with caplog.at_level(logging.WARNING, logger="rollout"):
        calls(flags, 1, 0, minimum=1, on_degrade=[broken, good], clock=ticks)
    assert told == ["recs"]
    assert "pager down" in caplog.text
    assert "on_degrade callback" in caplog.text
    assert "switched off: 1 of 1 calls failed (100%)" in caplog.text


def test_a_switch_off_that_cannot_be_written_never_breaks_the_call(
    flags: Rollout, ticks: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    flags.activate("recs")
    tracker = flags.degrade("recs", minimum=2, clock=ticks)
    flags.close()  # writes are refused from now on
    with caplog.at_level(logging.ERROR, logger="rollout"), pytest.raises(RecsError), tracker:
        raise RecsError
    with caplog.at_level(logging.ERROR, logger="rollout"), pytest.raises(RecsError), tracker:
        raise RecsError  # the user's own exception comes out, not ClosedError
    assert "could not be switched off" in caplog.text
    assert flags.active("recs")
    assert not tracker.degraded
    assert tracker.counts() == (0, 0)  # a fresh window: it tries again after `minimum` more


# Sharing and arguments -----------------------------------------------------------------------


class Flag(enum.Enum):
    RECS = "recs"


def test_the_same_arguments_give_the_same_tracker(flags: Rollout) -> None:
    def page(flag: str, reason: str) -> None: ...

    first = flags.degrade("recs", threshold=0.2, on_degrade=page)
    assert flags.degrade("recs", threshold=0.2, on_degrade=page) is first
    assert flags.degrade(Flag.RECS, threshold=0.2, on_degrade=[page]) is first
    assert flags.degrade("recs", threshold=0.2, on_degrade=page, failures=[Exception]) is first
    assert flags.degrade("other") is not first
    with Rollout() as other:
        assert other.degrade("recs", threshold=0.2, on_degrade=page) is not first


def test_other_arguments_for_a_tracked_name_are_refused_by_name(flags: Rollout) -> None:
    def page(flag: str, reason: str) -> None: ...

    flags.degrade("recs", threshold=0.2, on_degrade=page)
    with pytest.raises(ValueError, match=r"threshold=0\.2 \(now 0\.5\)") as error:
        flags.degrade("recs", threshold=0.5, minimum=5, on_degrade=page)
    assert "minimum=100 (now 5)" in str(error.value)
    with pytest.raises(ValueError, match="not a lambda made per call"):
        flags.degrade("recs", threshold=0.2, on_degrade=lambda flag, reason: None)
    with pytest.raises(ValueError, match="clock="):
        flags.degrade("recs", threshold=0.2, on_degrade=page, clock=FakeClock())


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"threshold": 0}, ValueError, "threshold must be above 0 and at most 1, got 0"),
        ({"threshold": 1.5}, ValueError, "threshold must be above 0 and at most 1, got 1.5"),
        ({"threshold": math.nan}, ValueError, "threshold must be above 0"),
        ({"threshold": "10%"}, TypeError, "threshold must be a number .* got '10%'"),
        ({"threshold": True}, TypeError, "threshold must be a number .* got True"),
        ({"minimum": 0}, ValueError, "minimum must be >= 1, got 0"),
        ({"minimum": 1.5}, TypeError, "minimum must be an int >= 1, got 1.5"),
        ({"window": 0}, ValueError, "window must be a positive, finite number .* got 0"),
        ({"window": math.inf}, ValueError, "window must be a positive, finite .* got inf"),
        ({"window": "60"}, TypeError, "window must be a number of seconds, got '60'"),
        ({"failures": ()}, ValueError, r"failures must name at least one .* got \(\)"),
        (
            {"failures": "RecsError"},
            TypeError,
            "failures must be an exception class .* got 'RecsError'",
        ),
        ({"failures": (OSError, 3)}, TypeError, "failures must hold exception classes, got 3"),
        ({"failures": int}, TypeError, "failures must be an exception class .* got <class 'int'>"),
        ({"on_degrade": 3}, TypeError, "on_degrade must be a callable .* got 3"),
        ({"on_degrade": [print, 3]}, TypeError, "on_degrade must be a callable .* got 3"),
        ({"clock": 3}, TypeError, "clock must be a callable returning milliseconds, got 3"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument_and_value(
    flags: Rollout, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        flags.degrade("recs", **arguments)  # type: ignore[arg-type]
    assert flags.degrade("recs") is flags.degrade("recs")  # nothing half-made was kept


def test_a_bad_name_is_refused(flags: Rollout) -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        flags.degrade(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must not be empty"):
        flags.degrade("")


def test_repr_says_where_the_count_stands(flags: Rollout, ticks: FakeClock) -> None:
    flags.activate("recs")
    calls(flags, 2, 3, clock=ticks)
    assert repr(flags.degrade("recs", clock=ticks)) == "<Degrade 'recs' 2/5 failed in 60 s>"

"""StepThreads: plain step functions on threads, their outcomes back on the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from replayflow.processors.step_threads import StepThreads


def test_a_call_runs_on_a_step_thread_and_its_value_comes_back() -> None:
    threads = StepThreads(4)

    async def main() -> tuple[int, str]:
        value = await threads.run(lambda a, b: a + b, 2, 3)
        name = await threads.run(lambda: threading.current_thread().name)
        return value, name

    value, name = asyncio.run(main())
    threads.close()
    assert value == 5
    assert name.startswith("replayflow-step_")


def test_an_exception_is_raised_where_the_call_is_awaited() -> None:
    threads = StepThreads(2)

    def fails() -> None:
        raise KeyError("missing")

    async def main() -> None:
        with pytest.raises(KeyError, match="missing"):
            await threads.run(fails)
        assert await threads.run(lambda: "after") == "after"  # the thread serves on

    asyncio.run(main())
    threads.close()


def test_no_more_than_size_calls_run_at_once_and_the_rest_wait_their_turn() -> None:
    threads = StepThreads(3)
    lock = threading.Lock()
    running = [0]
    most = [0]
    release = threading.Event()

    def blocking(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return i

    async def main() -> list[int]:
        calls = [threads.run(blocking, i) for i in range(10)]
        while running[0] < 3:  # the first three run; seven wait for a thread
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert running[0] == 3
        release.set()
        return list(await asyncio.gather(*calls))

    assert asyncio.run(main()) == list(range(10))
    threads.close()
    assert most[0] == 3
    assert len(threads._threads) == 3


def test_calls_one_after_another_need_one_thread() -> None:
    threads = StepThreads(8)

    async def main() -> None:
        for i in range(20):
            assert await threads.run(lambda n: n * 2, i) == i * 2

    asyncio.run(main())
    threads.close()
    assert len(threads._threads) == 1


def test_a_call_whose_wait_timed_out_is_dropped_and_the_next_are_served() -> None:
    threads = StepThreads(2)
    release = threading.Event()

    async def main() -> str:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await threads.run(release.wait, 10)
        release.set()  # the abandoned call returns; its outcome goes nowhere
        return str(await threads.run(lambda: "next"))

    assert asyncio.run(main()) == "next"
    threads.close()


def test_many_short_calls_all_come_back() -> None:
    threads = StepThreads(8)

    async def main() -> list[int]:
        return list(await asyncio.gather(*(threads.run(lambda n: n + 1, i) for i in range(2000))))

    assert asyncio.run(main()) == [i + 1 for i in range(2000)]
    threads.close()


def test_close_cancels_the_calls_not_begun() -> None:
    threads = StepThreads(1)
    release = threading.Event()

    async def main() -> tuple[bool, bool]:
        first = threads.run(release.wait, 10)
        waiting = threads.run(lambda: "never")
        await asyncio.sleep(0.05)  # the first is running, the second queued
        threads.close()
        release.set()
        await asyncio.wait_for(asyncio.shield(first), 5)
        return waiting.cancelled(), first.result()

    cancelled, first = asyncio.run(main())
    assert cancelled and first is True
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(_run_after_close(threads))


async def _run_after_close(threads: StepThreads) -> None:
    await threads.run(lambda: None)


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one"):
        StepThreads(0)

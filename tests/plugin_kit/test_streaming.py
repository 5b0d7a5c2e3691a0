"""ThreadStream: a blocking call with callbacks, received as a generator (studio.plugin_kit.streaming)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from studio.plugin_kit.streaming import ThreadStream


def test_items_arrive_in_order_and_the_result_comes_back():
    seen_threads = set()
    with ThreadStream[int]("t") as stream:
        def call():
            seen_threads.add(threading.current_thread().name)
            for i in range(50):
                stream.emit(i)
            return "done"

        stream.start(call)
        assert list(stream) == list(range(50))
    assert stream.result() == "done" and seen_threads == {"t"}


def test_the_calls_exception_is_raised_on_the_consumer_after_earlier_items():
    class BoomError(Exception):
        pass

    stream: ThreadStream[int] = ThreadStream()

    def call():
        stream.emit(1)
        raise BoomError("bad")

    stream.start(call)
    got = []
    with pytest.raises(BoomError, match="bad"):
        for item in stream:
            got.append(item)
    assert got == [1]
    stream.close()


def test_closing_early_tells_the_call_and_waits_for_it():
    stopped_by_consumer = threading.Event()
    stream: ThreadStream[int] = ThreadStream()

    def call():
        i = 0
        while not stream.consumer_gone:
            stream.emit(i)
            i += 1
            time.sleep(0.001)
        stopped_by_consumer.set()

    def consume():
        with stream:
            stream.start(call)
            yield from stream

    gen = consume()
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()  # what the engine does on Cancel
    assert stopped_by_consumer.is_set() and stream.finished


def test_batches_group_fast_items_and_wake_on_timeout():
    release = threading.Event()
    stream: ThreadStream[int] = ThreadStream()

    def call():
        release.wait(5)
        for i in range(100):
            stream.emit(i)

    stream.start(call)
    batches = stream.batches(timeout=0.01, min_interval=0.05)
    assert next(batches) == []  # nothing yet: woken by the timer
    release.set()
    got = [b for b in batches if b]
    assert [i for b in got for i in b] == list(range(100))
    assert len(got) < 100  # items made faster than min_interval arrived together
    stream.close()


def test_an_executor_thread_is_reused():
    names = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kit-run") as pool:
        for _ in range(2):
            with ThreadStream[str](executor=pool) as stream:
                stream.start(lambda s=stream: s.emit(threading.current_thread().name))
                names += list(stream)
    assert len(set(names)) == 1 and names[0].startswith("kit-run")


def test_result_before_the_end_is_an_error():
    gate = threading.Event()
    stream: ThreadStream[int] = ThreadStream()
    stream.start(lambda: gate.wait(5))
    with pytest.raises(RuntimeError):
        stream.result()
    gate.set()
    list(stream)
    assert stream.result() is True

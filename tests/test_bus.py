"""The frame bus on its own, with tiny stages: order, flushing, dropping, errors, teardown, Ctrl-C."""

from __future__ import annotations

import _thread
import signal
import threading
import time

import pytest

from being_kernel.bus import END, Bus, BoundedQueue, Packet, Source, Stage
from being_kernel.errors import StageError


class Count(Source):
    name = "count"

    def __init__(self, n: int, fps: float = 25.0, delay: float = 0.0) -> None:
        self.n, self.fps, self.delay, self.torn = n, fps, delay, 0

    def packets(self):
        for i in range(self.n):
            if self.delay:
                time.sleep(self.delay)
            yield Packet(i, i / self.fps, i)

    def teardown(self) -> None:
        self.torn += 1


class Pairs(Stage):
    """Holds one packet back and emits pairs: flush must release the last one."""

    name = "pairs"

    def __init__(self, fail_at: int | None = None) -> None:
        self.held, self.fail_at, self.torn = None, fail_at, 0

    def process(self, p):
        if p.index == self.fail_at:
            raise ValueError(f"bad frame {p.index}")
        if self.held is None:
            self.held = p
            return []
        out, self.held = [self.held, p], None
        return out

    def flush(self):
        return [self.held] if self.held is not None else []

    def teardown(self) -> None:
        self.torn += 1


class Collect(Stage):
    name = "sink"

    def __init__(self, delay: float = 0.0) -> None:
        self.items, self.delay, self.flushed, self.torn = [], delay, False, 0

    def process(self, p):
        if self.delay:
            time.sleep(self.delay)
        self.items.append(p)
        return []

    def flush(self):
        self.flushed = True
        return []

    def teardown(self) -> None:
        self.torn += 1


def test_offline_keeps_every_packet_in_order_and_flushes() -> None:
    src, mid, sink = Count(101), Pairs(), Collect(delay=0.001)
    stats = Bus(src, [mid, sink], mode="offline", maxsize=2).run()
    assert [p.index for p in sink.items] == list(range(101))  # 101 is odd: the last came from flush
    assert [p.pts for p in sink.items] == [i / 25.0 for i in range(101)]
    assert sink.flushed and stats.dropped == {"pairs": 0, "sink": 0}
    assert (src.torn, mid.torn, sink.torn) == (1, 1, 1)


def test_live_drops_the_oldest_and_keeps_the_newest() -> None:
    sink = Collect(delay=0.02)  # 50/s consumer behind a producer as fast as it can go
    stats = Bus(Count(200), [sink], mode="live", maxsize=4).run()
    got = [p.index for p in sink.items]
    assert stats.dropped["sink"] > 0 and len(got) + stats.dropped["sink"] == 200
    assert got == sorted(got) and got[-1] == 199  # newest survive, order kept
    assert sink.flushed  # END is never dropped


def test_bounded_queue_live_never_drops_end() -> None:
    q = BoundedQueue(1, "live", threading.Event())
    q.put(Packet(0, 0.0, None))
    q.put(Packet(1, 0.0, None))  # drops packet 0
    assert q.dropped == 1
    got = q.get()
    assert got.index == 1
    q.put(END)
    assert q.get() is END


def test_a_failing_stage_stops_everything_and_all_teardowns_run() -> None:
    src, mid, sink = Count(10_000), Pairs(fail_at=5), Collect()
    with pytest.raises(StageError) as err:
        Bus(src, [mid, sink], maxsize=2).run()
    assert err.value.stage == "pairs" and "ValueError: bad frame 5" in str(err.value)
    assert isinstance(err.value.cause, ValueError)
    assert (src.torn, mid.torn, sink.torn) == (1, 1, 1)
    assert not sink.flushed and len(sink.items) < 10


def test_a_failing_teardown_is_reported_after_the_others_ran() -> None:
    class BadTeardown(Collect):
        def teardown(self) -> None:
            super().teardown()
            raise OSError("disk gone")

    src, mid, sink = Count(3), Pairs(), BadTeardown()
    with pytest.raises(StageError, match="disk gone"):
        Bus(src, [mid, sink]).run()
    assert (src.torn, mid.torn, sink.torn) == (1, 1, 1)


def test_ctrl_c_stops_the_bus_and_tears_everything_down() -> None:
    src, sink = Count(10_000, delay=0.01), Collect()
    # A runner started in the background may have inherited SIGINT as ignored: restore Ctrl-C.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            Bus(src, [sink]).run()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert (src.torn, sink.torn) == (1, 1) and not sink.flushed and 0 < len(sink.items) < 10_000

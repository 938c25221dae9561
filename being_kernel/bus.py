"""The frame bus: stages on threads joined by bounded queues.

    source ──q──▶ stage ──q──▶ stage ──q──▶ sink

* Every item is a ``Packet`` with its frame index and presentation time; ``END`` is the in-band
  end-of-stream message, which each stage forwards after flushing what it still holds.
* ``offline`` mode blocks a full queue (nothing is ever dropped); ``live`` mode drops the oldest
  packet of a full queue, so latency stays bounded when a stage is slower than real time.
* A stage that raises stops the whole bus; the first error is re-raised as ``StageError`` after
  every stage's ``teardown`` has run. Ctrl-C (KeyboardInterrupt in the main thread) stops the
  bus the same way and is re-raised after teardown.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Literal

from .errors import StageError

Mode = Literal["offline", "live"]
_POLL_S = 0.05  # how often blocked threads look at the stop flag


@dataclass(frozen=True)
class Packet:
    """One item on the bus: ``payload`` for frame ``index`` presented at ``pts`` seconds."""

    index: int
    pts: float
    payload: Any


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()


class Stopped(Exception):
    """Raised inside a stage's thread when the bus is stopping; never escapes the bus."""


class BoundedQueue:
    """A queue of at most ``maxsize`` items; ``put`` blocks (offline) or drops the oldest (live)."""

    def __init__(self, maxsize: int, mode: Mode, stop: threading.Event) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._items: deque = deque()
        self._maxsize, self._mode, self._stop = maxsize, mode, stop
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            # END is never dropped: it waits for room like an offline put.
            if self._mode == "live" and item is not END:
                while len(self._items) >= self._maxsize:
                    victim = next((i for i, x in enumerate(self._items) if x is not END), None)
                    if victim is None:
                        break
                    del self._items[victim]
                    self.dropped += 1
            while len(self._items) >= self._maxsize:
                if self._stop.is_set():
                    raise Stopped
                self._cond.wait(_POLL_S)
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> Any:
        with self._cond:
            while not self._items:
                if self._stop.is_set():
                    raise Stopped
                self._cond.wait(_POLL_S)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def __len__(self) -> int:
        return len(self._items)


class Stage:
    """A step of the bus. Subclasses override what they need.

    ``process`` maps one input packet to any number of output packets; ``flush`` yields what is
    still held at end of stream; ``teardown`` always runs once, after the bus has stopped."""

    name = "stage"

    def process(self, packet: Packet) -> Iterable[Packet]:
        return (packet,)

    def flush(self) -> Iterable[Packet]:
        return ()

    def teardown(self) -> None:
        pass


class Source(Stage):
    """The first stage: ``packets`` yields the stream; ``process`` is not used."""

    def packets(self) -> Iterator[Packet]:
        raise NotImplementedError


@dataclass
class BusStats:
    dropped: dict[str, int]  # packets dropped at each stage's input queue (live mode)


class Bus:
    """Runs ``source -> stages... -> sink`` (the sink is the last of ``stages``)."""

    def __init__(self, source: Source, stages: list[Stage], mode: Mode = "offline", maxsize: int = 8) -> None:
        if not stages:
            raise ValueError("a bus needs at least a sink stage")
        self.source, self.stages, self.mode = source, stages, mode
        self._stop = threading.Event()
        self._queues = [BoundedQueue(maxsize, mode, self._stop) for _ in stages]
        self._error: tuple[str, BaseException] | None = None
        self._lock = threading.Lock()

    def _fail(self, stage: Stage, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = (stage.name, exc)
        self._stop.set()

    def _run_source(self) -> None:
        out = self._queues[0]
        try:
            for packet in self.source.packets():
                if self._stop.is_set():
                    return
                out.put(packet)
            out.put(END)
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            self._fail(self.source, exc)

    def _run_stage(self, i: int) -> None:
        stage, inq = self.stages[i], self._queues[i]
        outq = self._queues[i + 1] if i + 1 < len(self._queues) else None
        try:
            while True:
                item = inq.get()
                if item is END:
                    for packet in stage.flush():
                        if outq is not None:
                            outq.put(packet)
                    if outq is not None:
                        outq.put(END)
                    return
                for packet in stage.process(item):
                    if outq is not None:
                        outq.put(packet)
        except Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            self._fail(stage, exc)

    def run(self) -> BusStats:
        """Run to the end of the stream. Raises StageError (a stage failed) or KeyboardInterrupt;
        in every case all threads are joined and every stage's teardown has run."""
        threads = [threading.Thread(target=self._run_source, name=f"being-{self.source.name}", daemon=True)]
        threads += [
            threading.Thread(target=self._run_stage, args=(i,), name=f"being-{s.name}", daemon=True)
            for i, s in enumerate(self.stages)
        ]
        interrupted = False
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():  # join in slices so Ctrl-C reaches this thread
                    t.join(_POLL_S)
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
            for t in threads:
                t.join()
        finally:
            teardown_error = self._teardown_all()
        if interrupted:
            raise KeyboardInterrupt
        if self._error is not None:
            raise StageError(*self._error) from self._error[1]
        if teardown_error is not None:
            raise StageError(*teardown_error) from teardown_error[1]
        return BusStats({s.name: q.dropped for s, q in zip(self.stages, self._queues)})

    def _teardown_all(self) -> tuple[str, BaseException] | None:
        first: tuple[str, BaseException] | None = None
        for stage in [self.source, *self.stages]:
            try:
                stage.teardown()
            except BaseException as exc:  # noqa: BLE001 - every teardown must get its turn
                first = first or (stage.name, exc)
        return first

"""A batch call's phone recognition spread over the CPU cores.

A stream ends its recognizer's utterance in pauses (``phones.UtteranceCuts``) and begins each one
with a fresh front end, so every utterance decodes exactly as it would alone. A batch call knows
the whole clip: it finds the cuts first, decodes each utterance in a pool of worker processes
(``PhoneDecoder.decode_alone``: the phones after each 40 ms block, and the final ones), and the
motion then reads those phones block by block (``DecodedPhones``) just as it reads a live decoder.
So ``generate`` still equals any streaming of the clip, bit for bit (tested).

Processes, not threads: pocketsphinx holds the GIL while it decodes. The pool is shared by the
viseme models of the process: started when the first model that wants it is made (its workers load
pocketsphinx's models while the other plugins load), stopped when the last one is closed. Workers
also end by themselves when their parent process has ended.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from .phones import BLOCK, Phone, PhoneDecoder, PhoneHistory, pcm16, utterance_starts

log = logging.getLogger(__name__)

#: The most worker processes a pool gets by default (each holds its own pocketsphinx models: 168 MB
#: with word recognition, 75 MB without, measured on the 2-core development machine).
MAX_WORKERS = 8

Decoded = tuple[list[list[Phone]], list[Phone]]  # (phones after each whole block, final phones)

_POOLS: dict[tuple[bool, int], ProcessPoolExecutor] = {}
_USERS: dict[tuple[bool, int], int] = {}  # models holding each pool (``acquire`` / ``release``)
_LOCK = threading.Lock()
_DECODER: PhoneDecoder | None = None  # in a worker process


def default_workers() -> int:
    """One worker per CPU core this process may use, at most MAX_WORKERS. ``OMP_NUM_THREADS``, when
    set, is taken as this process's share of the cores (Ray sets it to an actor's CPUs, so the
    render workers of ``being batch`` do not each start a pool as large as the machine)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    share = os.environ.get("OMP_NUM_THREADS", "")
    if share.isdigit() and int(share) > 0:
        cores = min(cores, int(share))
    return max(1, min(MAX_WORKERS, cores))


def _start_worker(words: bool, parent: int) -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides what stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    global _DECODER
    _DECODER = PhoneDecoder(words=words, cut=False)
    _DECODER.end_utterance()


def _end_with(parent: int) -> None:
    """End this worker once the process that made it has ended, however it ended: an exit by
    ``os._exit`` or a kill skips the pool's shutdown, and an orphan would hold the parent's
    stdout and stderr open for whoever reads them."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> None:
    """A task that returns once its worker is up (its decoder is made by then)."""


def _decode(pcm: np.ndarray, start: int) -> Decoded:
    assert _DECODER is not None
    return _DECODER.decode_alone(pcm, start)


def pool(words: bool, workers: int) -> ProcessPoolExecutor:
    """The process-wide pool of ``workers`` recognizers (with word recognition if ``words``),
    started on first use: all its workers are asked to come up now, in the background."""
    key = (words, workers)
    with _LOCK:
        if key not in _POOLS:
            executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start_worker, initargs=(words, os.getpid()))
            with _main_script_hidden():
                for _ in range(workers):  # a spawn pool starts a worker for each task that waits
                    executor.submit(_ready)
            _POOLS[key] = executor
        return _POOLS[key]


def acquire(words: bool, workers: int) -> None:
    """A model will use ``pool(words, workers)``: start it now, and keep it until ``release``."""
    pool(words, workers)
    with _LOCK:
        _USERS[(words, workers)] = _USERS.get((words, workers), 0) + 1


def release(words: bool, workers: int) -> None:
    """A model is done with the pool; the last one stops its workers at once (an utterance being
    decoded is not waited for: on Ctrl-C that could be seconds) and frees its queues, so an exit
    right after (the CLI's, by ``os._exit``) leaves neither processes nor semaphores behind."""
    key = (words, workers)
    with _LOCK:
        _USERS[key] = _USERS.get(key, 1) - 1
        if _USERS[key] > 0 or key not in _POOLS:
            return
        executor = _POOLS.pop(key)
    for process in list(executor._processes.values()):  # no public way to stop a running task
        process.terminate()
    executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start processes without the caller's main script: spawn would run it again in each worker
    (as ``__mp_main__``), and a script without a ``__main__`` guard would start over there. The
    workers need nothing of it."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def decode(samples: np.ndarray, words: bool, workers: int) -> DecodedPhones | None:
    """The phones of a whole clip (float ``samples`` [N] at 16 kHz), decoded an utterance per task
    on ``pool(words, workers)``; None if the clip is one utterance (nothing to spread) or the pool
    broke (a worker was killed: the caller then decodes in its own process, after a warning)."""
    pcm = pcm16(samples)
    starts = utterance_starts(pcm)
    if len(starts) < 2:
        return None
    ends = starts[1:] + [len(pcm)]
    executor = pool(words, workers)
    futures: dict[int, Future] = {}
    try:
        # the longest first, so no worker is left with a long one at the end
        for i in sorted(range(len(starts)), key=lambda i: starts[i] - ends[i]):
            futures[i] = executor.submit(_decode, pcm[starts[i]:ends[i]], starts[i])
        decoded = [futures[i].result() for i in range(len(starts))]
    except BrokenProcessPool as e:
        with _LOCK:
            _POOLS.pop((words, workers), None)
        log.warning("viseme: the recognizer processes stopped (%s); decoding in this process instead", e)
        return None
    finally:
        for f in futures.values():  # on an error or an interrupt, what has not begun never will
            f.cancel()
    return DecodedPhones(starts, decoded, len(pcm))


class DecodedPhones(PhoneHistory):
    """Phones decoded beforehand (``decode``), served block by block as a ``PhoneDecoder`` serves
    them while it decodes: utterance ``u`` begins at sample ``starts[u]`` and ``decoded[u]`` holds
    its phones after each whole block and its final ones; ``total`` samples in all."""

    def __init__(self, starts: list[int], decoded: list[Decoded], total: int) -> None:
        self.starts, self.decoded, self.total = starts, decoded, total
        self.fed = 0
        self.queued = 0  # samples given and not yet stepped over
        self.utt = 0  # the open utterance
        self._open: list[Phone] = []
        self._done = []
        self._final = None

    def feed_blocks(self, samples: np.ndarray) -> int:
        self.queued += len(samples)
        return self.queued // BLOCK

    def step(self) -> None:
        self.queued -= BLOCK
        self.fed += BLOCK
        partials, final = self.decoded[self.utt]
        if self.utt + 1 < len(self.starts) and self.fed == self.starts[self.utt + 1]:
            self._done.extend(final)  # the stream ended this utterance after this block
            self.utt += 1
            self._open = []
        else:
            self._open = partials[(self.fed - self.starts[self.utt]) // BLOCK - 1]

    def end(self) -> None:
        self.fed += self.queued
        self.queued = 0
        assert self.fed == self.total and self.utt == len(self.starts) - 1, "fed other audio than was decoded"
        self._finish(self.decoded[self.utt][1])

    def _read(self) -> list[Phone]:
        return self._open

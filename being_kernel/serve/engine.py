"""The engine: all live sessions of one loaded plugin triple, run on one thread at the motion frame
rate.

Each tick, every session speaks one frame of audio (queued speech, or silence when idle) into its
own audio model stream. The motion frames that became final are rendered and composited together:
in one batch across sessions when the renderer and compositor treat frames independently (their
streams are ``FramewiseRenderStream``/``FramewiseStream``), else through each session's own streams.
A frame that cannot be made before its presentation time is skipped (the session shows the one
before), so a slow machine drops frames instead of falling behind."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..contracts import FramewiseRenderStream, FramewiseStream, Stream
from ..media.clip import LoadedTriple
from ..media.images import to_uint8
from ..types import Frame, Motion
from .session import LiveSession

log = logging.getLogger(__name__)
MAX_AUTO_MARGIN_S = 1.0


@dataclass
class _Streams:
    """A session's own render and composite streams (plugins that are not framewise), and the frame
    indices pushed into each and not yet out."""

    render: Stream
    composite: Stream
    render_pending: list[int]
    composite_pending: list[int]


class Engine:
    """Runs live sessions on ``triple``'s plugins (which only this engine's thread calls).

    margin_s: playout margin on top of the audio model's latency (time to render and send a frame), at
    least twice a frame's measured cost plus a tick; max_batch: most frames rendered in one call."""

    def __init__(self, triple: LoadedTriple, *, margin_s: float = 0.12, max_batch: int = 64) -> None:
        self.triple = triple
        self.audio, self.renderer, self.compositor = (triple.plugins[c] for c in ("audio", "avatar", "torso"))
        self.audio_info = self.audio.info()
        self.pose_only = triple.check.pose_only
        self.fps = self.audio_info.fps
        self.max_batch = max_batch
        # framewise plugins: one stream of each serves every session, a batch of their frames a call
        self._render, self._composite = self.renderer.open_stream(), self.compositor.open_stream()
        self.framewise = isinstance(self._render, FramewiseRenderStream) and isinstance(self._composite, FramewiseStream)
        self._sessions: dict[str, LiveSession] = {}
        self._streams: dict[str, _Streams] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set to end a wait for the next tick early
        self._t0 = time.monotonic()
        self._tick = 0  # next engine tick
        self._cost_s = self._warm_up()  # running estimate of one frame's render + composite, seconds
        self._margin_floor = margin_s
        self._checked = time.monotonic()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="being-serve-engine", daemon=True)
        self._thread.start()

    @property
    def margin_s(self) -> float:
        """The playout margin a session needs now: the configured one, or time to make a frame (twice
        its running cost plus a tick) when that is more, up to MAX_AUTO_MARGIN_S (beyond it a live
        session drops frames instead of lagging further): a slow machine trades latency for frames."""
        return max(self._margin_floor, min(2 * self._cost_s + 1 / self.fps, MAX_AUTO_MARGIN_S))

    def _adapt_leads(self, sessions: list[LiveSession]) -> None:
        """Once a second: a session whose lead no longer leaves time to make its frames (the machine
        got busier) is given more; sound and picture wait together, once, and stay locked. Leads
        only grow, so the sound is not cut."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        need = self.audio_info.latency_s + self.margin_s
        for s in sessions:
            if need > s.lead_s + 0.5 / self.fps:
                log.info("session %s: lead %.0f -> %.0f ms (frames take %.0f ms)", s.id, 1000 * s.lead_s,
                         1000 * need, 1000 * self._cost_s)
                s.lead_s = need

    def _warm_up(self) -> float:
        """Render and composite one still frame four times (the first pays for compilation and
        caches); the median of the other three, in seconds."""
        info = self.audio_info
        still = Motion.zeros(1, 0 if self.pose_only else info.n_expression, fps=self.fps, space=info.motion_space)
        times = []
        for _ in range(4):
            t = time.monotonic()
            _to_host(self.compositor.composite(self.renderer.render(still)) if not self.framewise
                     else self._composite.push(self._render.push(still)))
            times.append(time.monotonic() - t)
        return sorted(times[1:])[1]

    # -- sessions ------------------------------------------------------------------------------------
    def attach(self, session: LiveSession) -> None:
        """Start ``session`` at the engine's next tick."""
        with self._lock:
            if self.error is not None:
                raise RuntimeError(f"the engine stopped: {self.error}") from self.error
            if not self._sessions:  # the clock starts again with the first session
                self._t0, self._tick = time.monotonic(), 0
            session.t0 = self._t0 + self._tick / self.fps
            self._sessions[session.id] = session
            if not self.framewise:
                self._streams[session.id] = _Streams(self.renderer.open_stream(), self.compositor.open_stream(), [], [])
            self._lock.notify_all()

    @property
    def sessions(self) -> list[LiveSession]:
        with self._lock:
            return list(self._sessions.values())

    def wake(self) -> None:
        """Do pending work now instead of at the next tick (an interrupt's frames to make again)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (sessions stay as they are); the triple is the caller's to close."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            self._lock.notify_all()
        self._thread.join()

    # -- the loop ------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    for sid in [sid for sid, s in self._sessions.items() if s.closed.is_set()]:
                        del self._sessions[sid]
                        self._streams.pop(sid, None)
                    if not self._sessions:
                        self._lock.wait(0.5)
                        continue
                    sessions = list(self._sessions.values())
                now = time.monotonic()
                due_tick = int((now - self._t0) * self.fps)
                if self._tick > due_tick:
                    self._make(self._redo(sessions))  # an interrupt cannot wait for the tick
                    self._wake.wait(self._t0 + self._tick / self.fps - now)
                    self._wake.clear()
                    continue
                work: list[tuple[LiveSession, int, Motion]] = []
                for _ in range(self._tick, due_tick + 1):
                    for s in sessions:
                        motion = s.speak()
                        for k in range(motion.num_frames):
                            index = s.motion_frames
                            s.motion_frames += 1
                            work.append((s, index, motion.slice(k, k + 1)))
                self._tick = due_tick + 1
                self._adapt_leads(sessions)
                work.extend(self._redo(sessions))
                self._make(work)
        except BaseException as exc:  # noqa: BLE001 - kept for the server to report; sessions end
            log.exception("live engine stopped")
            self.error = exc
            for s in self.sessions:
                s.close()

    def _redo(self, sessions: list[LiveSession]) -> list[tuple[LiveSession, int, Motion]]:
        """Frames made before an interrupt and not yet sent, to make again with the mouth at rest
        (stateful streams cannot go back: only framewise plugins re-render)."""
        work = []
        for s in sessions:
            redo = s.take_rerender()
            if self.framewise:
                work.extend((s, j, m) for j, m in redo)
        return work

    def _make(self, work: list[tuple[LiveSession, int, Motion]]) -> None:
        if self.framewise:
            # frames that cannot be ready by their time are not made (the session shows the one before):
            # earliest due first, as many as the running cost per frame says will make it
            now, chosen = time.monotonic(), []
            work.sort(key=lambda w: w[0].due(w[1]))
            for item in work:
                if item[0].due(item[1]) > now + self._cost_s * (len(chosen) + 1):
                    chosen.append(item)
            if not chosen and work and work[-1][0].due(work[-1][1]) > now:
                chosen = work[-1:]  # try the frame with the most time left: the cost estimate must see recovery
            for start in range(0, len(chosen), self.max_batch):
                self._batch(chosen[start:start + self.max_batch])
        else:
            for s, j, m in work:
                self._through_streams(s, j, m)

    def _batch(self, work: list[tuple[LiveSession, int, Motion]]) -> None:
        if not work:
            return
        t = time.monotonic()
        motion = Motion.cat([s.for_render(j, m) for s, j, m in work])
        frames = self._composite.push(self._render.push(motion))
        images = _to_host(frames)
        for (s, j, _), image in zip(work, images):
            s.put_image(j, image)
        cost = (time.monotonic() - t) / len(work)
        self._cost_s = 0.8 * self._cost_s + 0.2 * cost

    def _through_streams(self, s: LiveSession, index: int, motion: Motion) -> None:
        st = self._streams.get(s.id)
        if st is None:
            return
        st.render_pending.append(index)
        heads = st.render.push(s.for_render(index, motion))
        st.composite_pending.extend(st.render_pending[:len(heads)])
        del st.render_pending[:len(heads)]
        frames = st.composite.push(heads) if heads else []
        made = st.composite_pending[:len(frames)]
        del st.composite_pending[:len(frames)]
        for j, image in zip(made, _to_host(frames)):
            s.put_image(j, image)


def _to_host(frames: list[Frame]) -> list[np.ndarray]:
    """RGB frames (float [H, W, 3], any device) -> uint8 [H, W, 3] host arrays, in one copy."""
    return list(to_uint8(torch.stack([f.image for f in frames]))) if frames else []

"""Live talking heads: ``being serve``'s sessions, engine and web application (docs/serve.md).

``engine`` runs the sessions of one loaded plugin triple at the motion frame rate; ``session`` holds
one session's speech, clock and made frames; ``speech`` brings speech in from any source; ``tracks``
sends a session over WebRTC (aiortc); ``app`` is the web application and its API; ``adapters`` run
sessions inside voice-agent frameworks (LiveKit Agents, pipecat). The web modules need the ``serve``
extra (aiortc, aiohttp); ``engine``, ``session``, ``speech`` and the adapters do not (each adapter
needs its framework's extra)."""

"""Live talking heads: ``being serve``'s sessions, engine and web application (docs/serve.md).

``engine`` runs the sessions of one loaded plugin triple at the motion frame rate; ``session`` holds
one session's speech, clock and made frames; ``speech`` brings speech in from any source; ``tracks``
sends a session over WebRTC (aiortc); ``app`` is the web application and its API. The web modules
need the ``serve`` extra (aiortc, aiohttp); ``engine``, ``session`` and ``speech`` do not."""

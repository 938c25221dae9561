"""Being's live talking head inside voice-agent frameworks, in-process (no WebRTC, no server of ours).

``livekit``: a LiveKit Agents ``VideoGenerator`` for their ``AvatarRunner`` (extra ``livekit``).
``pipecat``: a pipecat ``FrameProcessor`` placed after the TTS service (extra ``pipecat``).
Each imports its framework when it is imported and raises ``PluginError`` (with the pip command)
when that is not installed; ``pacing`` is what both share. See docs/serve-adapters.md."""

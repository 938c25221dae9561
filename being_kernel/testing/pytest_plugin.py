"""pytest plugin (``pytest11`` entry point ``being``): fixtures for testing a method plugin.

    def test_my_renderer(being_fake_audio, being_speech):
        motion = being_fake_audio.generate(being_speech)
"""

from __future__ import annotations

import pytest


@pytest.fixture
def being_fake_audio():
    """A FakeAudioToFlame at 16 kHz, 25 fps."""
    from .fakes import FakeAudioToFlame
    from .specs import FakeAudioConfig

    plugin = FakeAudioToFlame(FakeAudioConfig())
    yield plugin
    plugin.close()


@pytest.fixture
def being_fake_renderer():
    """A FakeRenderer drawing 256x256 RGBA cartoon heads."""
    from .fakes import FakeRenderer
    from .specs import FakeRendererConfig

    plugin = FakeRenderer(FakeRendererConfig())
    yield plugin
    plugin.close()


@pytest.fixture
def being_fake_compositor():
    """A FakeCompositor giving 256x256 RGB frames."""
    from .fakes import FakeCompositor
    from .specs import FakeCompositorConfig

    plugin = FakeCompositor(FakeCompositorConfig())
    yield plugin
    plugin.close()


@pytest.fixture
def being_speech():
    """Two seconds of the kernel's built-in speech-like demo clip at 16 kHz."""
    from ..media.demo_audio import demo_speech

    return demo_speech(2.0, 16000)


@pytest.fixture(scope="module")
def being_one_torch_thread():
    """torch limited to one thread for the module, restored after: tests of tiny models (matrices a
    few dozen wide) run 10-20x faster than with two threads fighting over a busy 2-core machine.
    Use it with ``pytestmark = pytest.mark.usefixtures("being_one_torch_thread")`` or an autouse wrapper."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

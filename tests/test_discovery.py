"""Discovery against real installed-distribution layouts written into tmp dirs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from being_kernel.discovery import Registry
from being_kernel.errors import PluginError
from being_kernel.spec import KERNEL_API_VERSION
from conftest import make_dist

SPEC_MODULE = """
    from being_kernel.spec import PluginConfig, PluginSpec
    class Cfg(PluginConfig):
        size: int = 3
    SPEC = PluginSpec("avatar", "a test avatar", Cfg, "{impl}:Impl", motion_spaces=("flame2020",), api_version={api})
"""


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch):
    def add(root: Path) -> None:
        monkeypatch.syspath_prepend(str(root))
    return add


def _avatar_dist(tmp_path: Path, name: str, api: int = KERNEL_API_VERSION) -> Path:
    return make_dist(tmp_path / name, f"being-avatar-{name}", {"being.avatar": {name: f"{name}_spec:SPEC"}},
                     {f"{name}_spec.py": SPEC_MODULE.format(impl=f"{name}_impl", api=api),
                      f"{name}_impl.py": "raise RuntimeError('heavy implementation imported')\n"})


def test_listing_does_not_import_the_implementation(tmp_path, on_path) -> None:
    on_path(_avatar_dist(tmp_path, "light"))
    rec = next(r for r in Registry.discover(env={}).records if r.name == "light")
    assert rec.ok and rec.distribution == "being-avatar-light" and rec.version == "1.0.0"
    assert rec.spec.motion_spaces == ("flame2020",)
    assert "light_impl" not in sys.modules
    with pytest.raises(RuntimeError, match="heavy implementation imported"):
        rec.spec.load_class()


def test_broken_plugin_is_one_record_and_others_still_work(broken_plugin, on_path) -> None:
    on_path(broken_plugin)
    reg = Registry.discover(env={})
    broken = next(r for r in reg.records if r.name == "broken")
    assert broken.status == "broken"
    line = broken.problem_line()
    assert "\n" not in line and "ImportError: needs libfoo.so" in line and "pip uninstall being-avatar-broken" in line
    assert reg.spec("avatar", "fake").contract == "avatar"
    with pytest.raises(PluginError, match="broken"):
        reg.spec("avatar", "broken")


@pytest.mark.parametrize("api, fix", [(KERNEL_API_VERSION + 1, "upgrade being"), (KERNEL_API_VERSION - 1, "upgrade the plugin")])
def test_other_api_version_is_refused_with_the_right_fix(tmp_path, on_path, api: int, fix: str) -> None:
    on_path(_avatar_dist(tmp_path, f"api{api}", api=api))
    reg = Registry.discover(env={})
    rec = next(r for r in reg.records if r.name == f"api{api}")
    assert rec.status == "incompatible" and fix in rec.hint
    assert f"kernel API {api}, this being has API {KERNEL_API_VERSION}" in rec.error
    with pytest.raises(PluginError) as err:
        reg.spec("avatar", f"api{api}")
    assert fix in err.value.one_line()


def test_allow_and_deny_lists(tmp_path, on_path, broken_plugin) -> None:
    on_path(broken_plugin)
    deny = Registry.discover(env={"BEING_DISABLE_PLUGINS": "avatar:broken"})
    assert next(r for r in deny.records if r.name == "broken").status == "disabled"
    assert not deny.problems()
    allow = Registry.discover(env={"BEING_PLUGINS": "fake"})
    assert {r.name for r in allow.records if r.ok} == {"fake"}
    assert all(r.status == "disabled" for r in allow.records if r.name != "fake")


def test_entry_point_that_is_not_a_spec_is_broken(tmp_path, on_path) -> None:
    on_path(make_dist(tmp_path / "odd", "being-odd", {"being.torso": {"odd": "odd_mod:THING"}}, {"odd_mod.py": "THING = 42\n"}))
    rec = next(r for r in Registry.discover(env={}).records if r.name == "odd")
    assert rec.status == "broken" and "not a being_kernel PluginSpec" in rec.error


def test_unknown_and_known_but_missing_plugins_say_what_to_do(monkeypatch) -> None:
    import being_kernel.discovery as discovery
    from being_kernel.known import KnownMethod

    planned = KnownMethod("nextgen", "torso", "being-torso-nextgen", "torso_nextgen", "announced", planned=True)
    monkeypatch.setattr(discovery, "KNOWN_METHODS", discovery.KNOWN_METHODS + (planned,))
    reg = Registry.discover(env={})
    with pytest.raises(PluginError) as err:
        reg.spec("torso", "nextgen")
    assert "planned but not released yet" in str(err.value) and "pip install" not in err.value.hint
    from being_kernel.known import KNOWN_METHODS

    for known in KNOWN_METHODS:  # a hint names only a plugin directory that exists in this repository
        if not known.planned:
            assert (Path(__file__).resolve().parents[1] / "plugins" / known.directory / "pyproject.toml").is_file()
    with pytest.raises(PluginError) as err:
        reg.spec("audio", "nonesuch")
    assert "being plugins" in err.value.hint
    installed = {r.name for r in reg.records}
    missing = {m.name for m in reg.not_installed()}
    assert missing.isdisjoint(installed) and "nextgen" in missing
    assert missing | installed >= {"artalk", "emote", "viseme", "splatting", "flash", "static", "warp", "restorer"}


def test_the_plugins_command_path_imports_no_heavy_code() -> None:
    """``being plugins`` builds the CLI and lists every plugin without torch, PyAV or any
    plugin implementation module."""
    import subprocess

    code = ("import sys\nfrom being_kernel.cli import main as m\nm._register_commands()\n"
            "from being_kernel.discovery import Registry\nreg = Registry.discover()\n"
            "impls = [r.spec.factory.partition(':')[0] for r in reg.records if r.spec]\n"
            "print(sorted(m for m in ['torch', 'av', *impls] if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_default_is_the_first_usable_of_its_list_and_says_when_it_is_the_fake() -> None:
    from being_kernel.discovery import PluginRecord

    def rec(name: str, status: str = "ok") -> PluginRecord:
        return PluginRecord(name, "torso", f"being-torso-{name}", "1.0", f"{name}:SPEC", status)

    notes: list[str] = []
    assert Registry([rec("fake"), rec("static")]).default("torso", notes.append) == "static" and not notes
    assert Registry([rec("fake"), rec("static", "broken")]).default("torso", notes.append) == "fake"
    assert notes == ["being: note: --torso defaults to the testing-kit fake; install 'static' for the real "
                     "method (see 'being plugins')"]
    # nothing usable: the real method's name, so that Registry.spec says how to install it
    assert Registry([]).default("torso") == "static"

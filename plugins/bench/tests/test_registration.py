"""``being bench`` reaches the CLI through the kernel's CLI hook only, as a third-party command does."""

from __future__ import annotations

import json
from pathlib import Path

import being_kernel
from test_bench import run_being


def test_the_hook_plugin_is_listed_and_adds_the_command() -> None:
    r = run_being("plugins", "--json")
    assert r.returncode == 0, r.stderr
    (hook,) = [h for h in json.loads(r.stdout)["hooks"] if h["name"] == "bench"]
    assert (hook["distribution"], hook["status"], hook["description"]) == ("being-bench", "ok", "hooks: being_cli_commands")
    r = run_being("bench", "--help")
    assert r.returncode == 0 and "--clips" in r.stdout and "BEING_BENCH_CLIPS" in r.stdout


def test_without_the_hook_plugin_the_kernel_has_no_bench_command() -> None:
    r = run_being("bench", "--help", env={"BEING_DISABLE_PLUGINS": "hooks:bench"})
    assert r.returncode == 2 and "No such command 'bench'" in r.stderr


def test_the_kernel_never_imports_the_bench() -> None:
    kernel = Path(being_kernel.__file__).parent
    assert [str(p) for p in kernel.rglob("*.py") if "being_bench" in p.read_text()] == []

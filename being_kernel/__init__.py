"""Being's kernel: contracts, types, plugin discovery, the frame bus, media I/O and the CLI.

The public surface is what this module exports; submodules are importable for plugin authors
(``being_kernel.contracts``, ``being_kernel.types``, ``being_kernel.spec``, ``being_kernel.testing``).
Importing this package stays light (no torch): ``being plugins`` must not pay for heavy imports.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import BeingError, ConfigError, ContractError, InputError, PluginError, StageError
from .spec import KERNEL_API_VERSION, PluginConfig, PluginSpec

try:
    __version__ = version("being-kernel")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    "__version__", "KERNEL_API_VERSION", "PluginConfig", "PluginSpec",
    "BeingError", "ConfigError", "ContractError", "InputError", "PluginError", "StageError",
]

"""Being's kernel: contracts, types, plugin discovery, the frame bus, media I/O and the CLI.

This package exports what a plugin's spec module needs: ``PluginSpec`` and ``PluginConfig``, the
config field types, ``KERNEL_API_VERSION`` and the errors. Importing it stays light (no torch):
``being plugins`` imports every plugin's spec module. What implementations use is in
``being_kernel.api`` (heavy); the services are ``being_kernel.head``, ``render``, ``datasets``,
``metrics``, ``media``, ``train``, ``evaluation``, ``testing`` and ``hooks``. Those modules are
the public surface that ``KERNEL_API_VERSION`` covers; all other modules are private
(docs/architecture.md#public-surface).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import BeingError, ConfigError, ContractError, InputError, Interrupted, PluginError, StageError
from .spec import (KERNEL_API_VERSION, BenchSettings, DatasetKind, DeviceName, ImageSize, PathName, PluginConfig,
                   PluginSpec, TrainerSpec, VideoSize)

try:
    __version__ = version("being-kernel")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    "__version__", "KERNEL_API_VERSION",
    # a plugin's spec and config
    "PluginSpec", "PluginConfig", "TrainerSpec", "BenchSettings", "DatasetKind",
    "DeviceName", "PathName", "ImageSize", "VideoSize",
    # the errors a user sees as one line
    "BeingError", "ConfigError", "ContractError", "InputError", "PluginError", "StageError", "Interrupted",
]

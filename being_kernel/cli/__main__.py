"""python -m being_kernel.cli: the same as the being command."""

from .main import main

main()

"""Modules that build the procedural demo head; the public entry point is
``being_kernel.head.demo_head`` (``build_demo_head``, ``DEMO_EXPRESSIONS``, ``expression_vector``)."""

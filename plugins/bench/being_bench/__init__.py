"""``being bench``: installed plugin combinations measured side by side on the same inputs.

``commands`` adds the command to the ``being`` CLI through the kernel's ``being_cli_commands``
hook; ``clips`` finds the speech clips, ``matrix`` turns the options into cell plans, ``runner``
runs each cell in its own process (``worker`` -> ``measure``: ``timing``, ``memory``, ``stream``,
``quality``), ``report`` writes the JSON (``schema``), the Markdown tables and the plots (``plots``).
"""

"""``being bench``: installed plugin combinations measured side by side on the same inputs.

``matrix`` turns the options into cell plans, ``runner`` runs each cell in its own process
(``worker`` -> ``measure``: ``timing``, ``memory``, ``stream``, ``quality``), ``report`` writes
the JSON (``schema``), the Markdown tables and the plots (``plots``).
"""

"""``being batch``: many renders, fits and benches from one job file, run on Ray (local or a
cluster), with retries, a manifest that lets a rerun skip finished work, and atomic outputs.

``jobfile`` reads and validates the file, ``plan`` expands it into tasks, ``manifest`` records
them, ``runner`` drives Ray, ``workers`` is what runs in Ray's processes. Ray is the optional
extra ``being-kernel[batch]``; nothing here imports it at module level."""

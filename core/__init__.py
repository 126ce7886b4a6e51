"""The bottom layer every package may use: errors, atomic writes, config loading, device choice,
box geometry and per-frame grouping. ``core`` imports nothing from ``trackers``, ``reid`` or
``pipeline`` (tests/test_layers.py checks the import direction)."""

"""Appearance and attribute search over the identities of one run folder or of an index of many runs.

- :mod:`.attributes`: the attribute query language ("female backpack upper_color=red") and the
  probability that all given attributes hold;
- :mod:`.gallery`: a run's tracklets as columns (embeddings, attributes, camera, time, global id);
- :mod:`.rank`: scoring and ranking identities, with camera and time filters;
- :mod:`.index`: the on-disk index of many runs (SQLite catalog + per-run memory-mapped vectors);
- :mod:`.queryimage`: a query photo -> a person crop -> an embedding with the run's ReID model;
- :mod:`.model`: which ReID model made a run's embeddings, and whether two runs are comparable;
- :mod:`.results`, :mod:`.html`: terminal table, JSON and self-contained HTML of the results.
"""

"""Tracking evaluation: single-camera HOTA / CLEAR-MOT / IDF1 (`mot`), cross-camera IDF1 and
handoffs (`mtmc`), clustering scores (`clusters`), file layouts (`layout`) and `mcmt eval` (`scores`)."""

"""The per-camera stage of `mcmt run`: video decoding, detection, tracking, crop selection, ReID
embedding, tracklets and the stage cache; `runner.run_cameras` drives it."""

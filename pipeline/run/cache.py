"""The stage cache moved to :mod:`pipeline.runfolder.cache` (the run folder's one module); this name is
kept so that scripts written against it (bench/, older notebooks) keep working."""
from pipeline.runfolder.cache import (CachedDetections, CameraCache, DetectionWriter, input_fingerprint,  # noqa: F401
                                      load_tracklets, model_fingerprint, read_boxes, read_json, save_tracklets,
                                      stage_key)

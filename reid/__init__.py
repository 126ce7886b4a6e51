"""The multi-task person re-identification network of the paper and its inference wrapper.

``from reid import ReIDEncoder`` gives the inference interface used by the pipeline; the
network itself is in :mod:`reid.model`, its losses in :mod:`reid.losses`.
"""
from reid.schema import AttributeGroup, AttributeSchema

__all__ = ["AttributeGroup", "AttributeSchema", "ReIDEncoder", "build_model", "load_checkpoint"]


def __getattr__(name):  # lazy: importing reid.schema must not import torch/cv2
    if name == "ReIDEncoder":
        from reid.encoder import ReIDEncoder
        return ReIDEncoder
    if name == "build_model":
        from reid.model import build_model
        return build_model
    if name == "load_checkpoint":
        from reid.checkpoint import load_checkpoint
        return load_checkpoint
    raise AttributeError(f"module 'reid' has no attribute {name!r}")

"""Trunk features of training images, computed once and cached on disk (resumable).

Training the heads on a frozen OpenVINO trunk (reid/ir_trunk.py) needs the trunk's output of
every training image only once per view (the image, and its mirror image when ``data.flip``).
:func:`cached_features` stores them in chunks of :data:`CHUNK` images under
``<cache>/<ir name>-<ir hash>-<list hash>/<view>/NNNNN.npz``; an interrupted run recomputes only
the missing chunks. Per image: the IR embedding (D,) and the feature map reduced to its two
halves (C, 2, 1) by average and by max pooling (float16).

:class:`CachedMapDataset` serves them like ``ImageDataset`` serves images: ``(map (C, 2, 1), label,
camera, attribute targets)``, with a random view per item.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from reid.ir_trunk import IRTrunk, ir_fingerprint, reduce_map

log = logging.getLogger(__name__)

CHUNK = 256
COLOUR_CACHE = "colour-v2"    # sub-folder of a trunk cache folder: colour descriptors (reid/colour.py)
VIEWS = ("image", "flip")


def listing_hash(paths: Sequence[str]) -> str:
    """A short hash of an ordered list of image paths (cache keys)."""
    return hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:12]


def cache_folder(root: str | Path, trunk: IRTrunk, paths: Sequence[str]) -> Path:
    """The cache folder of this trunk and this ordered list of images."""
    return Path(root) / f"{trunk.path.stem}-{ir_fingerprint(trunk.path)}-{listing_hash(paths)}"


def read_crops(paths: Sequence[str], flip: bool) -> list[np.ndarray]:
    import cv2

    from core.errors import UserError

    crops = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise UserError(f"cannot read image {p} (missing or not an image file)")
        crops.append(img[:, ::-1] if flip else img)
    return crops


def embed_chunk(trunk: IRTrunk, paths: Sequence[str], flip: bool, batch: int = 32) -> dict[str, np.ndarray]:
    """Trunk outputs of the images ``paths`` (mirrored when ``flip``): emb, avg, max arrays."""
    from reid.preprocess import resize_crops

    parts: dict[str, list] = {"emb": [], "avg": [], "max": []}
    for s in range(0, len(paths), batch):
        crops = resize_crops(read_crops(paths[s:s + batch], flip), trunk.preprocess.input_size, rgb=False)
        emb, fmap = trunk(crops)
        parts["emb"].append(emb)
        parts["avg"].append(reduce_map(fmap, "avg"))
        parts["max"].append(reduce_map(fmap, "max"))
    return {k: np.concatenate(v).astype(np.float16) for k, v in parts.items()}


def cached_chunks(folder: Path, paths: Sequence[str], views: Sequence[str], compute, what: str,
                  progress: bool = False, chunk: int = CHUNK) -> dict[str, np.ndarray]:
    """{key: (V, N, ...)} arrays of the images ``paths`` under each view, read from ``folder`` or computed
    (``compute(chunk_paths, flip, chunk_index) -> {key: array}``; ``flip``: the view is "flip") and stored
    atomically, ``chunk`` images at a time."""
    out: dict[str, list] = {}
    starts = range(0, len(paths), chunk)
    for view in views:
        (folder / view).mkdir(parents=True, exist_ok=True)
        chunks = []
        for i, s in enumerate(starts):
            f = folder / view / f"{i:05d}.npz"
            if not f.is_file():
                if progress or i % 10 == 0:
                    log.info("%s (%s): chunk %d/%d -> %s", what, view, i + 1, len(starts), folder)
                tmp = f.with_name(f.stem + ".tmp.npz")
                np.savez(tmp, **compute(paths[s:s + chunk], view == "flip", i))
                tmp.replace(f)
            with np.load(f) as z:
                chunks.append({k: z[k] for k in z.files})
        for k in chunks[0] if chunks else ():
            out.setdefault(k, []).append(np.concatenate([c[k] for c in chunks]))
    return {k: np.stack(v) for k, v in out.items()}


def cached_features(trunk: IRTrunk, paths: Sequence[str], root: str | Path,
                    views: Sequence[str] = VIEWS, progress: bool = False) -> dict[str, np.ndarray]:
    """{"emb": (V, N, D), "avg": (V, N, C, 2, 1), "max": (V, N, C, 2, 1)} float16 for the images
    ``paths`` under each view, read from the cache or computed (and stored) chunk by chunk."""
    return cached_chunks(cache_folder(root, trunk, paths), paths, views,
                         lambda chunk, flip, _: embed_chunk(trunk, chunk, flip), "trunk features", progress)


class CachedMapDataset(Dataset):
    """Cached reduced maps (V, N, C, 2, 1) of a ``ImageDataset``'s samples: items like its images."""

    def __init__(self, images, maps: np.ndarray):
        if maps.shape[1] != len(images):
            raise ValueError(f"{maps.shape[1]} cached maps for {len(images)} samples")
        self.images = images
        self.maps = torch.from_numpy(np.ascontiguousarray(maps))
        self.labels = images.labels
        self.targets = images.targets
        self.num_ids = images.num_ids

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        view = int(torch.randint(self.maps.shape[0], ()))    # torch's RNG: seeded per epoch by the trainer
        s = self.images.samples[i]
        item = (self.maps[view, i].float(), int(self.labels[i]), int(s.camid), self.images.attr_targets(i))
        return item + ((self.targets[i],) if self.targets is not None else ())


def open_trunk(model_section) -> IRTrunk:
    """The IR trunk named by a training configuration's ``model`` section."""
    from reid.ir_trunk import resolve_ir_path

    if model_section.backbone != "ir_map":
        from core.errors import UserError
        raise UserError(f"model.trunk is set: model.backbone must be 'ir_map', got {model_section.backbone!r}")
    return IRTrunk(resolve_ir_path(model_section.trunk))


def trunk_spec(model_section, trunk: IRTrunk) -> dict:
    """``external_trunk`` of the model config: the IR as the configuration names it, the inference
    embedding, the map's channels and the IR embedding's size."""
    return {"ir": model_section.trunk, "embedding": model_section.trunk_embedding,
            "channels": trunk.channels, "ir_dim": trunk.dim}


def cached_dataset(images, trunk: IRTrunk, cfg, progress: bool = False) -> CachedMapDataset:
    """An ``ImageDataset``'s samples as cached reduced maps (views: the image, and its mirror with
    ``data.flip``), pooled as ``model.pooling`` says."""
    views = VIEWS if cfg.data.flip else VIEWS[:1]
    paths = [s.path for s in images.samples]
    maps = cached_features(trunk, paths, cfg.model.trunk_cache, views, progress)[cfg.model.pooling]
    if cfg.model.colour_features:    # the crop halves' colour descriptors as extra channels (reid/colour.py)
        folder = cache_folder(cfg.model.trunk_cache, trunk, paths) / COLOUR_CACHE
        colour = cached_colours(paths, folder, trunk.preprocess.input_size, views, progress)
        maps = np.concatenate([maps.astype(np.float32), colour], axis=2)
    return CachedMapDataset(images, maps)


def cached_colours(paths: Sequence[str], folder: Path, size, views: Sequence[str] = VIEWS,
                   progress: bool = False) -> np.ndarray:
    """(V, N, COLOUR_DIM, 2, 1) float32 colour descriptors of the images ``paths`` resized to ``size``
    as the trunk sees them, read from ``folder`` or computed (and stored) chunk by chunk."""
    from reid.colour import colour_halves
    from reid.preprocess import resize_crops

    def compute(chunk: Sequence[str], flip: bool) -> dict[str, np.ndarray]:
        batch = resize_crops(read_crops(chunk, flip), size, rgb=False)
        return {"colour": colour_halves(torch.from_numpy(batch)).numpy()}

    return cached_chunks(folder, paths, views, lambda chunk, flip, _: compute(chunk, flip), "colour descriptors",
                         progress)["colour"]

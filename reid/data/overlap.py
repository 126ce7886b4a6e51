"""Which evaluation identities a checkpoint was trained on (VIPeR splits, PETA held-out part).

A checkpoint written by ``mcmt train-reid`` describes its training data in ``extra["data"]``
(:meth:`reid.data.base.ReIDData.describe`: a ``viper`` entry holds ``split`` / ``seed`` /
``num_splits``, a ``peta`` entry its ``subsets`` and ``holdout`` / ``holdout_seed`` / ``min_images``;
``combined`` nests its ``sources``); older or hand-made checkpoints may only hold the
``train_config`` (its ``data.train`` specs are read the same way). :func:`training_sources`
flattens either into source records, :func:`seen_in_training` lists the evaluation samples whose
identity one of them trained on, and :func:`check_unseen` turns that into a clear UserError.

Only VIPeR and PETA evaluations are checked: their identities are the same people whichever
loader (``viper``, or ``peta`` with its VIPeR subset) or root folder the training used.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from core.errors import UserError
from reid.data.peta import held_out, sample_identity
from reid.data.viper import NUM_SPLITS, viper_splits

log = logging.getLogger(__name__)

CHECKED = ("viper", "peta")


def _peta_record(d: Mapping[str, Any]) -> dict:
    subsets = d.get("subsets")
    if isinstance(subsets, str):
        subsets = [s.strip() for s in subsets.split(",") if s.strip()]
    exclude = d.get("exclude", ("VIPeR",))
    exclude = [exclude] if isinstance(exclude, str) else list(exclude or ())
    return {"name": "peta", "subsets": None if subsets is None else [str(s) for s in subsets],
            "exclude": [str(s) for s in exclude], "holdout": float(d.get("holdout", 0.0) or 0.0),
            "holdout_seed": int(d.get("holdout_seed", 0) or 0), "min_images": int(d.get("min_images", 1) or 1)}


def _record(d: Mapping[str, Any]) -> list[dict]:
    """Source records of one data description (``describe()`` dict or ``{name, options}`` spec)."""
    d = {**(d.get("options") or {}), **{k: v for k, v in d.items() if k != "options"}}
    name = d.get("name")
    if d.get("sources") is not None:
        sources = d["sources"]
        if isinstance(sources, str):   # "peta=/p,viper=/v" (command-line form)
            sources = [{"name": part.partition("=")[0].strip()} for part in sources.split(",") if part.strip()]
        return [r for s in sources if isinstance(s, Mapping) for r in _record(s)]
    if name == "viper":
        return [{"name": "viper", "split": int(d.get("split", 0)), "seed": int(d.get("seed", 0)),
                 "num_splits": int(d.get("num_splits", NUM_SPLITS))}]
    if name == "peta":
        return [_peta_record(d)]
    return []


def training_sources(data_description: Mapping | None, train_config: Mapping | None = None) -> list[dict]:
    """Flat source records of a checkpoint's training data (see the module docstring)."""
    if data_description:
        return _record(data_description)
    specs = ((train_config or {}).get("data") or {}).get("train") or []
    return [r for spec in specs if isinstance(spec, Mapping) for r in _record(spec)]


def _peta_trains_subset(rec: dict, subset: str) -> bool:
    if rec["subsets"] is not None:
        return subset.lower() in {s.lower() for s in rec["subsets"]}
    return subset.lower() not in {s.lower() for s in rec["exclude"]}


def seen_in_training(sources: Sequence[dict], data) -> list:
    """Query/gallery samples of ``data`` (a ``viper`` or ``peta`` ReIDData) whose identity a training
    source trained on."""
    samples = list(data.query) + list(data.gallery)
    all_samples = list(data.train) + samples
    ids = {s.path: sample_identity(s.path) for s in all_samples}
    images = Counter(ids[s.path] for s in all_samples)
    seen = set()
    for rec in sources:
        if rec["name"] == "viper" and data.name == "viper":
            trained = set(viper_splits([s.pid for s in all_samples], rec["num_splits"], rec["seed"])
                          [rec["split"]][0].tolist()) if 0 <= rec["split"] < rec["num_splits"] else set()
            seen |= {s.path for s in samples if s.pid in trained}
        elif rec["name"] == "peta":
            seen |= {s.path for s in samples if _peta_trains_subset(rec, ids[s.path][0])
                     and not held_out(*ids[s.path], rec["holdout"], rec["holdout_seed"])
                     and images[ids[s.path]] >= rec["min_images"]}
    return [s for s in samples if s.path in seen]


def _describe(rec: dict) -> str:
    if rec["name"] == "viper":
        return f"VIPeR split {rec['split']} (seed {rec['seed']}, {rec['num_splits']} splits)"
    subsets = ", ".join(rec["subsets"]) if rec["subsets"] is not None else f"all but {rec['exclude']}"
    return f"PETA subsets {subsets} (holdout {rec['holdout']:g}, holdout_seed {rec['holdout_seed']})"


def check_unseen(sources: Sequence[dict], name: str, data, model: str = "this checkpoint") -> None:
    """UserError when ``data`` (evaluation data set ``name``) holds identities ``model`` trained on."""
    if name not in CHECKED or not sources:
        return
    seen = seen_in_training(sources, data)
    if not seen:
        return
    total = len({s.pid for s in list(data.query) + list(data.gallery)})
    where = f"split {data.info['split']} of VIPeR" if name == "viper" else "the held-out part of PETA"
    hint = ""
    own = [r for r in sources if r["name"] == "viper"]
    if name == "viper" and own:
        hint = (f"; score it only on the test half of the split it was trained on: --option split={own[0]['split']}"
                + (f" --option seed={own[0]['seed']}" if own[0]["seed"] else ""))
    elif name == "peta":
        hint = ("; evaluate with the holdout / holdout_seed its PETA training source used "
                "(--option holdout=F --option holdout_seed=S), or a model that did not train on PETA")
    raise UserError(f"{model} was trained on {'; '.join(_describe(r) for r in sources)}: "
                    f"{len({s.pid for s in seen})} of the {total} test identities of {where} were training "
                    f"identities, so its scores there would not measure re-identification of unseen people{hint}")


def checkpoint_training(path: str | Path) -> tuple[list[dict], str] | None:
    """(training source records, model name) of an mcmt ``.pt`` checkpoint (``"default"`` = the shipped
    one); None for other model files (ONNX / OpenVINO: they do not describe their training data)."""
    import torch

    if str(path) == "default":
        from reid.encoder import DEFAULT_CHECKPOINT
        path = DEFAULT_CHECKPOINT
    path = Path(path)
    if path.suffix.lower() not in (".pt", ".pth") or not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # unreadable files are reported by the model loader
        log.debug("cannot read the training description of %s: %s", path, exc)
        return None
    if not isinstance(payload, dict):
        return None
    extra = payload.get("extra") or {}
    return training_sources(extra.get("data"), payload.get("train_config")), path.name

"""``identities.json`` of a run folder (written by ``pipeline.outputs.writers``): the one reader."""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import UserError


def load_identities(run_dir: Path) -> dict:
    """Parsed ``identities.json`` of a run folder; UserError when missing or malformed."""
    path = Path(run_dir) / "identities.json"
    if not path.is_file():
        raise UserError(f"no identities.json in {run_dir}: give the output folder of `mcmt run`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}; rerun `mcmt associate --run {run_dir}` to rewrite it") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("identities"), list):
        raise UserError(f"{path} has no 'identities' list: not an identities.json written by `mcmt run`")
    return doc

"""``mcmt search --html FILE``: a self-contained page of the results (inline JPEGs, no network).

One card per result, best first: rank, identity, score, and one row per camera with the identity's
thumbnails from that camera and its time spans there (one span per tracklet).
"""
from __future__ import annotations

import base64
import html
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.atomic import atomic_write_text
from pipeline.search.rank import Result
from pipeline.search.results import fmt_time

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{margin:0 0 .3em} .muted{color:#777;font-size:90%}
.query{display:flex;gap:16px;align-items:flex-start;margin-bottom:1em}
.query img{height:160px;border:1px solid #ccc}
.result{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;margin:0 0 10px 0}
.result h3{margin:0 0 6px} .cam{display:flex;gap:8px;align-items:center;margin:4px 0}
.cam .name{width:9em;font-weight:600} .cam img{height:96px;border:1px solid #ccc}
.spans{font-size:90%;color:#444}
"""


def _img_tag(data: Optional[bytes], alt: str) -> str:
    if not data:
        return f'<span class="muted">[{html.escape(alt)}: no image]</span>'
    return f'<img alt="{html.escape(alt)}" src="data:image/jpeg;base64,{base64.b64encode(data).decode("ascii")}">'


def _read(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except OSError:
        log.warning("search html: thumbnail %s is missing", path)
        return None


def encode_jpeg(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


def result_card(rank: int, r: Result, per_camera: int = 4) -> str:
    rows = []
    for cam in r.cameras:
        spans = ", ".join(f"{fmt_time(t['start_time'])}-{fmt_time(t['end_time'])}"
                          for t in r.tracklets if t["camera"] == cam)
        thumbs = (r.thumbnails or {}).get(cam, [])[:per_camera]
        imgs = "".join(_img_tag(_read(Path(r.run_dir or ".") / rel), f"ID {r.identity} {cam}") for rel in thumbs) \
            or '<span class="muted">no thumbnails</span>'
        rows.append(f'<div class="cam"><span class="name">{html.escape(cam)}</span>{imgs}'
                    f'<span class="spans">{html.escape(spans)}</span></div>')
    parts = [f"score {r.score:.3f}"]
    if r.appearance is not None:
        best = r.best_match
        parts.append(f"appearance {r.appearance:.3f}" + (f" (best in {html.escape(best['camera'])} track "
                                                         f"{best['track_id']})" if best else ""))
    if r.attributes is not None:
        parts.append(f"attributes {r.attributes:.3f}")
    return (f'<div class="result" data-rank="{rank}" data-identity="{r.identity}"><h3>#{rank} &middot; ID '
            f'{r.identity} <span class="muted">({html.escape(r.run)})</span></h3>'
            f'<p class="muted">{" &middot; ".join(parts)} &middot; seen {fmt_time(r.first_seen)}-'
            f'{fmt_time(r.last_seen)}</p>{"".join(rows)}</div>')


def render(query: dict, results: Sequence[Result], query_crop: Optional[np.ndarray] = None) -> str:
    desc = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in query.items() if v not in (None, "", [], {}))
    crop = _img_tag(encode_jpeg(query_crop), "query person") if query_crop is not None else ""
    cards = "\n".join(result_card(k, r) for k, r in enumerate(results, 1)) or "<p>no matching identity</p>"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mcmt search</title><style>{CSS}</style></head><body>
<h1>mcmt search</h1><p class="muted">generated {now} &middot; {len(results)} result(s), best first</p>
<div class="query">{crop}<table>{desc}</table></div>
{cards}
</body></html>
"""


def write_html(path, query: dict, results: Sequence[Result], query_crop: Optional[np.ndarray] = None) -> Path:
    return atomic_write_text(path, render(query, results, query_crop))

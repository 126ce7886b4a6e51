"""The run report: one self-contained ``report.html`` for a ``mcmt run`` output folder.

``write_report(run_dir)`` reads ``<run_dir>/identities.json`` and the thumbnails it lists under
``thumbs/`` and writes ``<run_dir>/report.html``: a summary, a timeline (inline SVG: which
identity was seen by which camera when), and one card per global identity with its crops in a
row per camera (drawn by :mod:`pipeline.outputs.draw`), its time spans and a readable attribute table.
Above the cards, attribute filters and a "find similar" per card (:mod:`pipeline.outputs.report_search`).
Images, data and script are inline; the page loads nothing from the network.
"""
from __future__ import annotations

import base64
import html
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from core.atomic import atomic_write_bytes
from pipeline.outputs import draw, report_map, report_search
from pipeline.formats.identities import load_identities
from pipeline.runfolder.layout import REPORT_FILE

log = logging.getLogger(__name__)

# Camera colours for the timeline (Tableau 10, as hex).
CAMERA_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

CSS = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{margin:0 0 .3em} h2{margin:1.2em 0 .4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse} td,th{padding:2px 8px;text-align:left;vertical-align:top}
.summary td:first-child{color:#555}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #ddd;border-left:6px solid var(--c);border-radius:4px;padding:8px;
      max-width:100%}
.card h3{margin:0 0 6px} .card img{max-width:100%;display:block} .muted{color:#777;font-size:90%}
.attrs td.p{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:8px;background:#4a7;vertical-align:middle}
.legend span{display:inline-block;margin-right:12px} .legend i{display:inline-block;width:12px;height:12px;
      margin-right:4px;vertical-align:middle}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""


def camera_colours(cameras: Sequence[str]) -> dict[str, str]:
    """Camera name -> hex colour, in camera order."""
    return {c: CAMERA_COLOURS[i % len(CAMERA_COLOURS)] for i, c in enumerate(cameras)}


def _camera_names(doc: Mapping) -> list[str]:
    names = [str(c.get("name", "")) for c in doc.get("cameras", []) if isinstance(c, Mapping)]
    for ident in doc["identities"]:
        names += [str(c) for c in ident.get("cameras", []) if str(c) not in names]
    return list(dict.fromkeys(names))


def _segments(ident: Mapping) -> list[tuple[str, float, float]]:
    """(camera, t0, t1) per tracklet of an identity (time spans when tracklets are absent)."""
    segs = [(str(t["camera"]), float(t["start_time"]), float(t["end_time"]))
            for t in ident.get("tracklets", []) if "start_time" in t and "end_time" in t]
    if not segs:
        segs = [(str(c), float(a), float(b)) for c, (a, b) in ident.get("time_spans", {}).items()]
    return segs


def _fmt_time(t: float) -> str:
    m, s = divmod(max(float(t), 0.0), 60.0)
    return f"{int(m)}:{s:04.1f}"


def nice_ticks(t0: float, t1: float, target: int = 6) -> list[float]:
    """Round tick times (multiples of 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, ... min) covering [t0, t1]."""
    steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400]
    span = max(t1 - t0, 1e-6)
    step = next((s for s in steps if span / s <= target), steps[-1] * (1 + int(span / (steps[-1] * target))))
    first = -(-t0 // step) * step                       # ceil to a multiple of step
    return [first + k * step for k in range(int((t1 - first) // step + 1e-9) + 1)]


def timeline_svg(identities: Sequence[Mapping], colours: Mapping[str, str], width: int = 960,
                 row_h: int = 16, label_w: int = 70) -> str:
    """Inline SVG: one row per identity, one bar per tracklet from its start to end time, coloured by camera."""
    segs = [_segments(i) for i in identities]
    times = [t for s in segs for _, a, b in s for t in (a, b)]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    span = max(t1 - t0, 1e-6)
    plot_w = width - label_w - 30                      # room for the last tick label
    top, height = 20, 20 + row_h * len(identities) + 6

    def x(t):
        return label_w + (t - t0) / span * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="timeline">']
    for t in nice_ticks(t0, t1):                         # time axis ticks
        parts.append(f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{height}" stroke="#ddd"/>'
                     f'<text x="{x(t):.1f}" y="{top - 7}" text-anchor="middle">{_fmt_time(t)}</text>')
    for r, (ident, s) in enumerate(zip(identities, segs)):
        gid = html.escape(str(ident.get("global_id")))
        y = top + r * row_h
        parts.append(f'<a href="#id-{gid}"><text x="4" y="{y + row_h - 4}">ID {gid}</text></a>')
        for cam, a, b in s:
            w = max(x(b) - x(a), 2.0)
            parts.append(f'<rect x="{x(a):.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" '
                         f'fill="{colours.get(cam, "#999")}"><title>ID {gid} {html.escape(cam)}: '
                         f'{_fmt_time(a)}-{_fmt_time(b)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def identity_image(run_dir: Path, ident: Mapping, max_per_camera: int = 6) -> bytes | None:
    """JPEG of the identity's crops, one row per camera (draw.identity_crops); None without thumbnails."""
    thumbs = ident.get("thumbnails") or {}
    if not thumbs:
        return None
    crops = {}
    for cam, rels in thumbs.items():
        imgs = []
        for rel in list(rels)[:max_per_camera]:
            path = Path(run_dir) / rel
            if not path.is_file():
                log.warning("report: thumbnail %s listed in identities.json is missing", path)
            imgs.append(draw.read_image(path))
        crops[str(cam)] = imgs
    gid = int(ident.get("global_id", 0))
    return draw.encode_image(draw.identity_crops(crops, colour=draw.id_colour(gid)), ".jpg", 88)


def _attribute_table(ident: Mapping) -> str:
    attrs = ident.get("attributes") or {}
    summary = ident.get("attribute_summary") or []
    if not attrs and not summary:
        return '<p class="muted">no attributes (the ReID model predicts none)</p>'
    out = ""
    if summary:
        out += "<p><b>" + ", ".join(html.escape(str(s)) for s in summary) + "</b></p>"
    if attrs:
        rows = "".join(f'<tr><td>{html.escape(str(n).replace(":", ": "))}</td><td class="p">{float(p):.2f}</td>'
                       f'<td><span class="bar" style="width:{int(round(float(p) * 80))}px"></span></td></tr>'
                       for n, p in sorted(attrs.items(), key=lambda kv: -float(kv[1])))
        out += f'<details><summary>all {len(attrs)} attributes</summary><table class="attrs">{rows}</table></details>'
    return out


def identity_card(run_dir: Path, ident: Mapping) -> str:
    """HTML of one identity card (crops per camera, time spans, attributes)."""
    gid = int(ident.get("global_id", 0))
    cams = [str(c) for c in ident.get("cameras", [])]
    img = identity_image(run_dir, ident)
    pic = (f'<img alt="ID {gid} crops" src="data:image/jpeg;base64,{base64.b64encode(img).decode("ascii")}">'
           if img is not None else '<p class="muted">no thumbnails</p>')
    spans = "".join(f"<tr><td>{html.escape(str(c))}</td><td>{_fmt_time(a)} - {_fmt_time(b)}</td></tr>"
                    for c, (a, b) in (ident.get("time_spans") or {}).items())
    tracklets = ident.get("tracklets", [])
    flagged = sum(1 for t in tracklets if t.get("flagged"))
    note = f", {flagged} short/low-quality" if flagged else ""
    return (f'<div class="card" id="id-{gid}" data-gid="{gid}" style="--c:{draw.hex_colour(draw.id_colour(gid))}">'
            f'<h3>ID {gid}{report_search.similar_button(gid, ident)}</h3>'
            f'<p class="muted">{len(cams)} camera(s): {html.escape(", ".join(cams))} &middot; '
            f'{int(ident.get("box_count", 0))} boxes &middot; {len(tracklets)} tracklet(s){note}</p>'
            f'{pic}<table>{spans}</table>{_attribute_table(ident)}</div>')


def _summary_table(doc: Mapping) -> str:
    """The raw numbers: identities, boxes, cameras and every association statistic."""
    idents = doc["identities"]
    multi = sum(1 for i in idents if len(i.get("cameras", [])) > 1)
    rows = [("identities", len(idents)), ("seen by several cameras", multi),
            ("boxes", sum(int(i.get("box_count", 0)) for i in idents))]
    for c in doc.get("cameras", []):
        if isinstance(c, Mapping):
            rows.append((f"camera {c.get('name')}", f"{c.get('video', '')} ({c.get('frames', '?')} frames, "
                                                    f"{c.get('fps', '?')} fps)"))
    shown = {k for k, _ in rows}
    for k, v in (doc.get("summary") or {}).items():
        if k not in shown:
            rows.append((k, ", ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict)
                         else ", ".join(map(str, v)) if isinstance(v, list) else v))
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows
                   if k not in ("fields_of_view", "transitions"))
    return f'<table class="summary">{body}</table>'


def render_report(run_dir: Path, doc: Mapping, title_dir: Path | None = None) -> str:
    """The complete report.html text."""
    idents = sorted(doc["identities"], key=lambda i: int(i.get("global_id", 0)))
    colours = camera_colours(_camera_names(doc))
    legend = "".join(f'<span><i style="background:{c}"></i>{html.escape(n)}</span>' for n, c in colours.items())
    cards = "\n".join(identity_card(run_dir, i) for i in idents)
    data = report_search.search_data(doc)
    controls = report_search.controls_html(data)
    script = report_search.script_html(data) if controls else ""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = doc.get("summary") or {}
    bird = report_map.map_svg(idents, summary, colours)
    bird = (f'<h2>Map</h2><p class="muted">bird\'s-eye view of the ground plane: each camera\'s field of view '
            f'and each person\'s path (a dot where it starts); click a path to select its card</p>{bird}'
            if bird else "")
    moves = report_map.transitions_table(summary)
    moves = f"<h2>Camera transitions</h2>{moves}" if moves else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mcmt run report: {html.escape(Path(title_dir or run_dir).name)}</title>
<style>{CSS}{report_search.CSS}{report_map.CSS}</style></head><body>
<h1>mcmt run report</h1><p class="muted">{html.escape(str(title_dir or run_dir))} &middot; generated {now}</p>
<h2>Summary</h2>{report_map.summary_words(doc)}
<details><summary>all numbers (association statistics)</summary>{_summary_table(doc)}</details>
{bird}{moves}
<h2>Timeline</h2><p class="legend">{legend}</p>{timeline_svg(idents, colours)}
<h2>Identities</h2>{controls}<div class="cards">
{cards}
</div>{script}{report_map.SCRIPT if bird else ""}</body></html>
"""


def write_report(folder, run_dir=None) -> Path:
    """Write ``<folder>/report.html`` (atomically) from the identities.json and thumbs/ beside it; returns its
    path. ``run_dir``: the run folder the page names (``folder`` itself when None; a generation of it else)."""
    folder = Path(folder)
    doc = load_identities(folder)
    page = render_report(folder, doc, Path(run_dir) if run_dir else None)
    path = atomic_write_bytes(folder / REPORT_FILE, page.encode("utf-8"))
    log.info("report: %d identities -> %s", len(doc["identities"]), path)
    return path

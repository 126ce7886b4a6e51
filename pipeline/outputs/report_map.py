"""The report's bird's-eye map, camera transitions and plain-words summary.

- :func:`map_svg`: inline SVG of the ground plane (calibrated runs): each camera's field of view (a
  translucent polygon in its timeline colour) and each identity's trajectory (a polyline in the
  identity's card colour, a dot where it starts). Clicking a trajectory selects its identity (the card
  is outlined and scrolled to, the other trajectories fade); hovering or clicking a card highlights
  its trajectory. ``report.html#select=N`` clicks trajectory N on load (a hook for tests and links).
- :func:`transitions_table`: how many people went from camera X to camera Y, median transit time.
- :func:`summary_words`: cameras, footage duration, people, people seen by several cameras.
"""
from __future__ import annotations

import html
from typing import Mapping, Sequence

from pipeline.outputs import draw

CSS = """
.map{background:#fff;border:1px solid #ddd} .map .traj{cursor:pointer}
.map.picking .traj{opacity:.15} .map.picking .traj.selected{opacity:1}
.map .traj.selected polyline{stroke-width:4} .card.selected{outline:3px solid #333;outline-offset:2px}
.words{font-size:110%;max-width:60em}
"""

SCRIPT = """<script>
(function(){
  var map = document.querySelector('svg.map'); if (!map) return;
  function select(gid, scroll){
    map.classList.toggle('picking', gid !== null);
    map.querySelectorAll('.traj').forEach(function(t){
      t.classList.toggle('selected', t.getAttribute('data-gid') === gid); });
    document.querySelectorAll('.card').forEach(function(c){
      c.classList.toggle('selected', c.getAttribute('data-gid') === gid); });
    var card = gid !== null && document.getElementById('id-' + gid);
    if (card && scroll && card.scrollIntoView) card.scrollIntoView({block: 'nearest'});
  }
  var current = null;
  map.querySelectorAll('.traj').forEach(function(t){
    t.addEventListener('click', function(ev){
      var g = t.getAttribute('data-gid'); current = (current === g) ? null : g; select(current, true);
      ev.stopPropagation(); });
  });
  map.addEventListener('click', function(){ current = null; select(null, false); });
  document.querySelectorAll('.card').forEach(function(c){
    var g = c.getAttribute('data-gid');
    if (!map.querySelector('.traj[data-gid="' + g + '"]')) return;
    c.addEventListener('mouseenter', function(){ select(g, false); });
    c.addEventListener('mouseleave', function(){ select(current, false); });
    c.addEventListener('click', function(){ current = g; select(g, false); });
  });
  var m = /(?:^#|&)select=(\\d+)/.exec(location.hash);
  if (m) { var t = map.querySelector('.traj[data-gid="' + m[1] + '"]');
           if (t) t.dispatchEvent(new MouseEvent('click', {bubbles: true})); }
})();
</script>"""


def _bounds(trajs: Sequence[Sequence[Sequence[float]]], fovs: Mapping[str, list]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around the trajectories, widened to the fields of view but at most by the
    trajectories' own extent on each side (fields of view run far towards the horizon)."""
    pts = [(p[1], p[2]) for t in trajs for p in t]
    fov_pts = [tuple(p) for f in fovs.values() for p in f.get("polygon", [])]
    base = pts or fov_pts
    if not base:
        return 0.0, 0.0, 1.0, 1.0
    x0, x1 = min(p[0] for p in base), max(p[0] for p in base)
    y0, y1 = min(p[1] for p in base), max(p[1] for p in base)
    if pts and fov_pts:
        span = max(x1 - x0, y1 - y0, 1e-6)
        x0 = max(min(x0, min(p[0] for p in fov_pts)), x0 - span)
        x1 = min(max(x1, max(p[0] for p in fov_pts)), x1 + span)
        y0 = max(min(y0, min(p[1] for p in fov_pts)), y0 - span)
        y1 = min(max(y1, max(p[1] for p in fov_pts)), y1 + span)
    pad = 0.03 * max(x1 - x0, y1 - y0, 1e-6)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def _scale_bar(x0: float, span: float, k: float, height: int, units: str) -> str:
    """A round ground length (1, 2 or 5 x 10^n, about a fifth of the map) drawn at the bottom left."""
    from pipeline.outputs.calibration_view import nice_step

    length = nice_step(span, 5)
    px = length * k
    y = height - 12
    return (f'<g class="scale"><line x1="10" y1="{y}" x2="{10 + px:.1f}" y2="{y}" stroke="#333" stroke-width="2"/>'
            f'<text x="{10 + px / 2:.1f}" y="{y - 4}" text-anchor="middle">{length:g} {html.escape(units)}</text></g>')


def map_svg(identities: Sequence[Mapping], summary: Mapping, colours: Mapping[str, str], width: int = 720) -> str:
    """The bird's-eye map (empty string when no identity has a trajectory and no camera a field of view)."""
    fovs = summary.get("fields_of_view") or {}
    idents = [i for i in identities if i.get("trajectory")]
    if not idents and not fovs:
        return ""
    x0, y0, x1, y1 = _bounds([i["trajectory"] for i in idents], fovs)
    k = width / max(x1 - x0, 1e-9)
    height = int(round(max((y1 - y0) * k, 120)))

    def pt(x: float, y: float) -> str:
        return f"{(x - x0) * k:.1f},{(y - y0) * k:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="map" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><defs><clipPath id="map-clip"><rect width="{width}" '
             f'height="{height}"/></clipPath></defs><g clip-path="url(#map-clip)">']
    for cam, fov in fovs.items():
        poly = fov.get("polygon", [])
        if len(poly) >= 3:
            c = colours.get(cam, "#999")
            parts.append(f'<polygon class="fov" data-camera="{html.escape(cam)}" points="{" ".join(pt(*p) for p in poly)}" '
                         f'fill="{c}" fill-opacity="0.10" stroke="{c}" stroke-opacity="0.6">'
                         f'<title>field of view of {html.escape(cam)}</title></polygon>')
    for ident in idents:
        gid = int(ident.get("global_id", 0))
        c = draw.hex_colour(draw.id_colour(gid))
        traj = ident["trajectory"]
        line = " ".join(pt(p[1], p[2]) for p in traj)
        start = pt(traj[0][1], traj[0][2]).split(",")
        parts.append(f'<g class="traj" data-gid="{gid}"><title>ID {gid}: {traj[0][0]:.1f}-{traj[-1][0]:.1f} s</title>'
                     f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2" '
                     f'stroke-linejoin="round" stroke-linecap="round"/>'
                     f'<circle cx="{start[0]}" cy="{start[1]}" r="4" fill="{c}"/></g>')
    parts.append("</g>")
    for cam, fov in fovs.items():                            # labels at the near edge of each view
        if fov.get("near"):
            px = min(max((fov["near"][0] - x0) * k, 0.0), width - 8.0 * len(cam))
            py = min(max((fov["near"][1] - y0) * k + 14, 12.0), height - 20.0)
            parts.append(f'<text x="{px:.1f}" y="{py:.1f}" fill="{colours.get(cam, "#555")}" font-weight="bold">'
                         f'{html.escape(cam)}</text>')
    units = str((summary.get("calibration") or {}).get("units") or "units")
    parts.append(_scale_bar(x0, x1 - x0, k, height, units) + "</svg>")
    return "".join(parts)


def _fmt_seconds(s: float) -> str:
    return f"{s:.1f} s" if abs(s) < 120 else f"{s / 60:.1f} min"


def transitions_table(summary: Mapping) -> str:
    """HTML table of the camera transitions (empty string when nobody changed camera)."""
    rows = summary.get("transitions") or []
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{html.escape(str(r['from']))} &rarr; {html.escape(str(r['to']))}</td><td>{int(r['people'])}</td>"
        f"<td>{_fmt_seconds(float(r['median_seconds'])) if r['median_seconds'] >= 0 else 'seen by both at once'}"
        f"</td></tr>" for r in rows)
    return ('<table class="transitions"><tr><th>from &rarr; to</th><th>people</th><th>median transit</th></tr>'
            f"{body}</table>")


def _duration(cameras: Sequence[Mapping], identities: Sequence[Mapping]) -> float:
    spans = [float(c.get("frames") or 0) / float(c.get("fps") or 25.0) for c in cameras if isinstance(c, Mapping)]
    times = [float(t) for i in identities for s in (i.get("time_spans") or {}).values() for t in s]
    return max(spans + [max(times, default=0.0) - min(times, default=0.0)], default=0.0)


def summary_words(doc: Mapping) -> str:
    """The run in a few plain sentences."""
    cams = [str(c.get("name")) for c in doc.get("cameras", []) if isinstance(c, Mapping)]
    idents = doc.get("identities", [])
    multi = sum(1 for i in idents if len(i.get("cameras", [])) > 1)
    m, s = divmod(int(round(_duration(doc.get("cameras", []), idents))), 60)
    cal = (doc.get("summary") or {}).get("calibration") or {}
    calibrated = sorted((cal.get("cameras") or {}).keys())
    text = (f"{len(cams)} camera{'s' if len(cams) != 1 else ''} ({html.escape(', '.join(cams))}), "
            f"{m}:{s:02d} of footage. {len(idents)} {'person' if len(idents) == 1 else 'people'} found, "
            f"{multi} of them seen by several cameras.")
    if calibrated:
        text += (f" Calibrated to the ground plane: {html.escape(', '.join(calibrated))}"
                 f"{' (' + html.escape(str(cal.get('units'))) + ')' if cal.get('units') else ''}.")
    return f'<p class="words">{text}</p>'

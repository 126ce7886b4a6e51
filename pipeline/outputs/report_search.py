"""Search inside ``report.html``, without a server: attribute filters and "find similar".

- Attribute filter: a checkbox per yes/no attribute, a colour swatch per class of the colour groups
  (``upper_color``, ``lower_color``) and a checkbox per class of the other groups (age). An identity
  stays visible when every checked attribute holds for it: a yes/no attribute with p >= 0.5, a group
  whose most likely class is one of the checked classes (the classes an identity card lists). The
  visible cards are ordered by the probability that all checked attributes hold (as ``mcmt search
  --attributes`` ranks them).
- "find similar" on a card orders all cards by cosine similarity of their identity embeddings to that
  card's (``embedding_f16`` in identities.json, stored in the page as int8: one byte per dimension).

The data is one inline JSON block; the script is inline too, so the page stays self-contained.
``report.html#check=female,upper_color:red&similar=3`` clicks those controls on load (a hook for
headless-browser tests and for links to a filtered view).
"""
from __future__ import annotations

import base64
import html
import json
from typing import Mapping, Optional

import numpy as np

from reid.schema import AttributeSchema

COLOUR_WORDS = ("color", "colour")

CSS = """
.search{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin:0 0 10px}
.search label{display:inline-block;margin:2px 10px 2px 0;cursor:pointer;white-space:nowrap}
.search .grp{margin:3px 0} .search .grp b{display:inline-block;min-width:7em}
.swatch input{display:none} .swatch i{display:inline-block;width:18px;height:18px;border:2px solid #bbb;
  border-radius:3px;vertical-align:middle} .swatch input:checked+i{border-color:#000;box-shadow:0 0 0 2px #fc0}
.card.hidden{display:none} .card .badge{float:right;font-size:85%;color:#333;background:#eee;border-radius:3px;
  padding:0 4px;margin-left:6px} .card button.similar{float:right;font-size:80%}
"""

JS = r"""
(function(){
  var D = JSON.parse(document.getElementById('search-data').textContent);
  var box = document.querySelector('.cards'), cards = Array.prototype.slice.call(box.querySelectorAll('.card'));
  var emb = {}, ref = null;
  Object.keys(D.ids).forEach(function(g){
    var e = D.ids[g].e; if (!e) return;
    var s = atob(e), v = new Float32Array(s.length), n = 0;
    for (var i = 0; i < s.length; i++) { var b = s.charCodeAt(i); v[i] = b > 127 ? b - 256 : b; n += v[i] * v[i]; }
    n = Math.sqrt(n) || 1; for (var j = 0; j < v.length; j++) v[j] /= n; emb[g] = v;
  });
  function cos(a, b) { var s = 0; for (var i = 0; i < a.length; i++) s += a[i] * b[i]; return s; }
  function checked() {
    var out = {};
    document.querySelectorAll('.search input[data-col]:checked').forEach(function(el){
      var g = el.getAttribute('data-group'); (out[g] = out[g] || []).push(+el.getAttribute('data-col'));
    });
    return out;
  }
  function attrs(gid, sel) {            // [all hold?, joint probability]
    var p = (D.ids[gid] || {}).p; if (!p) return [false, 0];
    var ok = true, joint = 1;
    Object.keys(sel).forEach(function(g){
      var cols = sel[g], grp = D.groups[g];
      if (grp.classes.length === 0) { var q = p[cols[0]]; ok = ok && q >= 0.5; joint *= q; return; }
      var best = grp.cols[0], sum = 0;
      grp.cols.forEach(function(c){ if (p[c] > p[best]) best = c; });
      cols.forEach(function(c){ sum += p[c]; });
      ok = ok && cols.indexOf(best) >= 0; joint *= Math.min(sum, 1);
    });
    return [ok, joint];
  }
  function update() {
    var sel = checked(), any = Object.keys(sel).length > 0, shown = 0;
    var rows = cards.map(function(c){
      var g = c.getAttribute('data-gid'), a = attrs(g, sel), key = +g, badge = '';
      if (ref !== null) {
        key = emb[g] && emb[ref] ? -cos(emb[g], emb[ref]) : 9;
        badge = emb[g] ? 'similarity ' + (-key).toFixed(2) : '';
      }
      else if (any) { key = -a[1]; badge = 'p ' + a[1].toFixed(2); }
      var show = !any || a[0]; c.classList.toggle('hidden', !show); if (show) shown++;
      c.querySelector('.badge').textContent = badge;
      return [key, +g, c];
    });
    rows.sort(function(x, y){ return x[0] - y[0] || x[1] - y[1]; });
    rows.forEach(function(r){ box.appendChild(r[2]); });
    document.getElementById('search-status').textContent = shown + ' of ' + cards.length + ' identities shown' +
      (ref !== null ? ', ordered by similarity to ID ' + ref : any ? ', ordered by P(all checked attributes)' : '');
  }
  document.querySelectorAll('.search input').forEach(function(el){ el.addEventListener('change', update); });
  document.querySelectorAll('button.similar').forEach(function(b){
    b.addEventListener('click', function(){ ref = b.getAttribute('data-gid'); update(); });
  });
  document.getElementById('search-reset').addEventListener('click', function(){
    ref = null; document.querySelectorAll('.search input:checked').forEach(function(el){ el.checked = false; });
    update();
  });
  var h = {}; location.hash.replace(/^#/, '').split('&').forEach(function(kv){
    var i = kv.indexOf('='); if (i > 0) h[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); });
  (h.check || '').split(',').forEach(function(n){
    var el = document.querySelector('.search input[data-name="' + n + '"]'); if (el) el.click(); });
  if (h.similar) { var b = document.querySelector('button.similar[data-gid="' + h.similar + '"]'); if (b) b.click(); }
  update();
})();
"""


def _int8(b64: Optional[str]) -> Optional[str]:
    """float16 base64 (identities.json) -> int8 base64 (direction only: the page renormalises)."""
    if not b64:
        return None
    f = np.frombuffer(base64.b64decode(b64), "<f2").astype(np.float32)
    m = float(np.abs(f).max()) if f.size else 0.0
    if not np.isfinite(m) or m == 0:
        return None
    return base64.b64encode(np.round(f / m * 127).astype(np.int8).tobytes()).decode("ascii")


def search_data(doc: Mapping) -> dict:
    """The page's search data: attribute groups (name -> output columns and classes) and, per identity,
    its attribute probabilities (2 decimals) and int8 embedding."""
    names = [str(n) for n in doc.get("attribute_names") or []]
    groups = {}
    if names:
        schema = AttributeSchema.from_output_names(names)
        for g, s in zip(schema.groups, schema.group_slices()):
            groups[g.name] = {"classes": list(g.classes), "cols": list(range(s.start, s.stop))}
    ids = {}
    for ident in doc.get("identities", []):
        a = ident.get("attributes") or {}
        p = [round(float(a[n]), 2) for n in names] if a and all(n in a for n in names) else None
        ids[str(int(ident.get("global_id", 0)))] = {"p": p, "e": _int8(ident.get("embedding_f16"))}
    return {"names": names, "groups": groups, "ids": ids}


def _control(name: str, group: str, col: int, label: str, swatch: Optional[str] = None) -> str:
    attrs = (f'type="checkbox" data-name="{html.escape(name)}" data-group="{html.escape(group)}" '
             f'data-col="{col}"')
    if swatch is not None:
        return (f'<label class="swatch" title="{html.escape(name)}"><input {attrs}>'
                f'<i style="background:{html.escape(swatch)}"></i></label>')
    return f'<label><input {attrs}> {html.escape(label)}</label>'


def controls_html(data: Mapping) -> str:
    """The filter bar above the cards (empty when the model has no attributes and no embeddings)."""
    binary, multi = [], []
    for g, spec in data["groups"].items():
        if not spec["classes"]:
            binary.append(_control(g, g, spec["cols"][0], g.replace("_", " ")))
            continue
        colour = any(w in g for w in COLOUR_WORDS)
        items = "".join(_control(f"{g}:{c}", g, col, c, swatch=c if colour else None)
                        for c, col in zip(spec["classes"], spec["cols"]))
        multi.append(f'<div class="grp"><b>{html.escape(g.replace("_", " "))}</b>{items}</div>')
    has_emb = any(v.get("e") for v in data["ids"].values())
    if not binary and not multi and not has_emb:
        return ""
    attrs = (f'<div class="grp"><b>attributes</b>{"".join(binary)}</div>{"".join(multi)}' if binary or multi
             else '<p class="muted">no attributes (the ReID model predicts none)</p>')
    hint = ' &middot; "find similar" on a card orders all cards by appearance' if has_emb else ""
    return (f'<div class="search">{attrs}<p class="muted"><button id="search-reset">reset</button> '
            f'<span id="search-status"></span>{hint}</p></div>')


def similar_button(gid: int, ident: Mapping) -> str:
    """A card's "find similar" button (when the identity has an embedding) and its score badge."""
    button = (f'<button class="similar" data-gid="{gid}">find similar</button>'
              if ident.get("embedding_f16") else "")
    return f'<span class="badge"></span>{button}'


def script_html(data: Mapping) -> str:
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="search-data">{text}</script>\n<script>{JS}</script>'

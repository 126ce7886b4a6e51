"""Explicit colour evidence for the colour attribute heads (model option ``colour_features``).

The trunk's map is trained for identity, not for naming colours; the colour groups (``upper_color``,
``lower_color``) get a small descriptor of the crop's own pixels besides the part features. Per image
half (the same upper / lower halves the part branches pool), :data:`COLOUR_DIM` numbers, each a
weighted fraction of the half's pixels (after average pooling to 64 x 32) (columns weighted by a centre prior, where the person stands):

- 12 hue bins (30 degrees apart, red first; circular, linear soft assignment) x 3 tones: dark,
  pale, vivid; a pixel counts by its colourfulness (saturation, faded out for dark pixels);
- 3 achromatic bins (black, grey, white; soft over the value) of the remaining weight;
- mean value and mean saturation.

:func:`colour_halves` computes it in torch from the ``(N, H, W, 3)`` uint8 BGR batch the IR trunk
receives, as ``(N, K, 2, 1)``: the layout of the reduced trunk map, to which it is appended as extra
channels (the model splits them off). :class:`ColourHeads` adds a linear term of each half's
(batch-normalised) descriptor to the logits of the colour groups of that body part: a linear
classifier on ``concat(part feature, descriptor)`` for those columns, the other heads unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

HUE_BINS = 12
TONES = ("dark", "pale", "vivid")
GREYS = ("black", "grey", "white")
COLOUR_DIM = HUE_BINS * len(TONES) + len(GREYS) + 2     # 41 numbers per half
HALF_ROW = {"upper": 0, "lower": 1}                      # row of each body part in the (K, 2, 1) layout
POOLED = (64, 32)                                        # the crop is average-pooled to this (H, W) first
CENTRE_SIGMA = 0.25                                      # column weights exp(-(x - 0.5)^2 / (2 s^2)), x in [0, 1]


def _ramp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)


def colour_halves(bgr: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 BGR batch -> (N, COLOUR_DIM, 2, 1) float32 descriptors of its upper and
    lower halves (see the module docstring), on the crop average-pooled to :data:`POOLED` first (cheap:
    well under a millisecond a crop; sums over pixels, no per-pixel (..., COLOUR_DIM) tensor)."""
    x = nn.functional.adaptive_avg_pool2d(bgr.permute(0, 3, 1, 2).float() / 255.0, POOLED)
    x = x.permute(0, 2, 3, 1)                                 # (N, 64, 32, 3): colours of 4 x 4 blocks
    n, h, w, _ = x.shape
    b, g, r = x.unbind(-1)
    v = x.max(-1).values
    c = v - x.min(-1).values                                  # chroma
    s = c / v.clamp_min(1e-6)
    safe = c.clamp_min(1e-6)
    hue = torch.where(v == r, torch.remainder((g - b) / safe, 6.0),
                      torch.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0   # [0, 1)
    pos = hue * HUE_BINS
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.long() % HUE_BINS
    hue_w = torch.zeros(n, h, w, HUE_BINS, device=x.device)                           # soft hue bins
    hue_w.scatter_add_(-1, lo[..., None], (1 - frac)[..., None])
    hue_w.scatter_add_(-1, ((lo + 1) % HUE_BINS)[..., None], frac[..., None])
    xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w
    cw = torch.exp(-0.5 * ((xs - 0.5) / CENTRE_SIGMA) ** 2)
    pw = (cw / cw.sum() / (h // 2)).expand(n, h, w)            # pixel weights: each half sums to 1
    colourful = s * _ramp(v, 0.08, 0.30)                       # dark pixels count as grey
    light, vivid = _ramp(v, 0.25, 0.55), _ramp(s, 0.30, 0.70)
    tones = torch.stack([1 - light, light * (1 - vivid), light * vivid], -1) * (pw * colourful)[..., None]
    grey = torch.stack([(1 - 2 * v).clamp_min(0), 1 - (2 * v - 1).abs(), (2 * v - 1).clamp_min(0)], -1)
    grey = grey * (pw * (1 - colourful))[..., None]
    halves = lambda t: t.reshape(n, 2, (h // 2) * w, -1)      # noqa: E731  (N, H, W, k) -> (N, 2, P, k)
    chroma = torch.einsum("nkpt,nkph->nkth", halves(tones), halves(hue_w)).flatten(2)      # (N, 2, 36)
    means = halves(torch.stack([v * pw, s * pw], -1)).sum(2)                            # (N, 2, 2)
    out = torch.cat([chroma, halves(grey).sum(2), means], -1)                           # (N, 2, K)
    return out.permute(0, 2, 1)[..., None].contiguous()


def colour_columns(schema, columns: dict[str, tuple[int, ...]]) -> dict[str, list[int]]:
    """{part: positions, inside that part's head, of the colour groups' columns} for upper / lower:
    the multi-class groups named ``*color*`` / ``*colour*`` of that body part."""
    out: dict[str, list[int]] = {}
    for part in HALF_ROW:
        if part not in columns:
            continue
        cols = [c for g, sl in zip(schema.groups, schema.group_slices())
                if g.part == part and not g.is_binary and ("color" in g.name or "colour" in g.name)
                for c in range(sl.start, sl.stop)]
        pos = [columns[part].index(c) for c in cols if c in columns[part]]
        if pos:
            out[part] = pos
    return out


class ColourHeads(nn.Module):
    """Per body part: BatchNorm1d + Linear(COLOUR_DIM -> its colour columns), added to that part
    head's logits in those columns (see the module docstring)."""

    def __init__(self, schema, columns: dict[str, tuple[int, ...]]):
        super().__init__()
        self.terms = nn.ModuleDict()
        for part, pos in colour_columns(schema, columns).items():
            fc = nn.Linear(COLOUR_DIM, len(pos))
            nn.init.normal_(fc.weight, std=0.001)
            nn.init.zeros_(fc.bias)
            self.terms[part] = nn.Sequential(nn.BatchNorm1d(COLOUR_DIM), fc)
            self.register_buffer(f"pos_{part}", torch.tensor(pos, dtype=torch.long), persistent=False)

    def forward(self, raw: dict[str, torch.Tensor], colour: torch.Tensor) -> dict[str, torch.Tensor]:
        """raw: {head: (N, k) logits}; colour: (N, COLOUR_DIM, 2) -> a new dict, colour terms added."""
        out = dict(raw)
        for part, term in self.terms.items():
            if part in out:
                add = term(colour[:, :, HALF_ROW[part]]).to(out[part].dtype)
                out[part] = out[part].index_add(1, getattr(self, f"pos_{part}"), add)
        return out

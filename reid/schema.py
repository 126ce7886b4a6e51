"""Attribute schemas: which attributes a data set labels, their body part and their classes.

A schema is data, defined once per data set (in ``reid/data/``), carried inside checkpoints and
used by the model (to size and route the attribute classifiers), the loss and the reports.

- An :class:`AttributeGroup` with no ``classes`` is a *binary* attribute: one output column,
  a sigmoid probability of "yes".
- A group with ``classes`` is a *multi-class* attribute (age, upper-body colour, ...): one output
  column per class, softmax probabilities within the group.

Attribute **targets** are int64 arrays of shape ``(N, num_groups)``: 0/1 for binary groups, the
class index for multi-class groups, and ``-1`` for missing/unknown (ignored by the loss).
Attribute **outputs** are probabilities of shape ``(N, num_outputs)`` in ``output_names`` order.

``part`` follows the paper's Table 1: ``"global"`` attributes are predicted from the global
identity feature f_I^G, ``"upper"`` from the upper-body part feature f_I^U and ``"lower"`` from
the lower-body part feature f_I^L.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

PARTS = ("global", "upper", "lower")


@dataclass(frozen=True)
class AttributeGroup:
    """One attribute: binary when ``classes`` is empty, else a multi-class (softmax) group."""

    name: str
    part: str = "global"
    classes: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.name or ":" in self.name:
            raise ValueError(f"attribute name {self.name!r} must be non-empty and contain no ':'")
        if self.part not in PARTS:
            raise ValueError(f"attribute {self.name!r}: part must be one of {PARTS}, got {self.part!r}")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if len(self.classes) == 1:
            raise ValueError(f"attribute {self.name!r}: a multi-class group needs at least 2 classes "
                             "(leave classes empty for a binary attribute)")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"attribute {self.name!r}: duplicate class names {self.classes}")

    @property
    def is_binary(self) -> bool:
        return not self.classes

    @property
    def num_outputs(self) -> int:
        return 1 if self.is_binary else len(self.classes)

    @property
    def output_names(self) -> tuple[str, ...]:
        if self.is_binary:
            return (self.name,)
        return tuple(f"{self.name}:{c}" for c in self.classes)


@dataclass(frozen=True)
class AttributeSchema:
    """An ordered set of attribute groups (see the module docstring for shapes)."""

    name: str
    groups: tuple[AttributeGroup, ...]

    def __post_init__(self):
        object.__setattr__(self, "groups", tuple(self.groups))
        names = [g.name for g in self.groups]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"schema {self.name!r}: duplicate attribute names {dup}")

    # ---- sizes and names -------------------------------------------------------------------
    @property
    def num_groups(self) -> int:
        return len(self.groups)

    @property
    def num_outputs(self) -> int:
        return sum(g.num_outputs for g in self.groups)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n for g in self.groups for n in g.output_names)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    def group_slices(self) -> tuple[slice, ...]:
        """Output columns of each group, in group order: ``probs[:, s]`` for ``s`` in the result."""
        out, start = [], 0
        for g in self.groups:
            out.append(slice(start, start + g.num_outputs))
            start += g.num_outputs
        return tuple(out)

    def part_indices(self, part: str) -> tuple[int, ...]:
        """Output COLUMN indices (into ``num_outputs``) of the attributes of one body part."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return tuple(i for g, s in zip(self.groups, self.group_slices()) if g.part == part
                     for i in range(s.start, s.stop))

    def part_groups(self, part: str) -> tuple[int, ...]:
        """GROUP indices (into ``num_groups``, i.e. target columns) of one body part."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return tuple(i for i, g in enumerate(self.groups) if g.part == part)

    def index(self, name: str) -> int:
        """Group index of attribute ``name``; a clear error lists the valid names."""
        for i, g in enumerate(self.groups):
            if g.name == name:
                return i
        raise KeyError(f"schema {self.name!r} has no attribute {name!r}; valid: {', '.join(self.group_names)}")

    # ---- serialisation ---------------------------------------------------------------------
    @classmethod
    def from_output_names(cls, names: Sequence[str], name: str = "outputs") -> "AttributeSchema":
        """The schema behind a list of output column names, the one parser of ``group:class`` names:
        a name without ``:`` is a binary attribute, names ``group:class`` sharing a prefix (in
        consecutive columns) form one multi-class group. Body parts are unknown here (global)."""
        groups: list[tuple[str, list[str]]] = []
        for n in names:
            group, sep, cls_name = str(n).partition(":")
            if sep and groups and groups[-1][0] == group and groups[-1][1]:
                groups[-1][1].append(cls_name)
            elif sep and any(g == group for g, _ in groups):
                raise ValueError(f"attribute columns of group {group!r} are not consecutive in {list(names)}")
            else:
                groups.append((group, [cls_name] if sep else []))
        return cls(name, tuple(AttributeGroup(g, classes=tuple(c)) for g, c in groups))

    def to_dict(self) -> dict:
        return {"name": self.name,
                "groups": [{"name": g.name, "part": g.part, "classes": list(g.classes)} for g in self.groups]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AttributeSchema":
        try:
            groups = tuple(AttributeGroup(str(g["name"]), str(g.get("part", "global")),
                                          tuple(g.get("classes", ()) or ())) for g in d["groups"])
            return cls(str(d["name"]), groups)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a valid attribute schema dict ({exc!r}): expected "
                             "{'name': str, 'groups': [{'name', 'part', 'classes'}]}") from None

    # ---- readable output -------------------------------------------------------------------
    def readable(self, probs: Sequence[float] | np.ndarray, threshold: float = 0.5,
                 by_confidence: bool = False) -> list[str]:
        """Human-readable summary of one probability row ``(num_outputs,)``.

        Binary attributes above ``threshold`` are listed as ``"female 0.93"``; each multi-class
        group gives its most likely class: ``"upper_color: white 0.88"``. In schema order, or most
        confident first with ``by_confidence``.
        """
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.shape[0] != self.num_outputs:
            raise ValueError(f"expected {self.num_outputs} probabilities for schema {self.name!r}, got {p.shape[0]}")
        out: list[tuple[float, str]] = []
        for g, s in zip(self.groups, self.group_slices()):
            if g.is_binary:
                if p[s.start] >= threshold:
                    out.append((p[s.start], f"{g.name} {p[s.start]:.2f}"))
            else:
                k = int(np.argmax(p[s]))
                out.append((p[s.start + k], f"{g.name}: {g.classes[k]} {p[s.start + k]:.2f}"))
        if by_confidence:
            out.sort(key=lambda item: -item[0])
        return [text for _, text in out]

    def decode(self, probs: np.ndarray) -> np.ndarray:
        """Predicted targets ``(N, num_groups)`` int64 from probabilities ``(N, num_outputs)``."""
        p = np.asarray(probs).reshape(-1, self.num_outputs)
        cols = [(p[:, s.start] >= 0.5).astype(np.int64) if g.is_binary else np.argmax(p[:, s], axis=1)
                for g, s in zip(self.groups, self.group_slices())]
        return np.stack(cols, axis=1).astype(np.int64) if cols else np.zeros((len(p), 0), np.int64)

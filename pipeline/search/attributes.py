"""Attribute queries: words -> output columns of the ReID model -> P(all given attributes hold).

Vocabulary: the model's attribute output names (``reid.schema``): a binary attribute by its name
(``female``, ``backpack``), negated with a leading ``-`` or ``no-`` (``-hat``, ``no-hat``), and a class of a
multi-class attribute as ``group=class`` (``upper_color=red``; ``group:class`` works too). Several
classes of one group are alternatives (``upper_color=red upper_color=pink``: red or pink).

The probability that all terms hold treats the attribute groups as independent: the product over
groups of ``p`` (binary), ``1 - p`` (negated) or the sum of the chosen classes' probabilities.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.errors import UserError
from reid.schema import AttributeSchema


@dataclass(frozen=True)
class Term:
    """One factor of the joint probability: a binary attribute (maybe negated) or a set of classes of
    one multi-class group; ``columns`` index the model's attribute outputs."""

    group: str
    columns: tuple[int, ...]
    labels: tuple[str, ...]
    negate: bool = False

    @property
    def text(self) -> str:
        if self.negate:
            return "-" + self.group
        return " ".join(self.labels)


def vocabulary(names: Sequence[str]) -> list[str]:
    """The valid query words for a model's attribute output names, for error messages and --help."""
    schema = AttributeSchema.from_output_names(names)
    out = []
    for g in schema.groups:
        out.append(g.name if g.is_binary else f"{g.name}={'|'.join(g.classes)}")
    return out


def _no_attributes(model: str) -> UserError:
    return UserError(f"the ReID model {model!r} predicts no attributes, so attribute search is not possible "
                     "with this run/index; search by appearance (--image / --example), or make the run with a "
                     "model that has attributes (e.g. --reid default)")


def parse_attributes(text: str, names: Sequence[str], model: str = "this model") -> list[Term]:
    """Query words -> terms (several classes of one group merge into one term). Unknown words are a
    UserError that lists the valid ones; a model without attributes is a UserError too."""
    names = [str(n) for n in names]
    if not names:
        raise _no_attributes(model)
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    if not words:
        raise UserError("--attributes is empty; valid words: " + " ".join(vocabulary(names)))
    col = {n: i for i, n in enumerate(names)}
    groups = {n.partition(":")[0] for n in names if ":" in n}
    terms: dict[str, Term] = {}
    bad = []
    for w in words:
        prefix = "-" if w.startswith("-") else "no-" if w.startswith("no-") and w not in col else ""
        neg, key = bool(prefix), w[len(prefix):]
        group, sep, cls = key.replace("=", ":", 1).partition(":")
        if not sep and key in col and key not in groups:
            term = Term(key, (col[key],), (key,), neg)
            if key in terms and terms[key].negate != neg:
                raise UserError(f"--attributes asks for both {key!r} and '-{key}'")
            terms[key] = term
        elif sep and not neg and key.replace("=", ":", 1) in col:
            prev = terms.get(group)
            columns = (prev.columns if prev else ()) + (col[f"{group}:{cls}"],)
            labels = (prev.labels if prev else ()) + (f"{group}={cls}",)
            terms[group] = Term(group, tuple(dict.fromkeys(columns)), tuple(dict.fromkeys(labels)))
        else:
            bad.append(w)
    if bad:
        raise UserError(f"unknown attribute word(s) {', '.join(repr(b) for b in bad)} for model {model!r}; valid: "
                        + " ".join(vocabulary(names))
                        + " (a leading '-' or 'no-' negates a yes/no attribute: -hat, no-hat)")
    return list(terms.values())


def joint_probability(probs: np.ndarray, terms: Sequence[Term]) -> np.ndarray:
    """(N, A) attribute probabilities -> (N,) probability that every term holds."""
    p = np.asarray(probs, np.float32)
    out = np.ones(len(p), np.float32)
    for t in terms:
        q = p[:, list(t.columns)].sum(axis=1) if len(t.columns) > 1 else p[:, t.columns[0]]
        q = np.clip(q, 0.0, 1.0)
        out *= (1.0 - q) if t.negate else q
    return out


def term_columns(terms: Sequence[Term]) -> list[int]:
    """The attribute columns a query reads (so that big indexes read only those)."""
    return sorted({c for t in terms for c in t.columns})

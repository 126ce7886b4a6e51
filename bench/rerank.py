"""Chunked sparse k-reciprocal re-ranking vs a dense transcription of the reference code.

Prints time and peak NumPy memory (tracemalloc) for both on random clustered features, and the
largest difference between their outputs. The dense reference lives in tests/test_rerank.py.

    python bench/rerank.py [--query 300] [--gallery 1500] [--chunk 256]
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_rerank import dense_reference  # noqa: E402

from reid.rerank import k_reciprocal_rerank  # noqa: E402


def features(n: int, ids: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, dim))
    x = centers[rng.integers(0, ids, n)] + 0.8 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(2 - 2 * a @ b.T, 0)).astype(np.float32)


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--query", type=int, default=300)
    ap.add_argument("--gallery", type=int, default=1500)
    ap.add_argument("--chunk", type=int, default=256)
    args = ap.parse_args()
    f = features(args.query + args.gallery, ids=max(2, (args.query + args.gallery) // 6))
    q, g = f[:args.query], f[args.query:]
    mats = (dist(q, g), dist(q, q), dist(g, g))
    ref, t_ref, m_ref = measure(lambda: dense_reference(*mats))
    out, t_new, m_new = measure(lambda: k_reciprocal_rerank(*mats, chunk_size=args.chunk))
    n = args.query + args.gallery
    print(f"k-reciprocal re-ranking, Q={args.query} G={args.gallery} (N={n}), k1=20 k2=6 lambda=0.3")
    print(f"{'implementation':34s} {'seconds':>8s} {'peak MiB':>9s}")
    print(f"{'dense reference (tests)':34s} {t_ref:8.2f} {m_ref:9.1f}")
    print(f"{'reid.rerank chunk=' + str(args.chunk):34s} {t_new:8.2f} {m_new:9.1f}")
    print(f"ratio dense/chunked: time {t_ref / t_new:.2f}x, memory {m_ref / m_new:.2f}x; "
          f"max |diff| {np.abs(ref - out).max():.2e}")


if __name__ == "__main__":
    main()

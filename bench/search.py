#!/usr/bin/env python
"""Appearance and attribute search: quality on real data, speed of the index at a million tracklets.

Three parts (all by default; pick with --parts):

  image       two-camera PETS sample: for every ground-truth person seen by both cameras, query crops
              from one camera (ground-truth boxes, cut from the video frames) are searched among the
              identities of the OTHER camera (--cameras) of a run folder; the target is the identity
              that holds that person there (majority of the person's boxes matched by IoU >= 0.5 to
              the run's boxes). Prints top-1 / top-5 and mAP (relevant: every identity holding >= 20 %
              of the person's matched boxes there), and the same without the camera filter. An
              identity scores by its best tracklet in ANY camera (pipeline/search/rank.py), so a good
              cross-camera association helps: beside each run, two references for the same queries:
              - its tracks with the ORACLE association (each tracklet given the true person it
                overlaps most): the ceiling of the run's tracks;
              - true tracks, one per camera (the mean embedding of a person's ground-truth crops of
                every --ceiling-step-th frame, one gallery entry per person and camera, no
                association): what the ReID model alone does, matching across cameras directly.
  attributes  VIPeR (PETA copy) with its attribute labels mapped onto the model's schema: mAP of
              single-attribute and attribute-pair queries ranked by P(all hold), against random
              rankings, on the split-0 gallery and on all images.
  speed       a synthetic index of --tracklets tracklets (runs of 10,000, --dim dimensions, 33
              attributes): time to add a run of 10,000 tracklets (from a run folder, like 'mcmt index
              add'), and query times (appearance, attributes, both, with filters), in-process and as
              the 'mcmt search' command (bench/search_speed.py).

  python bench/search.py --runs runs/search/default runs/search/intel0286
  python bench/search.py --parts speed --tracklets 1000000 --dim 512
Runs are made first when missing (mcmt run with the default detector, or --detector; the first with
the default ReID, the second with Intel 0286).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.search_speed import speed  # noqa: E402
SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))
DETECTOR = SHARED / "models" / "yolov8n_saved_model" / "yolov8n_full_integer_quant.tflite"
INTEL_0286 = (SHARED / "models" / "openvino" / "person-reidentification-retail-0286" / "FP16"
              / "person-reidentification-retail-0286.xml")
VIPER = SHARED / "data" / "peta" / "VIPeR"


def ensure_run(run: Path, reid: str, detector: str = "default") -> None:
    if (run / "identities.json").is_file():
        return
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--videos", "samples/pets_left.mp4", "samples/pets_right.mp4",
           "--out", str(run), "--detector", detector, "--reid", reid, "--no-progress"]
    subprocess.run(cmd, cwd=REPO, check=True)


# ---- image search on the two-camera sample ------------------------------------------------------
def iou_1toN(b, boxes):
    x1 = np.maximum(b[0], boxes[:, 0]); y1 = np.maximum(b[1], boxes[:, 1])
    x2 = np.minimum(b[0] + b[2], boxes[:, 0] + boxes[:, 2]); y2 = np.minimum(b[1] + b[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (b[2] * b[3] + boxes[:, 2] * boxes[:, 3] - inter)


def holders(gt_rows, pred) -> dict[int, int]:
    """Global id -> number of this person's gt boxes it holds (IoU >= 0.5 in the same frame)."""
    count: dict[int, int] = {}
    for r in gt_rows:
        p = pred[pred[:, 0] == r[0]]
        if len(p):
            iou = iou_1toN(r[2:6], p[:, 2:6])
            k = int(np.argmax(iou))
            if iou[k] >= 0.5:
                count[int(p[k, 1])] = count.get(int(p[k, 1]), 0) + 1
    return count


def query_crops(video: Path, rows, k: int) -> list[np.ndarray]:
    """k crops of one person spread over their time in a camera (the tallest box of each k-th part)."""
    import cv2

    rows = rows[np.argsort(rows[:, 0])]
    picks = [part[np.argmax(part[:, 5])] for part in np.array_split(rows, min(k, len(rows))) if len(part)]
    cap, out = cv2.VideoCapture(str(video)), []
    for r in picks:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(r[0]) - 1)
        ok, frame = cap.read()
        x, y, w, h = (int(round(v)) for v in r[2:6])
        if ok:
            out.append(frame[max(y, 0):y + h, max(x, 0):x + w])
    cap.release()
    return [c for c in out if c.size]


def average_precision(ranked: list[int], relevant: set[int]) -> float:
    hits, ap = 0, 0.0
    for i, gid in enumerate(ranked, 1):
        if gid in relevant:
            hits += 1
            ap += hits / i
    return ap / max(len(relevant), 1)


def person_crops(video: Path, gt_rows, step: int, min_height: int = 20) -> tuple[list[np.ndarray], np.ndarray]:
    """Ground-truth crops of every person on every ``step``-th frame (boxes >= ``min_height`` pixels) and
    their person ids."""
    import cv2

    cap, crops, pids, frame_no = cv2.VideoCapture(str(video)), [], [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frame_no += 1
        if frame_no % step:
            continue
        for r in gt_rows[gt_rows[:, 0] == frame_no]:
            x, y, w, h = (int(round(v)) for v in r[2:6])
            crop = frame[max(y, 0):y + h, max(x, 0):x + w]
            if crop.size and h >= min_height:
                crops.append(crop)
                pids.append(int(r[1]))
    cap.release()
    return crops, np.array(pids, np.int64)


def ceiling_search(enc, cameras: list[str], step: int = 4, k: int = 3) -> dict:
    """The image-search queries of :func:`image_search` against perfect tracks (module docstring)."""
    gt = {c: np.loadtxt(REPO / "samples" / "gt" / c / "gt" / "gt.txt", delimiter=",", ndmin=2) for c in cameras}
    gallery = {}
    for c in cameras:
        crops, pids = person_crops(REPO / "samples" / f"{c}.mp4", gt[c], step)
        feats, _ = enc.embed(crops)
        ids = np.unique(pids)
        means = np.stack([feats[pids == p].mean(0) for p in ids])
        gallery[c] = (ids, means / np.linalg.norm(means, axis=1, keepdims=True))
    pos = []
    for a in cameras:
        for b in cameras:
            if a == b:
                continue
            ids, means = gallery[b]
            for pid in np.intersect1d(gt[a][:, 1], ids):
                feats, _ = enc.embed(query_crops(REPO / "samples" / f"{a}.mp4", gt[a][gt[a][:, 1] == pid], k))
                for f in feats:
                    ranked = ids[np.lexsort((ids, -(means @ f)))]
                    pos.append(int(np.flatnonzero(ranked == pid)[0]) + 1)
    pos = np.array(pos)
    return {"queries": len(pos), "top1": 100 * np.mean(pos <= 1), "top5": 100 * np.mean(pos <= 5),
            "mAP": 100 * np.mean(1.0 / pos)}


def oracle_gallery(run: Path, g):
    """The run's tracklets with the ORACLE association (each given the ground-truth person it overlaps
    most, bench/assoc_eval.py) as a gallery, and its MOT rows per camera."""
    from bench.assoc_eval import RunData
    from pipeline.search.gallery import from_tracklets

    rd = RunData.load(run, REPO / "samples" / "gt")
    ids = rd.oracle_ids()
    return from_tracklets("oracle", run, g.cameras, rd.tracklets, list(ids), g.model), rd.mot(ids)


def image_search(run: Path, k: int = 3) -> dict:
    """Top-1 / top-5 / mAP of the run's identities ("filtered": other camera only; "all": every camera)
    and of the same tracklets under the oracle association ("oracle": other camera only)."""
    from pipeline.search.gallery import load_run
    from pipeline.search.model import load_encoder
    from pipeline.search.rank import Query, rank

    g = load_run(run)
    enc = load_encoder(g.model)
    gt = {c: np.loadtxt(REPO / "samples" / "gt" / c / "gt" / "gt.txt", delimiter=",", ndmin=2) for c in g.cameras}
    pred = {c: np.loadtxt(run / "mot" / f"{c}.txt", delimiter=",", ndmin=2) for c in g.cameras}
    g_oracle, pred_oracle = oracle_gallery(run, g)
    variants = (("filtered", g, pred, True), ("all", g, pred, False), ("oracle", g_oracle, pred_oracle, True))
    stats = {key: [] for key, *_ in variants}
    no_target = 0
    for a in g.cameras:
        for b in g.cameras:
            if a == b:
                continue
            for pid in np.intersect1d(gt[a][:, 1], gt[b][:, 1]):
                feats = None
                for key, gal, rows, only_b in variants:
                    held = holders(gt[b][gt[b][:, 1] == pid], rows[b])
                    if not held:
                        no_target += key == "filtered"
                        continue
                    target = max(held, key=held.get)
                    relevant = {gid for gid, n in held.items() if n >= 0.2 * sum(held.values())}
                    if feats is None:
                        feats, _ = enc.embed(query_crops(REPO / "samples" / f"{a}.mp4", gt[a][gt[a][:, 1] == pid], k))
                    for f in feats:
                        q = Query(embedding=f, cameras=(b,) if only_b else (), top=len(gal.gids))
                        ranked = [r.identity for r in rank([gal], q)]
                        pos = ranked.index(target) + 1 if target in ranked else len(ranked) + 1
                        stats[key].append((pos, average_precision(ranked, relevant)))
    out = {"model": g.model["name"], "queries": len(stats["filtered"]), "no_target": no_target, "encoder": enc,
           "cameras": list(g.cameras)}
    for key, v in stats.items():
        pos = np.array([p for p, _ in v])
        out[key] = {"queries": len(v), "top1": 100 * np.mean(pos <= 1), "top5": 100 * np.mean(pos <= 5),
                    "mAP": 100 * np.mean([ap for _, ap in v])}
    return out


# ---- attribute search on VIPeR --------------------------------------------------------------------
def viper_queries(targets: np.ndarray, schema, min_pos: int = 5) -> list[tuple[str, np.ndarray]]:
    """(query words, (N,) relevance 1/0/-1 unknown) for single terms and pairs of terms of different groups."""
    singles = []
    for gi, grp in enumerate(schema.groups):
        t = targets[:, gi]
        if grp.is_binary:
            for word, rel in ((grp.name, t == 1), ("-" + grp.name, t == 0)):
                singles.append((word, gi, np.where(t < 0, -1, rel.astype(int))))
        else:
            for ci, cls in enumerate(grp.classes):
                singles.append((f"{grp.name}={cls}", gi, np.where(t < 0, -1, (t == ci).astype(int))))
    ok = [(w, g, r) for w, g, r in singles if (r == 1).sum() >= min_pos and (r == 0).sum() >= min_pos]
    pairs = []
    for i, (w1, g1, r1) in enumerate(ok):
        for w2, g2, r2 in ok[i + 1:]:
            if g1 != g2:
                r = np.where((r1 < 0) | (r2 < 0), -1, r1 * r2)
                if (r == 1).sum() >= min_pos:
                    pairs.append((f"{w1} {w2}", r))
    return [(w, r) for w, _, r in ok], pairs


def mean_ap(probs, names, queries, rng) -> tuple[float, float, int]:
    from pipeline.search.attributes import joint_probability, parse_attributes

    aps, rnd, better = [], [], 0
    for words, rel in queries:
        keep = rel >= 0
        s = joint_probability(probs[keep], parse_attributes(words, names))
        r = rel[keep]
        order = np.argsort(-s, kind="stable")
        ap = average_precision(list(order), set(np.flatnonzero(r)))
        ra = np.mean([average_precision(list(rng.permutation(len(r))), set(np.flatnonzero(r))) for _ in range(50)])
        aps.append(ap)
        rnd.append(ra)
        better += ap > ra
    return 100 * float(np.mean(aps)), 100 * float(np.mean(rnd)), better


def attribute_search(model: str = "default") -> list[dict]:
    from reid.data.schemas import COMMON, to_common
    from reid.data.viper import load_viper
    from reid.encoder import ReIDEncoder
    from reid.evaluate import read_image

    enc = ReIDEncoder.from_checkpoint(model)
    if tuple(enc.attribute_names) != COMMON.output_names:
        raise SystemExit(f"{model}: its attributes are not the 'common' schema VIPeR labels map onto")
    data = load_viper(VIPER, split=0)
    rows, rng = [], np.random.default_rng(0)
    for label, samples in (("split-0 gallery", data.gallery), ("all images", data.query + data.gallery + data.train)):
        samples = [s for s in samples if s.attrs is not None]
        _, probs = enc.embed([read_image(s.path) for s in samples])
        targets = to_common(np.stack([s.attrs for s in samples]), data.schema)
        singles, pairs = viper_queries(targets, COMMON)
        for kind, qs in (("single", singles), ("pairs", pairs)):
            m, r, better = mean_ap(probs, enc.attribute_names, qs, rng)
            rows.append({"gallery": f"{label} ({len(samples)})", "queries": f"{kind} ({len(qs)})", "mAP": m,
                         "random mAP": r, "better than random": f"{better}/{len(qs)}"})
    return rows


def table(rows: list[dict]) -> str:
    head = list(rows[0])
    cells = [[f"{r[h]:.1f}" if isinstance(r[h], float) else str(r[h]) for h in head] for r in rows]
    w = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.ljust(x) for c, x in zip(line, w)) for line in [head] + cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["image", "attributes", "speed"])
    ap.add_argument("--runs", nargs="+", type=Path,
                    default=[REPO / "runs" / "search" / "default", REPO / "runs" / "search" / "intel0286"])
    ap.add_argument("--detector", default="default",
                    help="detector of the runs made when missing (default: the embedded one; e.g. the int8 YOLOv8n "
                         f"{DETECTOR})")
    ap.add_argument("--tracklets", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--workdir", type=Path, help="where the synthetic index goes (default: a temporary folder)")
    ap.add_argument("--ceiling-step", type=int, default=4,
                    help="every N-th frame's ground-truth crops make the perfect-tracks gallery (0: no ceiling)")
    args = ap.parse_args()
    if "image" in args.parts:
        rows = []
        for run, reid in zip(args.runs, ["default", str(INTEL_0286)]):
            ensure_run(run, reid, args.detector)
            r = image_search(run)
            for key, what, label in (("filtered", run.name, "other camera (--cameras)"),
                                     ("all", run.name, "all cameras"),
                                     ("oracle", "its tracks, oracle association", "other camera")):
                rows.append({"gallery": what, "model": r["model"], "search in": label, "queries": r[key]["queries"],
                             "top-1 %": r[key]["top1"], "top-5 %": r[key]["top5"], "mAP %": r[key]["mAP"]})
            if args.ceiling_step:
                c = ceiling_search(r["encoder"], r["cameras"], args.ceiling_step)
                rows.append({"gallery": "true tracks, one per camera", "model": r["model"],
                             "search in": "other camera", "queries": c["queries"], "top-1 %": c["top1"],
                             "top-5 %": c["top5"], "mAP %": c["mAP"]})
        print("\nimage search, PETS two-camera sample (ground-truth crops of one camera, target = the identity "
              "holding the person in the other)\n" + table(rows))
    if "attributes" in args.parts:
        print("\nattribute search, VIPeR labels (default model)\n" + table(attribute_search()))
    if "speed" in args.parts:
        work = args.workdir or Path(tempfile.mkdtemp(prefix="mcmt-search-bench-"))
        try:
            rows = speed(args.tracklets, args.dim, work)
        finally:
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
        print(f"\nindex speed ({args.dim}-d embeddings, int8 memory-mapped, {os.cpu_count()} CPU cores)")
        print(table([{"what": k, "seconds": f"{v:.3f}"} for k, v in rows]))


if __name__ == "__main__":
    main()

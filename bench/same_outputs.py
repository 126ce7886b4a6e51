"""Does a change keep ``mcmt run``'s outputs? Runs the two-camera sample with the code of a git
revision (checked out in a temporary worktree) and with the working tree, same settings, and
compares the files byte for byte (identities.json without its timing summary).

    python bench/same_outputs.py [--base HEAD] [--max-frames 200] [--detector FILE] [--set k=v ...]

Prints one row per file and exits 1 when any differs. Use it around refactors that must not change
behaviour; a change that is meant to alter results shows here which files it alters.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = ["samples/pets_left.mp4", "samples/pets_right.mp4"]


def run(code_dir: Path, out: Path, args) -> float:
    """``mcmt run`` on the sample with the package found in ``code_dir``; returns seconds."""
    cmd = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))",
           "run", "--videos", *[str(REPO / v) for v in VIDEOS], "--out", str(out), "--no-progress",
           "--max-frames", str(args.max_frames)]
    if args.detector:
        cmd += ["--detector", args.detector]
    for kv in args.set:
        cmd += ["--set", kv]
    env = {**os.environ, "PYTHONPATH": str(code_dir), "YOLO_OFFLINE": "1"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=code_dir, env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"mcmt run failed with the code in {code_dir}:\n{res.stderr[-3000:]}")
    return time.perf_counter() - t0


def compared_files(a: Path, b: Path) -> list[tuple[str, str]]:
    names = sorted({p.relative_to(a).as_posix() for p in (a / "mot").glob("*.txt")}
                   | {p.relative_to(b).as_posix() for p in (b / "mot").glob("*.txt")}) + ["mtmc.txt", "identities.json"]
    rows = []
    for name in names:
        pa, pb = a / name, b / name
        if not (pa.is_file() and pb.is_file()):
            rows.append((name, "missing on one side"))
        elif name == "identities.json":
            ja, jb = (json.loads(p.read_text()) for p in (pa, pb))
            ja.pop("summary", None), jb.pop("summary", None)
            rows.append((name, "same" if ja == jb else "DIFFERENT"))
        else:
            rows.append((name, "same" if pa.read_bytes() == pb.read_bytes() else "DIFFERENT"))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="HEAD", help="git revision to compare against (default HEAD)")
    p.add_argument("--max-frames", type=int, default=200, help="analysed frames per camera (default 200)")
    p.add_argument("--detector", help="detector model for both runs (default: each side's default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for both")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcmt-same-") as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=REPO, check=True,
                       capture_output=True)
        try:
            t_base = run(base, tmp / "out_base", args)
            t_new = run(REPO, tmp / "out_new", args)
            rows = compared_files(tmp / "out_base", tmp / "out_new")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, capture_output=True)
    print(f"{'file':<28} {args.base} vs working tree")
    for name, verdict in rows:
        print(f"{name:<28} {verdict}")
    print(f"{'seconds':<28} {t_base:.1f} vs {t_new:.1f}")
    return 0 if all(v == "same" for _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

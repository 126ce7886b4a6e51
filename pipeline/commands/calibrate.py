"""Calibrate one camera to the ground plane from 4 or more marked floor points.

Each point pairs a pixel of the camera's image (u, v) with its position on the floor plan (X, Y, in
any unit: metres, centimetres, plan pixels). Points come from a text file (one "u v X Y" per line,
commas or spaces, '#' comments) or from --point u,v,X,Y (repeatable). The homography is fitted
robustly (RANSAC in pixels), the reprojection error of each point is printed, the camera's entry is
written into the calibration YAML (other cameras in it are kept) and a check picture shows the
ground grid and the points over a frame of the video: the grid must lie flat on the floor.

Examples:
  mcmt calibrate --camera cam1 --video cam1.mp4 --points cam1_points.txt --out calibration.yaml
  mcmt calibrate --camera cam2 --video cam2.mp4 --point 12,300,0,0 --point 350,290,5,0 \\
      --point 300,120,5,8 --point 40,130,0,8 --out calibration.yaml --units m
  mcmt run --videos cam1.mp4 cam2.mp4 --calibration calibration.yaml
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def add_arguments(p):
    p.add_argument("--camera", required=True, metavar="NAME", help="camera name (the video stem or its --names name)")
    p.add_argument("--video", required=True, metavar="VIDEO", help="the camera's video (or an image) for the check picture")
    p.add_argument("--points", metavar="FILE", help="text file: one 'u v X Y' per line (image pixel, ground position)")
    p.add_argument("--point", action="append", default=[], metavar="U,V,X,Y", help="one point pair (repeatable)")
    p.add_argument("--out", default="calibration.yaml", metavar="YAML",
                   help="calibration file to write or update (default calibration.yaml)")
    p.add_argument("--units", metavar="UNIT", help="ground units shown on the map, e.g. m (kept when not given)")
    p.add_argument("--frame", type=int, default=0, metavar="N", help="video frame for the check picture (default 0)")
    p.add_argument("--picture", metavar="IMAGE", help="check picture to write (default: next to --out, "
                                                      "<out stem>_<camera>.jpg)")


def parse_points(text: str, source: str) -> list[list[float]]:
    """Rows [u, v, X, Y] from lines of 4 numbers (spaces or commas; '#' starts a comment)."""
    from core.errors import UserError

    rows = []
    for k, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].replace(",", " ").split()
        if not line:
            continue
        try:
            values = [float(v) for v in line]
        except ValueError:
            values = []
        if len(values) != 4:
            raise UserError(f"{source}:{k}: expected 4 numbers 'u v X Y' (image pixel, ground position), "
                            f"got {' '.join(line)!r}")
        rows.append(values)
    return rows


def read_frame(video: str, index: int) -> np.ndarray:
    """Frame ``index`` of a video file (or the image itself), BGR."""
    import cv2

    from core.errors import UserError

    image = cv2.imread(video) if Path(video).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") else None
    if image is None:
        cap = cv2.VideoCapture(video)
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = cap.read()
        cap.release()
        if not ok:
            raise UserError(f"cannot read frame {index} of {video} (is it a video file? try --frame 0)")
    return image


def update_file(path: Path, camera: str, points: list, units) -> None:
    """Set ``cameras.<camera>: {points: ...}`` in the calibration YAML, keeping the other cameras."""
    import yaml

    from core.atomic import atomic_write_text
    from core.config import read_yaml

    doc = read_yaml(path) if path.is_file() else {}
    if units:
        doc["units"] = units
    cams = doc.setdefault("cameras", {}) or {}
    cams[camera] = {"points": [[round(float(v), 4) for v in row] for row in points]}
    doc["cameras"] = cams
    head = "# camera calibration: image -> ground (mcmt calibrate); use with mcmt run --calibration FILE\n"
    atomic_write_text(path, head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def main(args) -> int:
    import cv2

    from core.atomic import atomic_write
    from core.errors import UserError
    from pipeline.formats.calibration import apply_homography, check_homography, fit_points, load_calibration
    from pipeline.outputs.calibration_view import draw_check

    rows = []
    if args.points:
        if not Path(args.points).is_file():
            raise UserError(f"points file not found: {args.points}")
        rows += parse_points(Path(args.points).read_text(), args.points)
    rows += parse_points("\n".join(args.point), "--point")
    image = read_frame(args.video, args.frame)
    pts = np.asarray(rows, np.float64).reshape(-1, 4)
    h, errors, inliers = fit_points(pts, args.camera)
    size = (image.shape[1], image.shape[0])
    check_homography(h, args.camera, np.array([[0.0, size[1]], [size[0] / 2, size[1]], [size[0], size[1]]]))
    ground_err = np.hypot(*(apply_homography(h, pts[:, :2]) - pts[:, 2:4]).T)
    print(f"{'#':>3} {'u':>8} {'v':>8} {'X':>10} {'Y':>10} {'error px':>9} {'error ground':>13}  kept")
    for k, (r, e, g, ok) in enumerate(zip(pts, errors, ground_err, inliers), 1):
        print(f"{k:3d} {r[0]:8.1f} {r[1]:8.1f} {r[2]:10.3f} {r[3]:10.3f} {e:9.2f} {g:13.4f}  {'yes' if ok else 'NO'}")
    print(f"median reprojection error {np.median(errors[inliers]):.2f} px over {int(inliers.sum())} of {len(pts)} points")
    out = Path(args.out)
    update_file(out, args.camera, pts.tolist(), args.units)
    load_calibration(out)                                           # what we wrote reads back and checks
    picture = Path(args.picture) if args.picture else out.with_name(f"{out.stem}_{args.camera}.jpg")
    drawn = draw_check(image, h, pts, inliers)
    if picture.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        raise UserError(f"--picture {picture}: use a .jpg or .png name")
    atomic_write(picture, lambda tmp: cv2.imwrite(tmp, drawn), suffix=picture.suffix)
    print(f"wrote camera '{args.camera}' into {out} and the check picture {picture}")
    return 0

"""The footages of the multi-camera bench (bench/mtmc.py): where their videos and ground truth are,
and the photometric variants of the two-camera sample, made on the fly.

Footages:

  sample        samples/pets_left.mp4 + pets_right.mp4: two cuts of one PETS09 camera (blind strip between)
  three-views   the same cut plus a centre camera at another scale and colour response that overlaps
                both (samples/make_pets_multicam.py --third-view, made under the bench's folder)
  epfl          ../shared/data/epfl-terrace: two real, different cameras over one terrace (overlapping)
  pets09        ../shared/data/pets09-s2l1: the whole PETS09 view, one camera (people leave and come back:
                the association's joins within one camera; its "cross-camera" IDF1 is the camera's IDF1)
  sample~KIND-S the sample whose second camera differs as real cameras do (KIND at strength S):
                gamma, colour cast, white balance, blur, low resolution (down- and up-scaled, so the ground
                truth keeps its coordinates), JPEG-like compression
  epfl~KIND-S   EPFL terrace with its second camera altered the same way: two real, different cameras, one
                of them also degraded (not in ``all``: ``epfl-variants``, ``epfl-strong``; a check that the
                defaults chosen on the sample's variants hold on other footage)
  BASE~noise-strong, ~dark-strong, ~motion-strong, ~mono-strong  sensor noise, low light, horizontal motion
                blur, a monochrome camera (night / infrared mode: grey): a check set of other ways a camera
                differs (not in ``all``: ``check``, ``epfl-check``)
  NAME@K        any footage above analysed at every K-th frame (``mcmt run --stride K``): low frame rates, where
                people move far between two analysed frames; the group ``low-fps`` holds the PETS09 footages at
                3.5 frames/s (@2), PETS09 also in two renditions (``pets09~jitter-a / -b``: its camera's gamma at
                0.97 / 1.03), and EPFL terrace's three renditions at 3.1 frames/s (@8), not in ``all``
  epfl~jitter-a / -b  EPFL terrace with its second camera's gamma at 0.97 / 1.03: invisible to the eye, but
                the crossings of that camera are on a knife's edge (one id switch more or less moves the
                footage's cross-camera IDF1 by up to 14 points), so a change is judged on the three renditions
                of EPFL, not on one draw (in ``all``; group ``epfl-jitter``)

A variant's first camera is its base footage's own file, so its stage cache can be reused from the base
footage's run (same input, same key); only the altered camera is analysed again.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))
SAMPLES = REPO / "samples"
EPFL = SHARED / "data" / "epfl-terrace"


@dataclass(frozen=True)
class Footage:
    name: str
    videos: tuple[str, ...]
    gt: str
    topology: str | None = None
    reuse: dict = field(default_factory=dict)    # camera -> footage whose cache of that camera is the same
    note: str = ""
    stride: int = 1                              # analyse every stride-th frame (NAME@K)


# kind -> {strength: parameter}; "mild" is what a second camera of the same make differs by, "strong" what
# a different make, light or codec gives
VARIANTS = {
    "gamma": {"mild": 0.7, "strong": 1.6},                       # output = input ** gamma (0-1 scale)
    "cast": {"mild": (1.0, 0.9, 1.2), "strong": (1.0, 0.8, 1.45)},  # B, G, R gains (a colour response)
    "wb": {"mild": (1.2, 1.0, 0.85), "strong": (1.45, 1.0, 0.7)},   # white balance: bluish, dimmer red
    "blur": {"mild": 1.2, "strong": 2.5},                         # Gaussian sigma (px)
    "lowres": {"mild": 0.5, "strong": 0.33},                     # scale of the analysed detail
    "jpeg": {"mild": 25, "strong": 8},                           # JPEG quality
}
# more ways a real camera differs, a check set (not in ``all``; groups ``check``, ``epfl-check``): what the
# defaults were not chosen on
CHECK_VARIANTS = {
    "noise": {"strong": 12.0},                                   # sensor noise: Gaussian sigma (grey levels)
    "dark": {"strong": 0.35},                                    # low light: gain, then sensor noise sigma 3
    "motion": {"strong": 9},                                     # horizontal motion blur: kernel length (px)
    "mono": {"strong": 1.0},                                     # a monochrome (night / IR mode) camera: grey
}
JITTER = {"a": 0.97, "b": 1.03}    # EPFL renditions: gamma of the second camera, an invisible change


def alter(frame: np.ndarray, kind: str, param) -> np.ndarray:
    """One BGR frame as another camera would give it (see VARIANTS)."""
    if kind == "gamma":
        lut = np.clip(255.0 * (np.arange(256) / 255.0) ** param, 0, 255).astype(np.uint8)
        return cv2.LUT(frame, lut)
    if kind in ("cast", "wb"):
        return np.clip(frame.astype(np.float32) * np.asarray(param, np.float32), 0, 255).astype(np.uint8)
    if kind == "blur":
        return cv2.GaussianBlur(frame, (0, 0), float(param))
    if kind == "lowres":
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (max(1, round(w * param)), max(1, round(h * param))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(param)])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if kind in ("noise", "dark"):
        gain, sigma = (1.0, float(param)) if kind == "noise" else (float(param), 3.0)
        rng = np.random.default_rng(zlib.crc32(frame[::16, ::16].tobytes()))   # the same noise on every rerun
        noisy = frame.astype(np.float32) * gain + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if kind == "mono":
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if kind == "motion":
        kernel = np.full((1, int(param)), 1.0 / int(param), np.float32)
        return cv2.filter2D(frame, -1, kernel)
    raise ValueError(f"unknown variant kind {kind!r}: one of {', '.join({**VARIANTS, **CHECK_VARIANTS})}")


def write_altered(src: Path, dst: Path, kind: str, param) -> None:
    """``src`` video with every frame altered, written atomically to ``dst`` at the same size and fps."""
    cap = cv2.VideoCapture(str(src))
    fps, size = cap.get(cv2.CAP_PROP_FPS), (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.stem + ".tmp" + dst.suffix)
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.write(alter(frame, kind, param))
    out.release()
    cap.release()
    os.replace(tmp, dst)


BASES = ("sample", "epfl")                          # footages whose second camera the variants alter


def variant_names(base: str = "sample", kinds: dict = VARIANTS) -> list[str]:
    """``BASE~KIND-STRENGTH`` of every kind and strength in ``kinds`` (VARIANTS or CHECK_VARIANTS)."""
    return [f"{base}~{k}-{s}" for k, strengths in kinds.items() for s in strengths]


def jitter_names() -> list[str]:
    return [f"epfl~jitter-{k}" for k in JITTER]


def sample() -> Footage:
    return Footage("sample", tuple(str(SAMPLES / f"pets_{s}.mp4") for s in ("left", "right")), str(SAMPLES / "gt"),
                   note="PETS09 S2L1 cut in two, blind strip (views do not overlap)")


def three_views(folder: Path) -> Footage:
    videos = tuple(str(folder / f"pets_{s}.mp4") for s in ("left", "right", "third"))
    if not all(Path(v).is_file() for v in videos) or not (folder / "gt" / "mtmc.txt").is_file():
        video = SHARED / "data" / "pets09-s2l1" / "vtest.avi"
        if not video.is_file():
            raise FileNotFoundError(f"the three-camera cut needs {video} (set MCMT_SHARED)")
        subprocess.run([sys.executable, str(SAMPLES / "make_pets_multicam.py"), "--video", str(video),
                        "--out", str(folder), "--third-view"], check=True, stdout=subprocess.DEVNULL)
    return Footage("three-views", videos, str(folder / "gt"),
                   note="PETS09 cut in three: centre view overlaps both, other scale and colours")


def epfl() -> Footage:
    videos = tuple(str(EPFL / f"terrace_c{k}.mp4") for k in (0, 1))
    if not all(Path(v).is_file() for v in videos):
        raise FileNotFoundError(f"EPFL terrace is not in {EPFL} (set MCMT_SHARED)")
    return Footage("epfl", videos, str(EPFL / "gt"), note="EPFL terrace1, two real cameras, overlapping views")


def pets09() -> Footage:
    folder = SHARED / "data" / "pets09-s2l1"
    if not (folder / "vtest.avi").is_file():
        raise FileNotFoundError(f"PETS09-S2L1 is not in {folder} (set MCMT_SHARED)")
    return Footage("pets09", (str(folder / "vtest.avi"),), str(folder), note="PETS09-S2L1, one camera")


def variant(name: str, folder: Path) -> Footage:
    """A base footage with its second camera altered (``BASE~KIND-STRENGTH``, BASE in ``BASES``), the
    altered video made under ``folder`` with the original's file name (the ground truth names cameras so)."""
    base_name, rest = name.split("~", 1)
    kind, strength = rest.rsplit("-", 1)
    choices = {**VARIANTS, **CHECK_VARIANTS, **({"jitter": JITTER} if base_name == "epfl" else {})}
    if base_name == "pets09":                            # one camera: only its renditions (pets09~jitter-a / -b)
        choices = {"jitter": JITTER}
    if base_name not in (*BASES, "pets09") or kind not in choices or strength not in choices[kind]:
        raise ValueError(f"unknown variant {name!r}: BASE~KIND-STRENGTH with BASE in {BASES}, KIND in "
                         f"{list(VARIANTS) + list(CHECK_VARIANTS)}, STRENGTH in mild / strong (the check kinds: "
                         f"strong; or epfl~jitter-a / -b)")
    param = choices[kind][strength]
    base = {"sample": sample, "epfl": epfl, "pets09": pets09}[base_name]()
    src = Path(base.videos[-1])                          # the second camera (PETS09: its one camera)
    dst = folder / name.replace("~", "_") / src.name
    if not dst.is_file():
        write_altered(src, dst, "gamma" if kind == "jitter" else kind, param)   # a jitter is a slight gamma
    if len(base.videos) == 1:
        return Footage(name, (str(dst),), base.gt, note=f"the camera: {kind} {param}")
    return Footage(name, (base.videos[0], str(dst)), base.gt, reuse={Path(base.videos[0]).stem: base_name},
                   note=f"second camera: {kind} {param}")


LOW_FPS = ("sample@2", "three-views@2", "pets09@2", "pets09~jitter-a@2", "pets09~jitter-b@2", "sample~blur-mild@2",
           "sample~jpeg-strong@2", "epfl@8", "epfl~jitter-a@8", "epfl~jitter-b@8")


def footage(name: str, folder: Path) -> Footage:
    if "@" in name:
        base, _, k = name.rpartition("@")
        if not k.isdigit() or int(k) < 1:
            raise ValueError(f"footage {name!r}: after '@' give the stride, a whole number >= 1 (e.g. {base}@2)")
        fp = footage(base, folder)
        return replace(fp, name=name, reuse={}, stride=int(k), note=f"{fp.note}, one frame in {k}")
    if name == "sample":
        return sample()
    if name == "three-views":
        return three_views(folder / "pets_3views")
    if name == "epfl":
        return epfl()
    if name == "pets09":
        return pets09()
    if "~" in name:
        return variant(name, folder / "variants")
    raise ValueError(f"unknown footage {name!r}: sample, three-views, epfl, pets09, variants, epfl-variants, "
                     f"check, epfl-check, or one of {variant_names()} / {variant_names('epfl')}")


def expand(names: list[str]) -> list[str]:
    """Footage names with ``variants`` expanded into every variant and ``all`` into everything."""
    out: list[str] = []
    for n in names:
        if n == "all":
            out += ["sample", "three-views", "epfl", *jitter_names(), "pets09", *variant_names()]
        elif n == "variants":
            out += variant_names()
        elif n == "check" or n == "epfl-check":
            out += variant_names("epfl" if n == "epfl-check" else "sample", CHECK_VARIANTS)
        elif n == "low-fps":
            out += LOW_FPS
        elif n == "epfl-jitter":
            out += jitter_names()
        elif n == "epfl-variants":
            out += variant_names("epfl")
        elif n == "mild" or n == "strong":
            out += [v for v in variant_names() if v.endswith("-" + n)]
        elif n == "epfl-mild" or n == "epfl-strong":
            out += [v for v in variant_names("epfl") if v.endswith("-" + n[5:])]
        else:
            out.append(n)
    return list(dict.fromkeys(out))

"""Find a person across all cameras: rank the identities of a run (or of an index of many runs) by
appearance similarity to a query person, by the probability that given attributes hold, or both.

The query person is a photo (--image; the person is the --box, the whole image with --crop, else the
largest person the run's detector finds) or a person of the run (--example). Appearance is compared
with the ReID model the run was made with (run.json), so the query and the gallery are comparable.
Attribute words are the model's attribute names: yes/no attributes by name (-NAME or no-NAME negates),
classes as GROUP=CLASS; several classes of one group are alternatives. An unknown word lists the valid ones.

Scores: appearance = cosine similarity of the identity's best-matching tracklet in any camera (the
person as associated across cameras); attributes = probability that all hold; both = (1 + cosine) / 2 x
probability. --cameras and --from/--to keep the identities seen by those cameras in that time window
(seconds); cameras, first/last seen and tracklets listed are those of the kept tracklets.

Examples:
  mcmt search --run runs/x --image person.jpg
  mcmt search --run runs/x --example cam1:7 --cameras cam2
  mcmt search --run runs/x --attributes "female backpack upper_color=red" --from 60 --to 120
  mcmt search --index runs/search-index --image photo.jpg --box 120,40,60,170 --json hits.json --html hits.html
  mcmt search --index runs/search-index --example x:cam1:7    (RUN:CAMERA:ID with an index)
"""
from __future__ import annotations

import logging
from pathlib import Path

from core.errors import UserError

log = logging.getLogger(__name__)


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="DIR", help="search one folder written by 'mcmt run'")
    src.add_argument("--index", metavar="DB",
                     help="search an index made with 'mcmt index add'; a damaged run in it stops the search "
                          "(exit 2, no results) with a line naming the run and 'mcmt index add RUN --index DB', "
                          "which adds it again")
    q = p.add_argument_group("query (at least one of --image / --example and/or --attributes)")
    q.add_argument("--image", metavar="FILE", help="photo of the person to find")
    q.add_argument("--box", metavar="X,Y,W,H", help="the person's box in --image (pixels)")
    q.add_argument("--crop", action="store_true", help="--image is a crop of one person: use all of it")
    q.add_argument("--example", metavar="SPEC",
                   help="a person of the run: CAMERA:ID (global id as in mot/CAMERA.txt, its tracklets in that "
                        "camera), ID (all its tracklets) or CAMERA:tN (local track N); with --index prefix RUN: "
                        "(run id or name from 'mcmt index list'); its own tracklets are left out of the results")
    q.add_argument("--attributes", metavar="WORDS", help='e.g. "female backpack upper_color=red no-hat"')
    f = p.add_argument_group("filters and output")
    f.add_argument("--cameras", nargs="+", metavar="CAM", help="only tracklets of these cameras")
    f.add_argument("--from", dest="t_from", type=float, metavar="SECONDS", help="only tracklets seen after this time")
    f.add_argument("--to", dest="t_to", type=float, metavar="SECONDS", help="only tracklets seen before this time")
    f.add_argument("--top", type=int, default=10, metavar="K", help="number of identities shown (default 10)")
    f.add_argument("--json", metavar="FILE", help="write the query and results to this JSON file")
    f.add_argument("--html", metavar="FILE", help="write a self-contained HTML page of the results")
    m = p.add_argument_group("models")
    m.add_argument("--reid", metavar="MODEL", help="the run's ReID model file, when it moved since the run")
    m.add_argument("--detector", metavar="MODEL",
                   help="detector for --image without --box/--crop (default: the run's, 'default' for an index)")
    m.add_argument("--device", default="cpu", help="device of the ReID model for --image: cpu (default), auto, cuda")


def _check_args(args) -> None:
    if args.image and args.example:
        raise UserError("give either --image or --example, not both")
    if (args.box or args.crop) and not args.image:
        raise UserError("--box and --crop describe --image; give --image too")
    if args.box and args.crop:
        raise UserError("give either --box or --crop")
    if args.box:
        from pipeline.search.queryimage import parse_box
        parse_box(args.box)                     # a malformed --box fails before any index or model is read
    if not (args.image or args.example or args.attributes):
        raise UserError("nothing to search for: give --image FILE, --example SPEC and/or --attributes WORDS")


def _source(args):
    """(galleries list or index, model record, camera names, run label for examples)."""
    from pipeline.search.gallery import load_run
    from pipeline.search.index import SearchIndex

    if args.run:
        g = load_run(args.run)
        return [g], None, g.model, g.cameras, g.attribute_names
    ix = SearchIndex(args.index)
    runs = ix.runs()
    if not runs:
        raise UserError(f"the index {args.index} holds no run; add one with 'mcmt index add RUN --index {args.index}'")
    cams = list(dict.fromkeys(c for r in runs for c in r["cameras"]))
    return None, ix, runs[0]["model"], cams, tuple(runs[0]["attribute_names"])


def _example(args, galleries, ix):
    """(embedding, exclude) of --example."""
    from pipeline.search.rank import example_embedding, example_rows, gallery_key

    spec = args.example
    if ix is not None:
        ref, sep, rest = spec.partition(":")
        if not sep:
            raise UserError(f"--example {spec!r}: with --index give RUN:CAMERA:ID or RUN:ID (runs: 'mcmt index list')")
        g = next(ix.galleries([ix.find_run(ref)]))
        spec = rest
    else:
        g = galleries[0]
    rows = example_rows(g, spec)
    return example_embedding(g, rows), {gallery_key(g): rows}


def _image(args, model):
    """(embedding, crop, box, how) of --image."""
    from core.device import resolve_device
    from pipeline.search.model import load_encoder
    from pipeline.search.queryimage import embed_crop, person_crop

    det_model = args.detector or "default"
    if not args.detector and args.run:
        from pipeline.runfolder.runfile import run_settings
        det_model = str((run_settings(Path(args.run)).get("detector") or {}).get("model", "default"))
    crop, box, how = person_crop(args.image, args.box, args.crop, det_model)
    enc = load_encoder(model, args.reid, resolve_device(args.device))
    return embed_crop(enc, crop), crop, box, how


def main(args) -> int:
    from pipeline.search.attributes import parse_attributes
    from pipeline.search.model import describe
    from pipeline.search.rank import Query, rank
    from pipeline.search.results import format_table, results_doc

    _check_args(args)
    galleries, ix, model, cameras, attr_names = _source(args)
    unknown = [c for c in (args.cameras or []) if c not in cameras]
    if unknown:
        raise UserError(f"--cameras: unknown camera(s) {', '.join(unknown)}; cameras: {', '.join(cameras)}")
    terms = tuple(parse_attributes(args.attributes, attr_names, model.get("name"))) if args.attributes else ()
    emb, exclude, crop, query = None, {}, None, {"run": args.run, "index": args.index}
    if args.example:
        emb, exclude = _example(args, galleries, ix)
        query["example"] = args.example
    elif args.image:
        emb, crop, box, how = _image(args, model)
        query.update(image=args.image, box=[round(v, 1) for v in box], box_from=how)
    query.update(attributes=[t.text for t in terms], cameras=args.cameras, t_from=args.t_from, t_to=args.t_to,
                 top=args.top, model=describe(model))
    q = Query(embedding=emb, terms=terms, cameras=tuple(args.cameras or ()), t_from=args.t_from, t_to=args.t_to,
              exclude=exclude, top=args.top)
    results = rank(galleries if ix is None else ix.galleries(), q)
    print(format_table(results, show_run=ix is not None))
    query = {("from" if k == "t_from" else "to" if k == "t_to" else k): v for k, v in query.items()}
    if args.json:
        from core.atomic import atomic_write_json
        atomic_write_json(args.json, results_doc(query, results))
        log.info("wrote %s", args.json)
    if args.html:
        from pipeline.search.html import write_html
        write_html(args.html, query, results, crop)
        log.info("wrote %s", args.html)
    return 0

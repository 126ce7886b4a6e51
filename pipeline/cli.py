"""The ``mcmt`` command line: subcommand dispatch, logging, config loading and error reporting.

Each subcommand lives in ``pipeline/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``main(args) -> int``; it may set ``CONFIG_CLASS`` (a config
dataclass), in which case ``args.cfg`` holds it, loaded from ``--config`` and ``--set``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from core.errors import UserError, disk_full_message

log = logging.getLogger("mcmt")

# name -> (module, one-line help)
COMMANDS = {
    "run": ("pipeline.commands.run", "detect, track and identify people across camera videos"),
    "associate": ("pipeline.commands.associate", "redo only the cross-camera association of a run folder"),
    "eval": ("pipeline.commands.eval", "score tracking output against ground truth (HOTA, MOTA, IDF1)"),
    "train-reid": ("pipeline.commands.train_reid", "train the multi-task ReID network"),
    "eval-reid": ("pipeline.commands.eval_reid", "evaluate a ReID model: CMC, mAP, attribute accuracy"),
    "tune-trunk": ("pipeline.commands.tune_trunk", "tune an OpenVINO ReID trunk's last block for worse cameras"),
    "export-reid": ("pipeline.commands.export_reid", "export a ReID checkpoint to ONNX"),
    "calibrate-attributes": ("pipeline.commands.calibrate_attributes",
                             "fit a ReID checkpoint's attribute thresholds on its training images"),
    "calibrate": ("pipeline.commands.calibrate",
                  "fit a camera's image -> ground homography from marked floor points (the ground plane)"),
    "search": ("pipeline.commands.search", "find a person across cameras by photo, example or attributes"),
    "index": ("pipeline.commands.index", "add runs to / remove them from / list a search index"),
}


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--config", metavar="FILE", help="YAML config file (defaults are built in)")
    group.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                       help="override a config value, e.g. --set tracker.track_buffer=60 (repeatable)")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="more output (debug logging, tracebacks on errors)")
    group.add_argument("-q", "--quiet", action="count", default=0, help="less output (warnings and errors only)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="mcmt",
        description="Multi-camera multi-target person tracking with a multi-task ReID network.")
    parser.add_argument("-v", "--verbose", action="count", default=0, dest="top_verbose",
                        help="more output (also accepted after the command)")
    parser.add_argument("-q", "--quiet", action="count", default=0, dest="top_quiet", help="less output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, parents=[common], help=help_text,
                           description=(module.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def setup_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet:
        level = logging.WARNING if quiet == 1 else logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose
                                           else "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def load_command_config(module, args) -> None:
    """Set ``args.cfg`` from ``--config``/``--set`` when the command has a config class."""
    cls = getattr(module, "CONFIG_CLASS", None)
    if cls is None:
        if args.config or args.overrides:
            raise UserError(f"'mcmt {args.command}' takes no --config/--set")
        return
    from core.config import load_config

    args.cfg = load_config(cls, args.config, args.overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    args.verbose += args.top_verbose
    args.quiet += args.top_quiet
    if args.quiet and hasattr(args, "no_progress"):
        args.no_progress = True          # quiet output has no progress bar either
    setup_logging(args.verbose, args.quiet)
    try:
        load_command_config(args._module, args)
        return int(args._module.main(args) or 0)
    except UserError as exc:
        if args.verbose:
            log.exception("error")
        print(f"mcmt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mcmt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: one line, traceback with -v
        if args.verbose:
            log.exception("unexpected error")
        elif disk_full_message(exc):
            print(f"mcmt {args.command}: error: {disk_full_message(exc)}", file=sys.stderr)
        else:
            print(f"mcmt {args.command}: {type(exc).__name__}: {exc} (rerun with -v for the traceback)",
                  file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

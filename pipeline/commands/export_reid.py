"""Export a ReID checkpoint to ONNX and check numerical parity with PyTorch.

Example:
  mcmt export-reid --checkpoint model.pt --out model.onnx
"""
from pipeline.commands._stub import not_built


def add_arguments(p):
    p.add_argument("--checkpoint", required=True, help="our .pt checkpoint")
    p.add_argument("--out", required=True, metavar="FILE", help="ONNX file to write")


def main(args) -> int:
    raise not_built("export-reid", "ONNX export")

"""``convlens serve [RUNS_DIR]``: the chapter in the browser, on your own models and runs.

Four tabs over one small Starlette app (``app.py``), every asset local (works offline):

==========  ===================================================================================
Image       an uploaded picture through a pretrained backbone or any run's model: top-5,
            Grad-CAM with a layer picker, feature maps by stage, first-layer filters (``image.py``)
Runs        every run under the folder: curves, confusion matrix -> test images, most
            confidently wrong images, config, live progress (``events.jsonl``), train a recipe
            (``runview.py``)
Layers      any model's layer table; W2 = (W1 - F + 2P)/S + 1 with a picture (``labs.py``)
Graphs      karate / Cora: A, Â, X and one graph convolution H' = ReLU(Â X W) (``labs.py``)
==========  ===================================================================================

Safe by default: binds 127.0.0.1, uploads are size- and pixel-capped images decoded by PIL
(``uploads.py``), only files under the runs folder are served (``files.py``).

>>> from convlens.serve import create_app      # a Starlette app (tests: starlette.testclient)
>>> from convlens.serve import serve           # uvicorn, blocking
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {"create_app": "app", "serve": "app", "safe_path": "files", "decode_image": "uploads",
         "UploadError": "uploads", "RECIPES": "runview"}

__all__ = ["RECIPES", "UploadError", "create_app", "decode_image", "safe_path", "serve"]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

"""Hand-marked fixtures and geometry helpers shared by the explain tests."""
from __future__ import annotations

# The chapter's cat.jpg (1920x1080) boxes, marked by hand on the photo (x0, y0, x1, y1 in pixels).
# The whole cat, from the tip of the upright ear to the paws; the wall above and the floor below are out.
CAT_BOX = (0, 130, 1920, 960)
# The head: from the left cheek to the right ear, ear tip to chin.
HEAD_BOX = (860, 140, 1670, 940)



def box_to_input(box, source_size, image_size: int, crop_pct: float):
    """Map a box in the original photo to the model input (timm eval transform: resize the
    short side to floor(size / crop_pct), centre-crop size). Returns integer pixel bounds."""
    import math

    w, h = source_size
    scaled = math.floor(image_size / crop_pct)
    s = scaled / min(w, h)
    nw, nh = round(w * s), round(h * s)
    ox, oy = (nw - image_size) / 2, (nh - image_size) / 2
    x0, y0, x1, y1 = box
    clip = lambda v: int(min(max(round(v), 0), image_size))  # noqa: E731
    return clip(x0 * s - ox), clip(y0 * s - oy), clip(x1 * s - ox), clip(y1 * s - oy)

"""Rasterise what an env's ``render()`` returns into RGB images with Pillow (CPython only).

Draw lists (:mod:`pyodide_runtime.envs.draw`: canvas, rect, circle, line, text) are painted as the page's canvas
paints them; RGB(A) arrays are used as they are, scaled up by whole pixels. :func:`stamp` adds a caption band
under a frame, leaving the game's pixels untouched.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from PIL import Image, ImageColor, ImageDraw, ImageFont

__all__ = ["rasterise", "draw_list", "rgb_array", "stamp", "parse_colour", "page_scale", "DEFAULT_SIZE"]

#: Canvas size when a draw list does not start with a ``canvas`` shape (the page's canvas default).
DEFAULT_SIZE = (432, 384)
_RGBA = re.compile(r"^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+%?)\s*)?\)$", re.IGNORECASE)
_FONTS = {
    False: ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    True: ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
}


def parse_colour(value: Any, default: tuple[int, int, int, int] = (0, 0, 0, 255)) -> tuple[int, int, int, int]:
    """A CSS colour (``#rgb``, ``#rrggbb``, ``rgb()``, ``rgba()``, names, ``hsl()``) as RGBA; ``default`` if unknown."""
    if not isinstance(value, str) or not value.strip():
        return default
    text = value.strip()
    m = _RGBA.match(text)
    if m:
        r, g, b = (max(0, min(255, round(float(v)))) for v in m.groups()[:3])
        alpha = m.group(4)
        a = 1.0 if alpha is None else (float(alpha[:-1]) / 100 if alpha.endswith("%") else float(alpha))
        return r, g, b, max(0, min(255, round(a * 255)))
    try:
        rgb = ImageColor.getcolor(text, "RGBA")
    except ValueError:
        return default
    return rgb if isinstance(rgb, tuple) and len(rgb) == 4 else default  # type: ignore[return-value]


@lru_cache(maxsize=64)
def _font(size: int, bold: bool) -> Any:
    for name in _FONTS[bold]:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def draw_list(shapes: list[dict[str, Any]]) -> Image.Image:
    """Paint a draw list into an RGB image."""
    size = DEFAULT_SIZE
    for s in shapes:
        if isinstance(s, dict) and s.get("type") == "canvas":
            size = (max(1, int(s.get("w", size[0]))), max(1, int(s.get("h", size[1]))))
            break
    image = Image.new("RGB", size, (255, 255, 255))
    pen = ImageDraw.Draw(image, "RGBA")
    for s in shapes:
        if not isinstance(s, dict):
            continue
        kind = s.get("type")
        width = max(1, round(float(s.get("line_width") or 1)))
        stroke = parse_colour(s.get("stroke")) if s.get("stroke") else None
        if kind == "canvas":
            w, h = int(s.get("w", size[0])), int(s.get("h", size[1]))
            pen.rectangle([0, 0, w - 1, h - 1], fill=parse_colour(s.get("fill"), (255, 255, 255, 255)))
        elif kind == "rect":
            x, y, w, h = (float(s[k]) for k in ("x", "y", "w", "h"))
            if w > 0 and h > 0:
                pen.rectangle([x, y, x + w - 1, y + h - 1], fill=parse_colour(s.get("fill")))
                if stroke:  # a canvas stroke is centred on the rectangle's edge
                    half = width / 2
                    pen.rectangle([x - half, y - half, x + w + half - 1, y + h + half - 1], outline=stroke,
                                  width=width)
        elif kind == "circle":
            x, y, r = float(s["x"]), float(s["y"]), float(s["r"])
            pen.ellipse([x - r, y - r, x + r, y + r], fill=parse_colour(s.get("fill")))
            if stroke:
                half = width / 2
                pen.ellipse([x - r - half, y - r - half, x + r + half, y + r + half], outline=stroke, width=width)
        elif kind == "line":
            pen.line([float(s["x1"]), float(s["y1"]), float(s["x2"]), float(s["y2"])],
                     fill=stroke or (0, 0, 0, 255), width=width)
        elif kind == "text":
            align = s.get("align") if s.get("align") in ("left", "center", "right") else "left"
            anchor = {"left": "ls", "center": "ms", "right": "rs"}[align]
            font = _font(max(1, int(float(s.get("size") or 14))), bool(s.get("bold")))
            pen.text((float(s["x"]), float(s["y"])), str(s.get("text", "")), font=font, anchor=anchor,
                     fill=parse_colour(s.get("fill")))
    return image


def page_scale(w: int, h: int) -> int:
    """The whole-pixel scale the page draws an RGB frame at (fits 640 x 480)."""
    return max(1, min(640 // max(1, w), 480 // max(1, h)))


def rgb_array(frame: Any, scale: int | None = None) -> Image.Image:
    """An RGB or RGBA array (H x W x 3|4) as an RGB image, scaled by whole pixels (default: as the page does)."""
    import numpy as np

    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"an RGB frame must be H x W x 3 or 4, not {array.shape}")
    image = Image.fromarray(np.ascontiguousarray(array[..., :3], dtype=np.uint8), "RGB")
    factor = page_scale(image.width, image.height) if scale is None else max(1, int(scale))
    if factor != 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    return image


def rasterise(frame: Any, scale: int | None = None) -> Image.Image | None:
    """What ``render()`` returned as an RGB image (``None`` for ``None``). ``scale`` applies to RGB arrays, and to
    draw lists when given."""
    if frame is None:
        return None
    if isinstance(frame, (list, tuple)):
        image = draw_list(list(frame))
        if scale and scale != 1:
            image = image.resize((image.width * int(scale), image.height * int(scale)), Image.Resampling.NEAREST)
        return image
    return rgb_array(frame, scale)


#: Height of the caption band :func:`stamp` adds.
BAND = 22


def stamp(image: Image.Image, caption: str, width: int | None = None, height: int | None = None) -> Image.Image:
    """``image`` on a canvas of ``width`` x ``height`` (default: its own size plus the band, rounded up to even
    sizes for video codecs), with ``caption`` in a dark band underneath."""
    w = width or image.width + image.width % 2
    h = height or image.height + BAND + (image.height + BAND) % 2
    out = Image.new("RGB", (w, h), (24, 24, 24))
    out.paste(image, (0, 0))
    pen = ImageDraw.Draw(out)
    pen.text((6, h - BAND // 2), caption, font=_font(13, False), fill=(240, 240, 240), anchor="lm")
    return out

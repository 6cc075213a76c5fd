"""Draw lists: a JSON-able frame format an env's ``render()`` can return for the browser canvas.

A draw list is a list of shape dicts, painted in order. Coordinates and sizes are canvas pixels; colours are CSS
colour strings. Shapes:

- ``{"type": "canvas", "w": W, "h": H, "fill": colour}``: size and clear the canvas (first item, optional);
- ``{"type": "rect", "x", "y", "w", "h", "fill"}`` with optional ``"stroke"`` and ``"line_width"``;
- ``{"type": "circle", "x", "y", "r", "fill"}`` (centre and radius) with optional ``"stroke"``, ``"line_width"``;
- ``{"type": "line", "x1", "y1", "x2", "y2", "stroke"}`` with optional ``"line_width"``;
- ``{"type": "text", "x", "y", "text", "fill"}`` with optional ``"size"`` (px), ``"align"`` (``left``,
  ``center``, ``right``) and ``"bold"``; ``x, y`` is the anchor at the text's alphabetic baseline.

The functions below only build these dicts; an env may equally write them by hand.
"""

from __future__ import annotations

from typing import Any

__all__ = ["canvas", "rect", "circle", "line", "text"]

Shape = dict[str, Any]


def canvas(w: int, h: int, fill: str = "#ffffff") -> Shape:
    """Size and clear the canvas."""
    return {"type": "canvas", "w": w, "h": h, "fill": fill}


def rect(x: float, y: float, w: float, h: float, fill: str, stroke: str | None = None, line_width: float = 1) -> Shape:
    """A filled rectangle with its top-left corner at ``(x, y)``."""
    shape: Shape = {"type": "rect", "x": x, "y": y, "w": w, "h": h, "fill": fill}
    if stroke is not None:
        shape["stroke"] = stroke
        shape["line_width"] = line_width
    return shape


def circle(x: float, y: float, r: float, fill: str, stroke: str | None = None, line_width: float = 1) -> Shape:
    """A filled circle centred at ``(x, y)``."""
    shape: Shape = {"type": "circle", "x": x, "y": y, "r": r, "fill": fill}
    if stroke is not None:
        shape["stroke"] = stroke
        shape["line_width"] = line_width
    return shape


def line(x1: float, y1: float, x2: float, y2: float, stroke: str, line_width: float = 1) -> Shape:
    """A straight line segment."""
    return {"type": "line", "x1": x1, "y1": y1, "x2": x2, "y2": y2, "stroke": stroke, "line_width": line_width}


def text(
    x: float, y: float, value: str, fill: str = "#000000", size: int = 14, align: str = "left", bold: bool = False
) -> Shape:
    """A line of text anchored at ``(x, y)``."""
    return {"type": "text", "x": x, "y": y, "text": value, "fill": fill, "size": size, "align": align, "bold": bold}

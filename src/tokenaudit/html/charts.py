"""Static charts as inline SVG strings, drawn by matplotlib's SVG backend.

No pyplot: each chart is its own ``Figure`` (no global state, safe in a library), saved
with ``format="svg"`` and text kept as text (``svg.fonttype = none``) so a chart weighs a
few kilobytes and stays readable and searchable. Colours are the Okabe-Ito palette, which
stays distinguishable under the common colour-vision deficiencies; "others" is grey.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.path import Path
from matplotlib.ticker import FuncFormatter, PercentFormatter
from matplotlib.transforms import Bbox

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
GREY = "#999999"
WIDTH, HEIGHT = 7.2, 3.4  # inches; 100 dpi in SVG user units

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "tokenaudit",  # stable element ids: the same data gives the same bytes
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
}


def colours(names: Sequence[str], grey: str | None = "others") -> list[str]:
    out, i = [], 0
    for name in names:
        if name == grey:
            out.append(GREY)
        else:
            out.append(OKABE_ITO[i % len(OKABE_ITO)])
            i += 1
    return out


def _usd(value: float, _pos: object = None) -> str:
    return f"${value:,.2f}" if abs(value) < 100 else f"${value:,.0f}"


def _count(value: float, _pos: object = None) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:,.1f}{suffix}"
    return f"{value:,.0f}"


FORMATTERS = {"usd": _usd, "count": _count}


def _tight_box(fig: Figure) -> Bbox:
    """The figure's tight bounding box (inches), padded as ``bbox_inches="tight"`` pads it.

    ``savefig(bbox_inches="tight")`` draws the whole figure once to lay it out, then
    again to write it. The box only needs the text and tick extents, which
    ``get_tightbbox`` works out by itself; measured with the SVG renderer at its 72 dpi,
    as ``print_svg`` will draw, it is the same box, so the layout does not change.
    """
    dpi = fig.dpi
    fig.dpi = 72  # the SVG backend lays out in points
    try:
        renderer = RendererSVG(  # type: ignore[no-untyped-call]
            fig.bbox.width, fig.bbox.height, io.StringIO()
        )
        box = fig.get_tightbbox(renderer)
    finally:
        fig.dpi = dpi
    return box.padded(mpl.rcParams["savefig.pad_inches"])


def _svg(fig: Figure, label: str) -> str:
    buf = io.StringIO()
    with mpl.rc_context(_RC):
        box = _tight_box(fig)
        fig.savefig(buf, format="svg", bbox_inches=box, metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: inline SVG
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    attrs = f'<svg role="img" aria-label="{html.escape(label)}"'
    return re.sub(r"^<svg", attrs, text, count=1)


def _figure(height: float = HEIGHT) -> Figure:
    with mpl.rc_context(_RC):
        return Figure(figsize=(WIDTH, height), dpi=100)


def _date_axis(fig: Figure, days: Sequence[dt.date]) -> None:
    ax = fig.axes[0]
    step = max(1, len(days) // 10)
    ticks = list(range(0, len(days), step))
    ax.set_xticks(ticks, [days[i].strftime("%m-%d") for i in ticks])
    ax.set_xlabel(f"day (UTC), {days[0].year}" if days else "day (UTC)")


_HALF_BAR = 0.425  # bars 0.85 wide, a day apart


def _columns(bottom: Sequence[float], top: Sequence[float]) -> Path:
    """One compound path holding a series' bars: a closed rectangle per non-empty day.

    A single patch per series draws and serialises as one SVG ``<path>``, where
    ``Axes.bar`` makes an artist (and an SVG group) per day.
    """
    verts: list[tuple[float, float]] = []
    for i, (low, high) in enumerate(zip(bottom, top, strict=True)):
        if low != high:
            left, right = i - _HALF_BAR, i + _HALF_BAR
            verts += [(left, low), (right, low), (right, high), (left, high), (left, low)]
    if not verts:
        return Path.make_compound_path()  # empty
    codes = [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
    return Path(verts, codes * (len(verts) // 5))


def stacked_bars(
    days: Sequence[dt.date],
    series: dict[str, list[float]],
    title: str,
    ylabel: str,
    unit: str = "usd",
) -> str:
    """One bar per day, stacked by group, legend outside on the right."""
    with mpl.rc_context(_RC):
        fig = _figure()
        ax = fig.add_subplot()
        bottom = [0.0] * len(days)
        low, high = 0.0, 0.0
        for (name, values), colour in zip(series.items(), colours(list(series)), strict=True):
            top = [b + v for b, v in zip(bottom, values, strict=True)]
            bars = PathPatch(_columns(bottom, top), facecolor=colour, edgecolor="none")
            bars.set_label(name)
            bars.sticky_edges.y.append(0)  # as with Axes.bar: no margin below zero
            ax.add_artist(bars)  # add_patch would walk every vertex for the data limits
            low, high = min([low, *top]), max([high, *top])
            bottom = top
        if days:
            ax.update_datalim([(-_HALF_BAR, low), (len(days) - 1 + _HALF_BAR, high)])
            ax.autoscale_view()
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(FuncFormatter(FORMATTERS[unit]))
        _date_axis(fig, days)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
        return _svg(fig, title)


def stacked_area(
    days: Sequence[dt.date], series: dict[str, list[float]], title: str, ylabel: str
) -> str:
    with mpl.rc_context(_RC):
        fig = _figure()
        ax = fig.add_subplot()
        x = list(range(len(days)))
        names = list(series)
        ax.stackplot(x, *series.values(), labels=names, colors=colours(names, None), alpha=0.9)
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(FuncFormatter(_count))
        ax.set_xlim(0, max(len(days) - 1, 1))
        _date_axis(fig, days)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
        return _svg(fig, title)


def hbars(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str, unit: str = "usd"
) -> str:
    """Horizontal bars, the largest on top."""
    with mpl.rc_context(_RC):
        fig = _figure(max(1.6, 0.6 + 0.28 * len(labels)))
        ax = fig.add_subplot()
        y = list(range(len(labels)))[::-1]
        ax.barh(y, values, color=OKABE_ITO[0], height=0.7)
        ax.set_yticks(y, [_short(label) for label in labels])
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        if unit == "pct":
            ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(FORMATTERS[unit]))
        if any(v < 0 for v in values):
            ax.axvline(0, color="#333333", linewidth=0.8)
        return _svg(fig, title)


def line(
    days: Sequence[dt.date],
    values: Sequence[float | None],
    title: str,
    ylabel: str,
    reference: float | None = None,
) -> str:
    """A daily ratio (shown in percent) with an optional reference line."""
    with mpl.rc_context(_RC):
        fig = _figure(2.8)
        ax = fig.add_subplot()
        x = list(range(len(days)))
        ys = [float("nan") if v is None else v for v in values]
        ax.plot(x, ys, color=OKABE_ITO[0], marker="o", markersize=3, linewidth=1.5)
        if reference is not None:
            ax.axhline(reference, color=OKABE_ITO[5], linestyle="--", linewidth=1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel)
        _date_axis(fig, days)
        return _svg(fig, title)


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"

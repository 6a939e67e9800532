"""Charts for the chat: matplotlib draws PNGs for /stats, reports and digests (the handlers' Charts port).

Uses matplotlib's object API (a `Figure` on the Agg canvas, no pyplot state), so a chart can be drawn
in a worker thread (`asyncio.to_thread`) without touching global state; drawing takes tens of
milliseconds, too long to do on the event loop.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers.core.ports import Series

WIDTH, HEIGHT, DPI = 8.0, 4.5, 110  # 880 × 495 px: readable in a phone's chat without opening it
PALETTE = ("#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777")


def _figure() -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    figure.set_layout_engine("constrained")
    return figure


def _style(axes: Any, title: str, ylabel: str) -> None:
    axes.set_title(title, loc="left", fontsize=12, fontweight="bold")
    if ylabel:
        axes.set_ylabel(ylabel)
    axes.grid(axis="y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


class MatplotlibCharts:
    """Implements handlers.core.ports.Charts."""

    def line(self, title: str, series: list[Series], *, ylabel: str = "", tz: str = "UTC") -> bytes:
        """One line per series over time, times shown in `tz`."""
        import matplotlib.dates as mdates

        zone = ZoneInfo(tz)
        figure = _figure()
        axes = figure.add_subplot()
        drawn = 0
        for index, one in enumerate(series):
            if not one.points:
                continue
            times: list[datetime] = [t.astimezone(zone) for t, _v in one.points]
            values = [v for _t, v in one.points]
            axes.plot(times, values, marker="o", markersize=3, linewidth=2, label=one.name,
                      color=PALETTE[index % len(PALETTE)])
            drawn += 1
        if drawn == 0:
            axes.text(0.5, 0.5, "no numbers yet", ha="center", va="center", transform=axes.transAxes, color="grey")
        times_drawn = [t for one in series for t, _v in one.points]
        if times_drawn and max(times_drawn) - min(times_drawn) < timedelta(hours=1):
            # a post minutes old: show at least an hour so the axis has readable ticks
            middle = min(times_drawn) + (max(times_drawn) - min(times_drawn)) / 2
            axes.set_xlim(middle - timedelta(minutes=30), middle + timedelta(minutes=30))
        locator = mdates.AutoDateLocator(tz=zone, minticks=3)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
        axes.set_xlabel(tz)
        _style(axes, title, ylabel)
        if drawn > 1:
            axes.legend(frameon=False, fontsize=9)
        return _png(figure)

    def bars(self, title: str, labels: list[str], values: dict[str, list[float]], *, ylabel: str = "",
             split: bool = False) -> bytes:
        """Grouped bars: one group per label, one bar per named series (e.g. this week vs last week). `split` draws
        each group in its own panel with its own scale (metrics as unlike as views and clicks side by side), the
        series named on a shared legend."""
        if split and labels:
            return self._panels(title, labels, values)
        figure = _figure()
        axes = figure.add_subplot()
        names = list(values)
        width = 0.8 / max(1, len(names))
        for index, name in enumerate(names):
            offsets = [i + (index - (len(names) - 1) / 2) * width for i in range(len(labels))]
            bars = axes.bar(offsets, values[name], width=width, label=name, color=PALETTE[index % len(PALETTE)])
            axes.bar_label(bars, labels=[f"{v:,.0f}" for v in values[name]], fontsize=8, padding=2)
        axes.set_xticks(range(len(labels)), labels)
        if not labels:
            axes.text(0.5, 0.5, "no numbers yet", ha="center", va="center", transform=axes.transAxes, color="grey")
        _style(axes, title, ylabel)
        if len(names) > 1:
            axes.legend(frameon=False, fontsize=9)
        return _png(figure)

    def _panels(self, title: str, labels: list[str], values: dict[str, list[float]]) -> bytes:
        """One panel per label, one bar per series in each, the same colour for a series in every panel."""
        from matplotlib.ticker import MaxNLocator, StrMethodFormatter

        figure = _figure()
        names = list(values)
        panels = figure.subplots(1, len(labels), squeeze=False)[0]
        for column, (axes, label) in enumerate(zip(panels, labels, strict=True)):
            heights = [values[name][column] for name in names]
            whole = "%" not in label and all(float(v).is_integer() for v in heights)  # counts: whole ticks
            bars = axes.bar(range(len(names)), heights, color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
                            label=names)
            axes.bar_label(bars, labels=[f"{v:,.0f}" if whole else f"{v:,.1f}" for v in heights], fontsize=7, padding=2)
            axes.set_title(label, fontsize=10)
            axes.set_xticks([])
            axes.grid(axis="y", alpha=0.3)
            axes.spines[["top", "right"]].set_visible(False)
            axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=whole))
            axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if whole or max(heights, default=0) >= 10
                                                              else "{x:,.1f}"))
            axes.tick_params(axis="y", labelsize=7)
            axes.margins(y=0.15)
        figure.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        if names:
            handles = panels[0].containers[0].patches
            figure.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4), frameon=False,
                          fontsize=9)
        return _png(figure)

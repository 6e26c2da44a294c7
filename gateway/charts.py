"""Charts drawn on the server as inline SVG (no script, no CDN; the CSP allows nothing else anyway)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from gateway.i18n import gettext

# Narrow enough that a phone (360 px) shows the text at about 10 px: the SVG scales to the screen's width.
BAR_HEIGHT, GAP, LABEL_WIDTH, BAR_WIDTH, LABEL_CHARS = 22, 6, 190, 200, 12


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, int]], names: bool = False) -> Markup:
    """A horizontal bar chart of (label, count), largest first; labels are escaped. `names`: the labels are
    data (villages, towns), never translated."""
    data = ' translate="no"' if names else ""
    items = sorted(items, key=lambda item: -item[1])
    top = max((count for _, count in items), default=0) or 1
    height = max(len(items), 1) * (BAR_HEIGHT + GAP) + GAP
    width = LABEL_WIDTH + BAR_WIDTH + 60
    parts = [
        f'<svg id="{escape(chart_id)}" class="bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, (label, count) in enumerate(items):
        y = GAP + index * (BAR_HEIGHT + GAP)
        length = round(BAR_WIDTH * count / top)
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-count="{count}"{data}>'
            f"<title>{escape(label)}: {count}</title>"
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 16}" text-anchor="end" font-size="14" fill="#1d2430">{escape(short)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{max(length, 1)}" height="{BAR_HEIGHT}" fill="#14507a"></rect>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + 16}" font-size="13" fill="#1d2430">{count}</text></g>'
        )
    if not items:
        parts.append('<text x="10" y="20" font-size="13" fill="#5b6675">' + escape(gettext("暂无数据")) + "</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped

"""A bar chart of messages per minute as inline SVG, drawn on the server (no script needed)."""

from __future__ import annotations

from twisted.web.template import Tag

WIDTH, HEIGHT, AXIS = 600, 150, 16


def svg(name: str, **attributes: str) -> Tag:
    # twisted.web.template's `tags` knows only HTML names; SVG elements are plain Tags.
    return Tag(name, attributes=attributes)


def minuteChart(perMinute: list[tuple[int, int]]) -> Tag:
    """Stacked bars (received below, sent above), oldest minute on the left."""
    n = len(perMinute) or 1
    peak = max([a + b for a, b in perMinute] + [1])
    slot = WIDTH / n
    plot = HEIGHT - AXIS
    chart = svg(
        "svg", viewBox=f"0 0 {WIDTH} {HEIGHT}", role="img", id="rate-chart", **{"class": "chart"},
        **{"aria-label": f"최근 60분 분당 메시지 (최대 {peak})"},
    )
    chart(svg("line", x1="0", y1=str(plot), x2=str(WIDTH), y2=str(plot), stroke="currentColor",
              **{"stroke-opacity": "0.3"}))
    for i, (received, sent) in enumerate(perMinute):
        x = f"{i * slot + 1:.1f}"
        w = f"{max(slot - 2, 1):.1f}"
        hIn = plot * received / peak
        hOut = plot * sent / peak
        label = f"{n - 1 - i}분 전: 받음 {received}, 보냄 {sent}"
        group = svg("g", **{"class": "bar"})(svg("title")(label))
        if received:
            group(svg("rect", x=x, y=f"{plot - hIn:.1f}", width=w, height=f"{hIn:.1f}",
                      **{"class": "in"}))
        if sent:
            group(svg("rect", x=x, y=f"{plot - hIn - hOut:.1f}", width=w, height=f"{hOut:.1f}",
                      **{"class": "out"}))
        chart(group)
    chart(svg("text", x="0", y=str(HEIGHT - 3))("60분 전"))
    chart(svg("text", x=str(WIDTH), y=str(HEIGHT - 3), **{"text-anchor": "end"})("지금"))
    chart(svg("text", x="2", y="11")(f"최대 {peak}/분"))
    return chart

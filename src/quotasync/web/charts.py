"""Charts drawn on the server as SVG: an org's quota bar, calls per hour, a sparkline.

Pure: figures and times in, `Markup` out for a Jinja2 template; no JavaScript, no CDN. Each chart
says its figures in words (`aria-label`, `<title>`) and tells no series apart by colour alone.
Inline fills make it look right with no stylesheet; the `qs-*` classes let a stylesheet restyle it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

# Colour-blind-safe (blue against orange), and each series has a second cue besides its colour.
QUOTASYNC, OTHER_APPS, LEFT = "#1f5fa8", "#c26b00", "#e3e7ee"
INK = "#222"  # text and the guard line: 16:1 on white
MUTED = "#555"  # axis labels: 7.5:1 on white
EDGE = "#6b7585"  # outlines: 4.7:1 on white, so the pale "left" segment has a visible end
GRID = "#d5dae2"

# The usage bar. The bar is inset so a line at 0% or 100% is not cut in half at the edge.
BAR_VIEW = (480, 80)
BAR_X, BAR_SPAN, BAR_TOP, BAR_THICK = 8.0, 464.0, 17.0, 24.0

# The hourly chart's plot area, inside its view box.
HOURLY_VIEW = (480, 220)
PLOT_L, PLOT_R, PLOT_T, PLOT_B = 52.0, 472.0, 30.0, 192.0

# Round steps for a y axis: 1, 2, 2.5 and 5 times a power of ten, in whole calls.
_STEPS = sorted({f * 10**e for e in range(13) for f in (1, 2, 5)} | {25 * 10**e for e in range(12)})


@dataclass(frozen=True)
class HourCalls:
    """Calls made in the hour from `start`; `other_apps` is None when that hour is not known."""

    start: datetime
    quotasync: int
    other_apps: int | None


def usage_bar(
    *,
    org_max: int,
    quotasync_used: int,
    other_apps_used: int,
    share_calls: int,
    guard_calls: int,
    label: str,
) -> Markup:
    """One API type's rolling 24 hours: quotasync, other apps and what is left of `org_max`,
    with a dashed line at quotasync's share and a solid one at the guard."""
    ours, theirs = max(quotasync_used, 0), max(other_apps_used, 0)
    left = max(org_max - ours - theirs, 0)
    names = ("quotasync", "other-apps", "left", "share", "guard", "max")
    figures = (ours, theirs, left, share_calls, guard_calls, org_max)
    attrs = {"width": "100%", **{f"data-{n}": f for n, f in zip(names, figures, strict=True)}}
    outline = _rect("qs-outline", BAR_X, BAR_TOP, BAR_SPAN, BAR_THICK, "none", f' stroke="{EDGE}"')
    if org_max <= 0:  # nothing to divide by: an empty bar, and the title says so
        empty = _rect("qs-left", BAR_X, BAR_TOP, BAR_SPAN, BAR_THICK, LEFT)
        words = _text(BAR_X + BAR_SPAN / 2, BAR_TOP + 16, "no figures", "middle", "qs-empty")
        return _svg(
            "qs-usage-bar", BAR_VIEW, f"{label}: no figures", (empty, outline, words), attrs
        )
    hatched, defs = _hatch("bar", label)
    scale = BAR_SPAN / org_max
    # Over the limit, quotasync is drawn first and the bar is simply full: no negative widths.
    shown_ours = min(ours, org_max)
    shown_theirs = min(theirs, org_max - shown_ours)
    x_theirs = BAR_X + shown_ours * scale
    x_left = x_theirs + shown_theirs * scale
    share_pct, guard_pct = round(share_calls * 100 / org_max), round(guard_calls * 100 / org_max)
    share_x, guard_x = (BAR_X + min(max(c, 0), org_max) * scale for c in (share_calls, guard_calls))
    legend = [
        ("qs-quotasync", QUOTASYNC, f"quotasync {ours:,}"),
        ("qs-other", hatched, f"other apps {theirs:,}"),
        ("qs-left", LEFT, f"left {left:,}"),
    ]
    body = [
        defs,
        _rect("qs-quotasync", BAR_X, BAR_TOP, shown_ours * scale, BAR_THICK, QUOTASYNC),
        _rect("qs-other", x_theirs, BAR_TOP, shown_theirs * scale, BAR_THICK, hatched),
        _rect("qs-left", x_left, BAR_TOP, BAR_X + BAR_SPAN - x_left, BAR_THICK, LEFT),
        outline,
        # The guard is labelled above the bar and the share below, so close lines never collide.
        _marker("qs-share", share_x, QUOTASYNC, 2, ' stroke-dasharray="5 3"'),
        _text(share_x, 56, f"share {share_pct}%", _anchor(share_x), "qs-share-label"),
        _marker("qs-guard", guard_x, INK, 3),
        _text(guard_x, 12, f"guard {guard_pct}%", _anchor(guard_x), "qs-guard-label"),
        _legend(legend, BAR_X, 66),
    ]
    title = (
        f"{label}: quotasync {_calls(ours)}, other apps {theirs:,}, left {left:,} of {org_max:,}; "
        f"share {share_pct}% ({_calls(share_calls)}), guard {guard_pct}% ({guard_calls:,})"
    )
    if ours + theirs > org_max:
        title += f"; over the limit by {ours + theirs - org_max:,}"
    return _svg("qs-usage-bar", BAR_VIEW, title, body, attrs)


def hourly_chart(*, hours: Sequence[HourCalls], label: str) -> Markup:
    """Calls per hour, quotasync's bar and other apps' (hatched) side by side, on a round y axis."""
    ours = sum(max(hour.quotasync, 0) for hour in hours)
    known = [max(hour.other_apps, 0) for hour in hours if hour.other_apps is not None]
    theirs, unknown = sum(known), len(hours) - len(known)
    top, step = _nice_axis(max([hour.quotasync for hour in hours] + known, default=0))
    hatched, defs = _hatch("hourly", label)
    series = [("qs-quotasync", QUOTASYNC, "quotasync"), ("qs-other", hatched, "other apps")]
    body = [defs, _legend(series, PLOT_L, 6), *_y_axis(top, step)]
    slot = (PLOT_R - PLOT_L) / max(len(hours), 1)
    # At most eight hour labels: over a day, "HH:00" needs about three hours' width to itself.
    every = next((e for e in (3, 6, 12) if len(hours) <= 8 * e), 24)
    for i, hour in enumerate(hours):
        x, start = PLOT_L + i * slot, _utc(hour.start)
        body.append(_hour(hour, x, slot, top, hatched))
        if start.hour % every == 0:
            body.append(_text(x + slot / 2, 208, f"{start:%H:%M}", "middle", "qs-tick", MUTED))
    other = f"other apps {_calls(theirs)}" if known else "other apps unknown"
    if known and unknown:
        other += f" ({unknown} hour{'s' if unknown > 1 else ''} unknown)"
    summary = f"{label}: quotasync {_calls(ours)}, {other}"
    if ours == theirs == unknown == 0:  # no hours, or only hours without a call
        summary = f"{label}: no calls"
        body.append(_text((PLOT_L + PLOT_R) / 2, 110, "no calls", "middle", "qs-empty"))
    attrs = {"width": "100%", "data-quotasync-total": ours, "data-other-apps-total": theirs}
    return _svg("qs-hourly", HOURLY_VIEW, summary, body, attrs)


def sparkline(values: Sequence[float], *, label: str, width: int = 160, height: int = 32) -> Markup:
    """A tiny line of `values` (counts, so never below zero) with a pale area under it."""
    attrs = {"width": width, "height": height}
    if not values:
        return _svg("qs-sparkline", (width, height), label, [], attrs)
    peak = max(values)
    summary = f"{label}: {_amount(sum(values))} in all, at most {_amount(peak)} in one hour"
    pad = 2.0  # half the stroke and the dot's radius, so neither is cut at the edge
    bottom = height - pad

    def y(value: float) -> float:
        return bottom - (max(value, 0) / peak * (height - 2 * pad) if peak > 0 else 0)

    if len(values) == 1:  # a line needs two points: one value is a dot
        body = [
            f'<circle class="qs-spark-dot" cx="{_n(width / 2)}" cy="{_n(y(values[0]))}" r="2" '
            f'fill="{QUOTASYNC}"/>'
        ]
        return _svg("qs-sparkline", (width, height), summary, body, attrs)
    gap = (width - 2 * pad) / (len(values) - 1)
    line = " ".join(f"{_n(pad + i * gap)},{_n(y(v))}" for i, v in enumerate(values))
    area = f"{_n(pad)},{_n(bottom)} {line} {_n(width - pad)},{_n(bottom)}"
    body = [
        f'<polygon class="qs-spark-area" points="{area}" fill="{QUOTASYNC}" fill-opacity="0.15"/>',
        f'<polyline class="qs-spark-line" points="{line}" fill="none" stroke="{QUOTASYNC}" '
        'stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round"/>',
    ]
    return _svg("qs-sparkline", (width, height), summary, body, attrs)


def _svg(
    kind: str, view: tuple[int, int], summary: str, body: Sequence[str], attrs: Mapping[str, object]
) -> Markup:
    """The root element: role, accessible name and `<title>` are the same words for every reader."""
    extra = "".join(f' {name}="{escape(str(value))}"' for name, value in attrs.items())
    said = escape(summary)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qs-chart {kind}" role="img" '
        f'aria-label="{said}" viewBox="0 0 {view[0]} {view[1]}"{extra} '
        'font-family="system-ui, sans-serif" font-size="12">'
        f"<title>{said}</title>{''.join(body)}</svg>"
    )


def _hour(hour: HourCalls, x: float, slot: float, top: int, hatched: str) -> str:
    """One hour's bars under one title, over a transparent target the hour's full width and
    height, so hovering an hour with few calls (or none) still shows its figures."""
    start = _utc(hour.start)
    span = f"{start:%H:%M}\u2013{start + timedelta(hours=1):%H:%M} UTC"
    other = "unknown" if hour.other_apps is None else _calls(hour.other_apps)
    said = f"{span}: quotasync {_calls(hour.quotasync)}, other apps {other}"
    parts = [
        f'<g class="qs-hour"><title>{escape(said)}</title>',
        _rect("qs-hit", x, PLOT_T, slot, PLOT_B - PLOT_T, "transparent"),
    ]
    bars = [
        ("qs-quotasync", 0.14, hour.quotasync, QUOTASYNC),
        ("qs-other", 0.5, hour.other_apps, hatched),
    ]
    for kind, at, value, fill in bars:
        if value is None:  # a question mark where the bar would be, not a gap that reads as zero
            parts.append(_text(x + slot * 0.68, PLOT_B - 3, "?", "middle", "qs-unknown", MUTED))
        else:
            y = _y(max(value, 0), top)
            parts.append(_rect(kind, x + slot * at, y, slot * 0.36, PLOT_B - y, fill))
    return "".join(parts) + "</g>"


def _y_axis(top: int, step: int) -> list[str]:
    """Gridlines and labels at each round step; the zero line darker, as the bars stand on it."""
    parts = []
    for value in range(0, top + 1, step):
        y = _y(value, top)
        colour = MUTED if value == 0 else GRID
        parts.append(_rect("qs-grid", PLOT_L, y - 0.5, PLOT_R - PLOT_L, 1, colour))
        parts.append(_text(PLOT_L - 6, y + 4, _axis_number(value), "end", "qs-tick", MUTED))
    return parts


def _axis_number(value: int) -> str:
    """An axis label that fits the margin left of the plot: 50,000 as "50k", 1,500,000 as
    "1.5M" (at the tick's font, "150,000" ran past the chart's left edge and lost its "1")."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:,}"


def _nice_axis(peak: int) -> tuple[int, int]:
    """(top, step) for 3 to 5 round ticks from zero over `peak`. The lowest top wins, so the bars
    fill as much of the height as round numbers allow; with no calls the axis reads 0, 1, 2."""
    peak = max(peak, 2)
    return min((s * -(-peak // s), s) for s in _STEPS if 2 <= -(-peak // s) <= 4)


def _y(value: float, top: int) -> float:
    return PLOT_B - value / top * (PLOT_B - PLOT_T)


def _marker(kind: str, x: float, colour: str, width: float, more: str = "") -> str:
    """A vertical line across the bar, on a white halo so it shows over a segment of its colour."""
    ends = f'x1="{_n(x)}" x2="{_n(x)}" y1="{_n(BAR_TOP - 4)}" y2="{_n(BAR_TOP + BAR_THICK + 4)}"'
    return (
        f'<line class="qs-halo" {ends} stroke="#fff" stroke-width="{_n(width + 2)}"/>'
        f'<line class="{kind}" {ends} stroke="{colour}" stroke-width="{_n(width)}"{more}/>'
    )


def _legend(items: Sequence[tuple[str, str, str]], x: float, y: float) -> str:
    """A swatch and words for each series, left to right: the words carry the meaning."""
    parts = ['<g class="qs-legend">']
    for kind, fill, words in items:
        parts.append(_rect(kind, x, y, 10, 10, fill, f' stroke="{EDGE}" stroke-width="0.5"'))
        parts.append(_text(x + 14, y + 9.5, words))
        x += 30 + 6.6 * len(words)  # about 6.6 units a character at 12 units high
    return "".join(parts) + "</g>"


def _hatch(kind: str, label: str) -> tuple[str, str]:
    """Other apps' fill, orange with white stripes so it reads without colour: (fill, defs).
    The pattern id is the chart's own. Were two charts on a page to share one, `url(#…)` would
    find the first, and hiding that chart (display: none) blanks the hatching of the other.
    The digest keeps apart labels that read the same once cleaned ("Data API", "data-api")."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:24]
    digest = hashlib.blake2s(label.encode(), digest_size=4).hexdigest()
    pattern_id = "-".join(part for part in ("qs-hatch", kind, slug, digest) if part)
    return f"url(#{pattern_id})", (
        f'<defs><pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{OTHER_APPS}"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2.5"/></pattern></defs>'
    )


def _rect(kind: str, x: float, y: float, w: float, h: float, fill: str, more: str = "") -> str:
    """A rectangle; `more` is extra attributes, each with a leading space."""
    return (
        f'<rect class="{kind}" x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" '
        f'height="{_n(max(h, 0))}" fill="{fill}"{more}/>'
    )


def _text(
    x: float, y: float, words: str, anchor: str = "start", kind: str = "qs-label", fill: str = INK
) -> str:
    return (
        f'<text class="{kind}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{fill}">'
        f"{escape(words)}</text>"
    )


def _anchor(x: float) -> str:
    """Labels near either end of the bar grow inwards, so they stay inside the view box."""
    if x < BAR_X + 0.15 * BAR_SPAN:
        return "start"
    return "end" if x > BAR_X + 0.85 * BAR_SPAN else "middle"


def _utc(moment: datetime) -> datetime:
    """The ledger's times are UTC; a naive one is taken as UTC, not as the server's local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _calls(count: int) -> str:
    return f"{count:,} call" if count == 1 else f"{count:,} calls"


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _n(value: float) -> str:
    """A coordinate to one decimal place, with no trailing ".0": the markup stays small."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"

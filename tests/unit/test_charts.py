"""The pages' SVG charts: figures drawn to scale, said in words, safe to drop into a template."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import jinja2
import pytest
from markupsafe import Markup

from quotasync.web import charts
from quotasync.web.charts import HourCalls

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
HOSTILE = "<script>alert(\"x\")</script> & 'co'"


def usage_bar(
    *,
    org_max: int = 15_000,
    quotasync_used: int = 1_234,
    other_apps_used: int = 5_000,
    share_calls: int = 9_000,
    guard_calls: int = 13_500,
    label: str = "Data API",
) -> Markup:
    return charts.usage_bar(
        org_max=org_max,
        quotasync_used=quotasync_used,
        other_apps_used=other_apps_used,
        share_calls=share_calls,
        guard_calls=guard_calls,
        label=label,
    )


def parse(markup: Markup) -> ET.Element:
    return ET.fromstring(str(markup))


def segment(root: ET.Element, kind: str) -> ET.Element:
    """A rectangle of the bar itself (the legend's swatches sit in their own group)."""
    found = root.find(f"{SVG}rect[@class='{kind}']")
    assert found is not None, kind
    return found


def number(element: ET.Element, name: str) -> float:
    return float(element.get(name, "nan"))


def fraction_of_bar(root: ET.Element, kind: str) -> float:
    return number(segment(root, kind), "width") / number(segment(root, "qs-outline"), "width")


def line_at(root: ET.Element, kind: str) -> float:
    """Where a marker line stands, as a fraction of the bar from its left end."""
    line = root.find(f"{SVG}line[@class='{kind}']")
    assert line is not None, kind
    outline = segment(root, "qs-outline")
    return (number(line, "x1") - number(outline, "x")) / number(outline, "width")


def texts(root: ET.Element, kind: str) -> list[str]:
    return [
        element.text or "" for element in root.iter(f"{SVG}text") if element.get("class") == kind
    ]


def day(quotasync: Sequence[int], other_apps: Sequence[int | None]) -> list[HourCalls]:
    return [
        HourCalls(START + timedelta(hours=i), ours, theirs)
        for i, (ours, theirs) in enumerate(zip(quotasync, other_apps, strict=True))
    ]


def hour_groups(root: ET.Element) -> list[ET.Element]:
    return root.findall(f"{SVG}g[@class='qs-hour']")


def title(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    assert found is not None
    return found.text or ""


def test_each_segment_is_as_wide_as_its_part_of_the_org_max() -> None:
    root = parse(usage_bar(org_max=20_000, quotasync_used=5_000, other_apps_used=8_000))
    assert fraction_of_bar(root, "qs-quotasync") == pytest.approx(0.25, abs=0.001)
    assert fraction_of_bar(root, "qs-other") == pytest.approx(0.40, abs=0.001)
    assert fraction_of_bar(root, "qs-left") == pytest.approx(0.35, abs=0.001)
    ours, theirs = segment(root, "qs-quotasync"), segment(root, "qs-other")
    assert number(theirs, "x") == pytest.approx(number(ours, "x") + number(ours, "width"), abs=0.1)


def test_the_share_line_is_dashed_and_the_guard_line_solid_and_thicker_at_their_calls() -> None:
    root = parse(usage_bar(org_max=15_000, share_calls=9_000, guard_calls=13_500))
    assert line_at(root, "qs-share") == pytest.approx(0.6, abs=0.001)
    assert line_at(root, "qs-guard") == pytest.approx(0.9, abs=0.001)
    share = root.find(f"{SVG}line[@class='qs-share']")
    guard = root.find(f"{SVG}line[@class='qs-guard']")
    assert share is not None and guard is not None
    assert share.get("stroke-dasharray")
    assert guard.get("stroke-dasharray") is None
    assert number(guard, "stroke-width") > number(share, "stroke-width")
    assert texts(root, "qs-share-label") == ["share 60%"]
    assert texts(root, "qs-guard-label") == ["guard 90%"]


def test_figures_over_the_max_fill_the_bar_and_no_width_goes_negative() -> None:
    root = parse(
        usage_bar(org_max=15_000, quotasync_used=20_000, other_apps_used=3_000, share_calls=16_000)
    )
    assert fraction_of_bar(root, "qs-quotasync") == pytest.approx(1.0)
    assert number(segment(root, "qs-other"), "width") == 0
    assert number(segment(root, "qs-left"), "width") == 0
    assert line_at(root, "qs-share") == pytest.approx(1.0)
    assert root.get("data-left") == "0"
    assert title(root).endswith("; over the limit by 8,000")


def test_other_apps_get_what_quotasync_leaves_when_together_they_pass_the_max() -> None:
    root = parse(usage_bar(org_max=15_000, quotasync_used=10_000, other_apps_used=10_000))
    assert fraction_of_bar(root, "qs-quotasync") == pytest.approx(2 / 3, abs=0.001)
    assert fraction_of_bar(root, "qs-other") == pytest.approx(1 / 3, abs=0.001)
    assert number(segment(root, "qs-left"), "width") == 0


def test_a_zero_max_draws_an_empty_bar_that_says_no_figures() -> None:
    root = parse(usage_bar(org_max=0, quotasync_used=0, other_apps_used=0, share_calls=0))
    assert title(root) == "Data API: no figures"
    assert root.get("aria-label") == "Data API: no figures"
    assert fraction_of_bar(root, "qs-left") == 1
    assert root.findall(f"{SVG}line") == []
    assert texts(root, "qs-empty") == ["no figures"]


def test_the_title_states_the_figures_in_words_with_thousands_separators() -> None:
    root = parse(usage_bar())
    said = (
        "Data API: quotasync 1,234 calls, other apps 5,000, left 8,766 of 15,000; "
        "share 60% (9,000 calls), guard 90% (13,500)"
    )
    assert title(root) == said
    assert root.get("aria-label") == said
    assert root.get("role") == "img"
    legend = [
        element.text for element in root.iter(f"{SVG}text") if element.get("class") == "qs-label"
    ]
    assert legend == ["quotasync 1,234", "other apps 5,000", "left 8,766"]


def test_the_bar_carries_its_figures_as_data_attributes_and_scales_with_the_page() -> None:
    root = parse(usage_bar())
    names = ("quotasync", "other-apps", "left", "share", "guard", "max")
    figures = [root.get(f"data-{name}") for name in names]
    assert figures == ["1234", "5000", "8766", "9000", "13500", "15000"]
    assert root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 480 80"
    assert root.get("height") is None
    assert "qs-chart" in (root.get("class") or "").split()


def pattern_id(root: ET.Element) -> str:
    pattern = root.find(f"{SVG}defs/{SVG}pattern")
    assert pattern is not None
    return pattern.get("id", "")


def test_the_other_apps_segment_is_hatched_as_well_as_coloured() -> None:
    root = parse(usage_bar())
    assert segment(root, "qs-other").get("fill") == f"url(#{pattern_id(root)})"
    assert segment(root, "qs-quotasync").get("fill") == "#1f5fa8"


@pytest.mark.parametrize("other_label", ["Bulk API", "data-api", "DATA API"])
def test_two_bars_on_one_page_have_hatch_patterns_of_their_own(other_label: str) -> None:
    page = f"<div>{usage_bar(label='Data API')}{usage_bar(label=other_label)}</div>"
    bars = ET.fromstring(page).findall(f"{SVG}svg")
    ids = [pattern_id(bar) for bar in bars]
    assert len(set(ids)) == 2
    for bar, own in zip(bars, ids, strict=True):
        assert segment(bar, "qs-other").get("fill") == f"url(#{own})"


def test_a_bar_and_an_hourly_chart_with_the_same_label_do_not_share_a_pattern() -> None:
    bar = parse(usage_bar(label="Data API"))
    hourly = parse(charts.hourly_chart(hours=day([1], [2]), label="Data API"))
    assert pattern_id(bar) != pattern_id(hourly)


@pytest.mark.parametrize(
    "draw",
    [
        lambda label: usage_bar(label=label),
        lambda label: usage_bar(label=label, org_max=0),
        lambda label: charts.hourly_chart(hours=day([3], [None]), label=label),
        lambda label: charts.sparkline([1, 2], label=label),
        lambda label: charts.sparkline([], label=label),
    ],
)
def test_a_label_with_markup_in_it_comes_out_escaped(draw: Callable[[str], Markup]) -> None:
    markup = draw(HOSTILE)
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    root = parse(markup)  # well-formed, so nothing leaked out of an attribute or element
    assert title(root).startswith(HOSTILE)
    assert (root.get("aria-label") or "").startswith("<script>")


def test_a_chart_goes_into_an_autoescaping_template_as_it_is() -> None:
    chart = usage_bar(label="R&D <org>")
    page = jinja2.Environment(autoescape=True).from_string("<p>{{ chart }}</p>").render(chart=chart)
    assert page == f"<p>{chart}</p>"


def test_coordinates_have_at_most_one_decimal_place() -> None:
    markup = usage_bar(org_max=7, quotasync_used=1, other_apps_used=2, share_calls=3, guard_calls=6)
    markup += charts.hourly_chart(hours=day([1, 2, 3], [7, None, 5]), label="Calls")
    markup += charts.sparkline([1, 7, 3], label="Yours", width=101, height=33)
    numbers = re.findall(r' (?:x|y|x1|x2|y1|y2|width|height|cx|cy)="([^"%]+)"', markup)
    numbers += re.findall(r"-?\d+\.\d+", " ".join(re.findall(r'points="([^"]+)"', markup)))
    assert numbers
    assert all(re.fullmatch(r"-?\d+(\.\d)?", value) for value in numbers), numbers


def test_the_hourly_chart_has_one_bar_group_per_hour_said_in_words() -> None:
    hours = day([12] + [1] * 23, [300] + [2] * 23)
    root = parse(charts.hourly_chart(hours=hours, label="Calls per hour"))
    groups = hour_groups(root)
    assert len(groups) == 24
    assert title(groups[0]) == "14:00\u201315:00 UTC: quotasync 12 calls, other apps 300 calls"
    assert title(groups[1]) == "15:00\u201316:00 UTC: quotasync 1 call, other apps 2 calls"
    assert root.get("data-quotasync-total") == "35"
    assert root.get("data-other-apps-total") == "346"
    assert root.get("aria-label") == "Calls per hour: quotasync 35 calls, other apps 346 calls"
    assert root.get("role") == "img"


def test_hourly_bars_are_as_tall_as_their_calls() -> None:
    root = parse(charts.hourly_chart(hours=day([250, 500], [500, 0]), label="Calls"))
    first, second = hour_groups(root)
    ours = [number(segment(group, "qs-quotasync"), "height") for group in (first, second)]
    assert ours[1] == pytest.approx(2 * ours[0], abs=0.2)
    assert number(segment(first, "qs-other"), "height") == pytest.approx(ours[1], abs=0.1)
    assert number(segment(second, "qs-other"), "height") == 0
    assert segment(first, "qs-other").get("fill", "").startswith("url(#qs-hatch-")


@pytest.mark.parametrize(
    ("peak", "ticks"),
    [
        (480, ["0", "250", "500"]),
        (300, ["0", "100", "200", "300"]),
        (1_234, ["0", "500", "1,000", "1,500"]),
        (7, ["0", "2", "4", "6", "8"]),
        (1, ["0", "1", "2"]),
        # Labels that fit left of the plot: "150,000" lost its "1" to the chart's edge.
        (140_000, ["0", "50k", "100k", "150k"]),
        (2_600_000, ["0", "1M", "2M", "3M"]),
    ],
)
def test_the_y_axis_has_three_to_five_round_ticks_over_the_busiest_hour(
    peak: int, ticks: list[str]
) -> None:
    root = parse(charts.hourly_chart(hours=day([0, 1], [peak, 0]), label="Calls"))
    assert texts(root, "qs-tick")[: len(ticks)] == ticks
    gridlines = root.findall(f"{SVG}rect[@class='qs-grid']")
    assert len(gridlines) == len(ticks)


def test_hours_are_labelled_every_three_hours_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    hours = [HourCalls(START.astimezone(paris) + timedelta(hours=i), 1, 1) for i in range(24)]
    root = parse(charts.hourly_chart(hours=hours, label="Calls"))
    hour_labels = [text for text in texts(root, "qs-tick") if ":" in text]
    assert hour_labels == ["15:00", "18:00", "21:00", "00:00", "03:00", "06:00", "09:00", "12:00"]
    assert title(hour_groups(root)[0]).startswith("14:00\u201315:00 UTC")


def test_a_naive_start_is_taken_as_utc() -> None:
    hours = [HourCalls(datetime(2026, 11, 28, 9, 0), 1, 1)]
    root = parse(charts.hourly_chart(hours=hours, label="Calls"))
    assert title(hour_groups(root)[0]).startswith("09:00\u201310:00 UTC")


def test_hours_whose_other_apps_are_unknown_say_so_and_draw_no_bar() -> None:
    root = parse(charts.hourly_chart(hours=day([4, 5, 6], [100, None, 50]), label="Calls"))
    unknown = hour_groups(root)[1]
    assert title(unknown) == "15:00\u201316:00 UTC: quotasync 5 calls, other apps unknown"
    assert unknown.find(f"{SVG}rect[@class='qs-other']") is None
    assert texts(unknown, "qs-unknown") == ["?"]
    assert root.get("data-other-apps-total") == "150"
    assert root.get("aria-label") == (
        "Calls: quotasync 15 calls, other apps 150 calls (1 hour unknown)"
    )


def test_when_no_hour_knows_other_apps_the_summary_says_unknown() -> None:
    root = parse(charts.hourly_chart(hours=day([0, 2], [None, None]), label="Calls"))
    assert root.get("aria-label") == "Calls: quotasync 2 calls, other apps unknown"


@pytest.mark.parametrize("hours", [[], day([0] * 24, [0] * 24)])
def test_an_hourly_chart_without_calls_still_draws_and_says_no_calls(
    hours: list[HourCalls],
) -> None:
    root = parse(charts.hourly_chart(hours=hours, label="Calls"))
    assert root.get("aria-label") == "Calls: no calls"
    assert texts(root, "qs-empty") == ["no calls"]
    assert (root.get("data-quotasync-total"), root.get("data-other-apps-total")) == ("0", "0")
    assert len(hour_groups(root)) == len(hours)
    assert texts(root, "qs-tick")[:3] == ["0", "1", "2"]


def spark_points(root: ET.Element) -> list[tuple[float, float]]:
    line = root.find(f"{SVG}polyline")
    assert line is not None
    pairs = (pair.split(",") for pair in (line.get("points") or "").split())
    return [(float(x), float(y)) for x, y in pairs]


def test_a_sparkline_says_its_total_and_peak() -> None:
    values = [0, 1, 2, 9, 3, 4, 5, 1, 0, 0, 2, 7, 3] + [0] * 11
    root = parse(charts.sparkline(values, label="Your calls per hour, last 24 hours"))
    said = "Your calls per hour, last 24 hours: 37 in all, at most 9 in one hour"
    assert root.get("aria-label") == said
    assert title(root) == said
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (
        "160",
        "32",
        "0 0 160 32",
    )


def test_a_sparkline_puts_the_peak_at_the_top_and_zero_at_the_bottom() -> None:
    root = parse(charts.sparkline([0, 4, 8, 2], label="Calls", width=100, height=20))
    points = spark_points(root)
    assert len(points) == 4
    assert points[0][0] < points[1][0] < points[2][0] < points[3][0] <= 100
    assert points[2][1] == min(y for _, y in points) < 5
    assert points[0][1] == max(y for _, y in points) > 15
    assert points[1][1] == pytest.approx((points[0][1] + points[2][1]) / 2, abs=0.1)
    assert root.find(f"{SVG}polygon[@class='qs-spark-area']") is not None


def test_a_sparkline_of_zeros_is_a_flat_line_at_the_bottom() -> None:
    root = parse(charts.sparkline([0] * 24, label="Calls", height=32))
    heights = {y for _, y in spark_points(root)}
    assert len(heights) == 1 and heights.pop() > 16
    assert root.get("aria-label") == "Calls: 0 in all, at most 0 in one hour"


def test_a_sparkline_of_one_value_is_a_dot() -> None:
    root = parse(charts.sparkline([2.5], label="Calls"))
    assert root.find(f"{SVG}polyline") is None
    assert root.find(f"{SVG}circle") is not None
    assert root.get("aria-label") == "Calls: 2.5 in all, at most 2.5 in one hour"


def test_an_empty_sparkline_is_an_empty_svg_with_its_label() -> None:
    root = parse(charts.sparkline([], label="Your calls"))
    assert root.get("aria-label") == "Your calls"
    assert [child.tag for child in root] == [f"{SVG}title"]

"""The dashboard's picture (``make dashboard-picture``) evaluates the dashboard's own queries:
each must come out of the variable substitution as plain PromQL, or its panel would be drawn
from an error (a variable added to the dashboard must be given a value there too)."""

from __future__ import annotations

import json

from bench.dashboard_picture import DASHBOARD, expression, legend


def test_every_query_of_the_dashboard_is_left_without_variables() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert len(queries) >= 20
    for query in queries:
        assert "$" not in expression(query, 300), query
    titles = [expression(p["title"], 300) for p in panels]
    assert "Final within 10 s (dashboard range)" in titles


def test_legends_name_series_as_grafana_does() -> None:
    labels = {"service": "customs", "outcome": "processed", "job": "singlewindow"}
    assert legend("{{service}} {{ outcome }}", labels) == "customs processed"
    assert legend(None, labels) == "customs, processed"

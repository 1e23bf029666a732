"""The process-local metrics the engine feeds: batch sizes and the latency from ingest to
Salesforce, kept in quotasync's own registry."""

from __future__ import annotations

import prometheus_client

from quotasync import metrics

LATENCY = "quotasync_ingest_to_salesforce_seconds"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_is_counted_under_its_api_type_only() -> None:
    data = sample("quotasync_batch_size_count", api="data")
    bulk = sample("quotasync_batch_size_count", api="bulk")
    small = sample("quotasync_batch_size_bucket", api="data", le="200.0")
    metrics.observe_batch("data", 200)
    assert sample("quotasync_batch_size_count", api="data") == data + 1
    assert sample("quotasync_batch_size_bucket", api="data", le="200.0") == small + 1
    assert sample("quotasync_batch_size_count", api="bulk") == bulk


def test_each_logged_activity_is_one_latency() -> None:
    count, total = sample(f"{LATENCY}_count"), sample(f"{LATENCY}_sum")
    hour = sample(f"{LATENCY}_bucket", le="3600.0")
    metrics.observe_logged([1.5, 125.0, 7200.0])
    assert sample(f"{LATENCY}_count") == count + 3
    assert sample(f"{LATENCY}_sum") == total + 7326.5
    assert sample(f"{LATENCY}_bucket", le="3600.0") == hour + 2  # two hours is past every bucket


def test_a_clock_a_little_behind_counts_as_no_latency() -> None:
    total, fastest = sample(f"{LATENCY}_sum"), sample(f"{LATENCY}_bucket", le="0.1")
    metrics.observe_logged(iter([-0.4]))
    assert sample(f"{LATENCY}_sum") == total
    assert sample(f"{LATENCY}_bucket", le="0.1") == fastest + 1


def test_the_metrics_stay_out_of_the_global_registry() -> None:
    # Several apps (and tests) in one process must not clash over prometheus_client's default.
    assert prometheus_client.REGISTRY.get_sample_value("quotasync_worker_leases_held") is None
    assert metrics.REGISTRY.get_sample_value("quotasync_worker_leases_held") is not None

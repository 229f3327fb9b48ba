"""The node's metrics, scraped over real HTTP from the exporter and parsed as Prometheus does."""

from __future__ import annotations

import json
import math
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from metrics.exporter import ExporterError, MetricsExporter
from metrics.node_metrics import TIPSET_APPLY_BUCKETS, Direction, NodeMetrics, SyncState

METRICS_DIR = Path(__file__).resolve().parent.parent / "metrics"
Labels = tuple[tuple[str, str], ...]


def scrape(url: str) -> dict[tuple[str, Labels], float]:
    """Fetch ``url`` and index every sample by (name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture
def node_metrics() -> NodeMetrics:
    return NodeMetrics(version="0.1.0", network="devnet")


@pytest.fixture
def exporter(node_metrics: NodeMetrics) -> Iterator[MetricsExporter]:
    with MetricsExporter(node_metrics.registry, "127.0.0.1", 0) as running:
        yield running


def test_exporter_binds_a_free_port_and_serves_the_build_info(
    exporter: MetricsExporter,
) -> None:
    assert exporter.port > 0
    assert exporter.url == f"http://127.0.0.1:{exporter.port}/metrics"
    samples = scrape(exporter.url)
    assert samples[
        ("fvmnode_build_info", (("network", "devnet"), ("version", "0.1.0")))
    ] == 1.0


def test_tipset_application_updates_head_gas_messages_and_apply_time(
    node_metrics: NodeMetrics, exporter: MetricsExporter
) -> None:
    node_metrics.on_tipset_applied(epoch=10, gas_used=5_000_000, messages=3, seconds=0.2)
    node_metrics.on_tipset_applied(
        epoch=11, gas_used=7_000_000, messages=4, seconds=3.0, implicit_messages=2
    )
    samples = scrape(exporter.url)
    assert samples[("fvmnode_head_epoch", ())] == 11
    assert samples[("fvmnode_gas_used_total", ())] == 12_000_000
    assert samples[("fvmnode_tipsets_applied_total", ())] == 2
    assert samples[("fvmnode_messages_applied_total", (("kind", "explicit"),))] == 7
    assert samples[("fvmnode_messages_applied_total", (("kind", "implicit"),))] == 2
    assert samples[("fvmnode_tipset_apply_seconds_count", ())] == 2
    assert samples[("fvmnode_tipset_apply_seconds_sum", ())] == pytest.approx(3.2)
    assert samples[("fvmnode_tipset_apply_seconds_bucket", (("le", "0.25"),))] == 1
    assert samples[("fvmnode_tipset_apply_seconds_bucket", (("le", "2.5"),))] == 1
    assert samples[("fvmnode_tipset_apply_seconds_bucket", (("le", "5.0"),))] == 2
    assert samples[("fvmnode_tipset_apply_seconds_bucket", (("le", "+Inf"),))] == 2


def test_apply_time_buckets_span_ten_milliseconds_to_a_minute() -> None:
    assert TIPSET_APPLY_BUCKETS[0] == 0.01
    assert TIPSET_APPLY_BUCKETS[-1] == 60.0
    assert list(TIPSET_APPLY_BUCKETS) == sorted(TIPSET_APPLY_BUCKETS)


def test_lags_against_wall_clock_and_best_peer_follow_the_head(
    node_metrics: NodeMetrics, exporter: MetricsExporter
) -> None:
    node_metrics.set_expected_epoch(120)
    node_metrics.set_best_peer_epoch(115)
    node_metrics.set_head(100)
    samples = scrape(exporter.url)
    assert samples[("fvmnode_expected_epoch", ())] == 120
    assert samples[("fvmnode_epoch_lag", ())] == 20
    assert samples[("fvmnode_best_peer_epoch", ())] == 115
    assert samples[("fvmnode_peer_epoch_lag", ())] == 15

    node_metrics.set_head(118)
    samples = scrape(exporter.url)
    assert samples[("fvmnode_epoch_lag", ())] == 2
    assert samples[("fvmnode_peer_epoch_lag", ())] == 0


def test_sync_state_is_one_of_four_states(
    node_metrics: NodeMetrics, exporter: MetricsExporter
) -> None:
    assert scrape(exporter.url)[("fvmnode_sync_state", (("fvmnode_sync_state", "idle"),))] == 1
    node_metrics.set_sync_state(SyncState.CATCHING_UP)
    samples = scrape(exporter.url)
    states = {
        labels[0][1]: value for (name, labels), value in samples.items()
        if name == "fvmnode_sync_state"
    }
    assert states == {"idle": 0, "catching_up": 1, "following": 0, "error": 0}


def test_network_counters_carry_their_labels(
    node_metrics: NodeMetrics, exporter: MetricsExporter
) -> None:
    node_metrics.set_peers_connected(4)
    node_metrics.on_chain_exchange_request(Direction.CLIENT)
    node_metrics.on_chain_exchange_request(Direction.CLIENT)
    node_metrics.on_chain_exchange_request(Direction.SERVER)
    node_metrics.on_chain_exchange_error(Direction.CLIENT, "timeout")
    node_metrics.on_gossip_received("/fil/blocks/devnet")
    node_metrics.on_gossip_received("/fil/blocks/devnet")
    node_metrics.on_gossip_rejected("/fil/blocks/devnet", "bad_signature")
    node_metrics.on_peer_penalty("bad_block")
    node_metrics.on_consensus_mismatch()
    node_metrics.set_mpool_pending(9)
    samples = scrape(exporter.url)
    assert samples[("fvmnode_peers_connected", ())] == 4
    assert samples[("fvmnode_chain_exchange_requests_total", (("direction", "client"),))] == 2
    assert samples[("fvmnode_chain_exchange_requests_total", (("direction", "server"),))] == 1
    assert samples[
        ("fvmnode_chain_exchange_errors_total", (("direction", "client"), ("reason", "timeout")))
    ] == 1
    topic = ("topic", "/fil/blocks/devnet")
    assert samples[("fvmnode_gossip_messages_received_total", (topic,))] == 2
    assert samples[
        ("fvmnode_gossip_messages_rejected_total", (("reason", "bad_signature"), topic))
    ] == 1
    assert samples[("fvmnode_peer_penalties_total", (("reason", "bad_block"),))] == 1
    assert samples[("fvmnode_consensus_mismatches_total", ())] == 1
    assert samples[("fvmnode_mpool_pending_messages", ())] == 9


def test_store_size_is_read_at_scrape_time_and_a_failing_source_reads_as_nan(
    node_metrics: NodeMetrics, exporter: MetricsExporter
) -> None:
    assert math.isnan(scrape(exporter.url)[("fvmnode_store_size_bytes", ())])
    size = [4096]
    node_metrics.set_store_size_source(lambda: size[0])
    assert scrape(exporter.url)[("fvmnode_store_size_bytes", ())] == 4096
    size[0] = 1 << 30
    assert scrape(exporter.url)[("fvmnode_store_size_bytes", ())] == 1 << 30

    def closed_store() -> int:
        raise RuntimeError("environment closed")

    node_metrics.set_store_size_source(closed_store)
    assert math.isnan(scrape(exporter.url)[("fvmnode_store_size_bytes", ())])


def test_replay_counters(node_metrics: NodeMetrics, exporter: MetricsExporter) -> None:
    node_metrics.on_replay_epoch(gas_used=100, mismatch=False)
    node_metrics.on_replay_epoch(gas_used=250, mismatch=True)
    samples = scrape(exporter.url)
    assert samples[("fvmnode_replay_epochs_total", ())] == 2
    assert samples[("fvmnode_replay_gas_used_total", ())] == 350
    assert samples[("fvmnode_replay_mismatches_total", ())] == 1


def test_two_nodes_on_two_ports_are_independent() -> None:
    first = NodeMetrics(version="0.1.0", network="devnet")
    second = NodeMetrics(version="0.1.0", network="calibnet")
    with MetricsExporter(first.registry) as first_exporter, MetricsExporter(
        second.registry
    ) as second_exporter:
        assert first_exporter.port != second_exporter.port
        first.set_head(7)
        first.on_consensus_mismatch()
        second.set_head(900)
        first_samples = scrape(first_exporter.url)
        second_samples = scrape(second_exporter.url)
    assert first_samples[("fvmnode_head_epoch", ())] == 7
    assert second_samples[("fvmnode_head_epoch", ())] == 900
    assert first_samples[("fvmnode_consensus_mismatches_total", ())] == 1
    assert second_samples[("fvmnode_consensus_mismatches_total", ())] == 0
    assert ("fvmnode_build_info", (("network", "calibnet"), ("version", "0.1.0"))) in (
        second_samples
    )


def test_stop_closes_the_port_and_is_idempotent(node_metrics: NodeMetrics) -> None:
    exporter = MetricsExporter(node_metrics.registry)
    exporter.start()
    url = exporter.url
    scrape(url)
    exporter.stop()
    exporter.stop()
    assert not exporter.running
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
    with pytest.raises(ExporterError):
        _ = exporter.port


def test_starting_twice_or_on_a_taken_port_raises_exporter_error(
    node_metrics: NodeMetrics, exporter: MetricsExporter
) -> None:
    with pytest.raises(ExporterError, match="already started"):
        exporter.start()
    with pytest.raises(ExporterError, match="cannot serve metrics"):
        MetricsExporter(node_metrics.registry, "127.0.0.1", exporter.port).start()


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((METRICS_DIR / "grafana-dashboard.json").read_text())
    return loaded


def test_every_metric_the_dashboard_queries_exists_in_the_registry(
    node_metrics: NodeMetrics,
) -> None:
    # Queries, legends and template variables alike.
    text = json.dumps(_dashboard())
    referenced = set(re.findall(r"fvmnode_[a-z_]+", text))
    # A histogram appears in the registry only once observed; observe one to list its series.
    node_metrics.on_tipset_applied(epoch=1, gas_used=1, messages=1, seconds=0.1)
    node_metrics.on_chain_exchange_error(Direction.CLIENT, "timeout")
    node_metrics.on_gossip_rejected("t", "r")
    node_metrics.on_gossip_received("t")
    node_metrics.on_peer_penalty("r")
    node_metrics.on_chain_exchange_request(Direction.CLIENT)
    missing = referenced - node_metrics.sample_names()
    assert referenced
    assert not missing, f"dashboard queries unknown metrics: {sorted(missing)}"


def test_dashboard_has_the_required_panels() -> None:
    titles = {panel["title"] for panel in _dashboard()["panels"]}
    assert {
        "Epoch lag", "Gas per second", "Tipset apply time", "Peers connected", "Sync state",
        "Consensus mismatches", "Store size",
    } <= titles
    panel_ids = [panel["id"] for panel in _dashboard()["panels"]]
    assert len(panel_ids) == len(set(panel_ids))


def test_prometheus_config_scrapes_the_metrics_path() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((METRICS_DIR / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"]


def test_exporter_serves_while_a_trio_program_runs(node_metrics: NodeMetrics) -> None:
    async def node() -> float:
        with MetricsExporter(node_metrics.registry) as running:
            node_metrics.set_head(42)
            await trio.sleep(0)
            samples = await trio.to_thread.run_sync(scrape, running.url)
        return samples[("fvmnode_head_epoch", ())]

    assert trio.run(node) == 42

"""The benchmark table's headline figures (issue 13's targets) read from the benchmarks' own JSON."""

from __future__ import annotations

import json

from benchmarks import report


def test_summary_carries_each_target_figure_or_none(tmp_path):
    (tmp_path / "cold_start.json").write_text(json.dumps({
        "runs": 5, "boto3_ms": 200.0,
        "handlers_ms": {"functions.api.handler": 500.0, "functions.allocate.handler": 300.0,
                        "functions.fulfill.handler": 260.0},
        "ratio_to_boto3": {"functions.api.handler": 2.5, "functions.allocate.handler": 1.5,
                           "functions.fulfill.handler": 1.3}}))
    heavy = {"orders": 100, "baseline_first_with_stock_per_second": 40000, "rule_engine_per_second": 1234,
             "ratio": 0.03, "rule_engine_ms_per_decision": 0.81, "orders_with_backorders": 3}
    (tmp_path / "allocation.json").write_text(json.dumps({"decisions": {**heavy, "rule_engine_per_second": 4000},
                                                          "decisions_10_lines_50_warehouses": heavy}))
    figures = report.headline(tmp_path)
    assert figures == {"cost_per_1000_orders_usd": None, "cold_start_workflow_ratio": 1.5,
                       "cold_start_state_machine_ratio": 1.3, "cold_start_api_ratio": 2.5, "end_to_end_ratio": None, "allocation_decisions_per_s": 1234,
                       "import_ratio": None, "hot_sku_ratio": None}
    assert report.main(["--results", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["allocation_decisions_per_s"] == 1234
    assert any("10 lines over 50 warehouses" in row["figure"] for row in summary["rows"])


def test_the_allocation_benchmark_makes_the_shape_it_is_asked_for():
    from benchmarks.allocation import decisions, make_cases

    cases = make_cases(3, lines_per_order=10, warehouse_count=50)
    assert [(len(lines), len(warehouses)) for lines, warehouses, _, _ in cases] == [(10, 50)] * 3
    figures = decisions(3, lines_per_order=10, warehouse_count=50)
    assert figures["orders"] == 3 and figures["rule_engine_per_second"] > 0


def test_the_hot_sku_ratio_and_its_exact_counts_come_from_the_hot_sku_benchmark(tmp_path):
    from benchmarks.hot_sku import aws_arithmetic

    def run(rate: float, reserved: int = 2000) -> dict:
        return {"orders": 2000, "orders_per_second": rate, "reserved": reserved, "refused": 2000 - reserved,
                "units_committed": reserved, "ledger_reservations": reserved, "negative_shards": 0, "fell_over": 3,
                "dynamodb_requests_per_order": 3.0}
    (tmp_path / "hot_sku.json").write_text(json.dumps({
        "orders": 2000, "threads": 8, "shards": 8, "spread_skus": 200, "rounds": 2, "spread": run(100.0),
        "hot": run(80.0), "hot_unsharded": run(95.0), "oversubscribed": run(90.0, reserved=1000),
        "ratio_hot_to_spread": 0.8, "ratio_unsharded_to_spread": 0.95, "ok": True, "aws": aws_arithmetic(8)}))
    assert report.headline(tmp_path)["hot_sku_ratio"] == 0.8
    rows = report.rows(tmp_path)
    assert rows[0][1].startswith("80.0 orders/s") and rows[0][2].startswith("100.0 orders/s") and rows[0][3] == "0.8"
    assert rows[1][3] == "ok" and "1000 reserved, 1000 refused" in rows[1][1]
    assert rows[3][1] == "4000 reservations/s" and rows[3][2].startswith("500/s unsharded")


def test_the_import_figure_and_its_cpu_ratio_are_in_the_table(tmp_path):
    (tmp_path / "import_throughput.json").write_text(json.dumps({
        "orders": 5000, "channel": "woocommerce", "import": {"orders_per_second": 150.0},
        "baseline_single_puts": {"puts_per_second": 200.0}, "ratio_import_to_puts": 0.75,
        "cpu_ms_per_order": {"import": 2.5, "single_put": 2.0}, "ratio_import_to_puts_cpu": 0.8}))
    assert report.headline(tmp_path)["import_ratio"] == 0.75
    found = {row[0]: row[1:] for row in report.rows(tmp_path)}
    assert found["import: 5000 orders from a sandbox woocommerce in one run"][-1] == "0.75"
    assert any(label.strip().startswith("CPU per order") and values == ("2.5 ms", "2.0 ms per put", "0.8")
               for label, values in found.items())


def test_the_end_to_end_meter_counts_the_calls_of_clients_made_after_it_is_installed():
    """The cost figure counts AWS calls through a hook on the clients' botocore session (``aws._session``)."""
    from botocore.stub import Stubber

    from benchmarks.end_to_end import Meter
    from orderflow.adapters import aws

    meter = Meter()
    meter.install()
    try:
        sfn = aws.client("stepfunctions")
        with Stubber(sfn) as stub:
            stub.add_response("list_state_machines", {"stateMachines": []})
            sfn.list_state_machines()
        assert meter.calls == {"stepfunctions:ListStateMachines": 1} and meter.thread_calls() == 1
    finally:
        aws._session().unregister("after-call.*.*", meter._after)
        aws.reset_clients()

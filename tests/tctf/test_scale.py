"""A platform of 34 generated domains synthesizes: a stack each, nag-clean, every domain's
queues, tables, schedules and routes in its own stack."""

from __future__ import annotations

from pathlib import Path

from bus.topology import Topology
from tctf.nag import findings
from tctf.synth import build_app, stack_name
from tests.scale_platform import DOMAINS, scale_platform


def test_thirty_four_domains_synthesize_each_in_its_stack(tmp_path: Path) -> None:
    platform = scale_platform()
    topology = Topology.from_domains(platform, app="tctf")
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler.py").write_text("")
    app = build_app(platform, {d.name: code for d in platform}, outdir=str(tmp_path / "out"))
    assembly = app.synth()

    assert len(topology.domains) == DOMAINS
    stacks = {s.stack_name: s.template for s in assembly.stacks}
    assert set(stacks) == {"tctf-shared", *(stack_name("tctf", d) for d in topology.domains)}
    assert findings(assembly) == []
    for domain in topology.domains:
        resources = stacks[stack_name("tctf", domain)]["Resources"].values()
        queues = {r["Properties"]["QueueName"] for r in resources if r["Type"] == "AWS::SQS::Queue"}
        expected = {q.name for q in topology.queues if q.domain == domain}
        expected |= {q.dlq for q in topology.queues if q.domain == domain}
        if domain in topology.tables:
            expected.add(topology.outbox_dlqs[domain])
        assert queues == expected, domain
        kinds = [r["Type"] for r in resources]
        assert kinds.count("AWS::Lambda::Function") == 1
        assert kinds.count("AWS::DynamoDB::Table") == 1
        assert kinds.count("AWS::Scheduler::Schedule") == len(
            [s for s in topology.schedules if s.domain == domain]
        )
        assert kinds.count("AWS::ApiGatewayV2::Route") == 3  # two routes and $default

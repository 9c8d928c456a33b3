"""cdk-nag's AwsSolutions rules: every stack of the platform clean, each accepted finding
suppressed with its reason, in the templates and in docs/deploy.md."""

from __future__ import annotations

import json
from pathlib import Path

from bus import Domain
from tctf.nag import ACCEPTED, RULES, findings
from tctf.synth import build_app
from tests.tctf.synthesized import MANIFEST, Templates

DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def nag_annotations(assembly: Path) -> list[str]:
    """The rule pack's errors and warnings recorded in the assembly's manifest."""
    manifest = json.loads((assembly / MANIFEST).read_text())
    return [
        f"{path}: {entry['data']}"
        for artifact in manifest["artifacts"].values()
        for path, entries in artifact.get("metadata", {}).items()
        for entry in entries
        if entry["type"] in ("aws:cdk:error", "aws:cdk:warning")
        and str(entry["data"]).startswith(RULES)
    ]


def test_every_stack_of_both_transports_is_clean(
    sns_assembly: Path, eventbridge_assembly: Path
) -> None:
    # `tctf synth` fails on findings; the manifest says so on its own too.
    assert nag_annotations(sns_assembly) == []
    assert nag_annotations(eventbridge_assembly) == []


def test_each_stack_carries_the_accepted_findings_with_their_reasons(sns_app: Templates) -> None:
    for name, template in sns_app.items():
        suppressed = template["Metadata"]["cdk_nag"]["rules_to_suppress"]
        assert [(s["id"], s["reason"]) for s in suppressed] == [
            (a.rule, a.reason) for a in ACCEPTED
        ], name


def test_a_finding_not_accepted_is_reported(tmp_path: Path) -> None:
    """The rules do look: a queue taking requests without TLS is named, while the accepted
    findings of the same stack stay silent."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    domain = Domain("ledger")
    code = tmp_path / "code"
    code.mkdir()
    app = build_app([domain], {"ledger": code}, outdir=str(tmp_path / "out"))
    stack = app.node.find_child("tctf-ledger")
    assert isinstance(stack, cdk.Stack)
    sqs.Queue(stack, "Careless", queue_name="tctf-ledger-careless")
    found = findings(app.synth())
    assert found and all("/tctf-ledger/Careless/" in f for f in found), found
    assert any("AwsSolutions-SQS4" in f for f in found), found


def test_docs_list_every_accepted_finding() -> None:
    text = DEPLOY_DOC.read_text()
    for accepted in ACCEPTED:
        assert f"`{accepted.rule}`" in text, accepted.rule

"""Every resource command acts as ``--account`` / ``KILN_ACCOUNT`` in ``--region``: create makes the
resource there, list and get see it; another account's full ARN is answered as a missing one (the ARN
named, never its owner) and nothing changes; build numbers count per account; events are published on
the event's account's topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.home import DEFAULT_ACCOUNT

PEER = "210987654321"
DOCUMENT = """\
name: comp
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands: [echo hi]
"""


@pytest.fixture
def peer(kiln) -> str:
    created = kiln("account", "create", "peer", "--account-id", PEER)
    assert created.exit_code == 0, created.stderr
    return PEER


def _ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def _body(value: dict[str, object]) -> tuple[str, str]:
    return "--cli-input-json", json.dumps(value)


@pytest.fixture
def peer_resources(kiln, peer: str, tmp_path: Path) -> dict[str, str]:
    """One resource of each family, created by the peer through the CLI (the infrastructure
    configuration through ``KILN_ACCOUNT``, the rest through ``--account``)."""
    doc = tmp_path / "comp.yaml"
    doc.write_text(DOCUMENT)
    as_peer = ("--account", peer)
    component = _ok(kiln("component", "create", "--name", "comp", "--semantic-version", "1.0.0",
                         "--data-file", str(doc), *as_peer))
    recipe = _ok(kiln("recipe", "create", *_body({
        "name": "recipe", "semanticVersion": "1.0.0", "parentImage": "ami-0123456789abcdef0",
        "components": [{"componentArn": component}]}), *as_peer))
    infrastructure = _ok(kiln("infrastructure", "create", *_body({"name": "infra"}), env={"KILN_ACCOUNT": peer}))
    distribution = _ok(kiln("distribution", "create", *_body(
        {"name": "dist", "distributions": [{"region": "local"}]}), *as_peer))
    pipeline = _ok(kiln("pipeline", "create", *_body({
        "name": "pipe", "imageRecipeArn": recipe, "infrastructureConfigurationArn": infrastructure,
        "distributionConfigurationArn": distribution}), *as_peer))
    return {"component": component, "recipe": recipe, "infrastructure": infrastructure,
            "distribution": distribution, "pipeline": pipeline}


def _listed(kiln, noun: str, *args: str) -> list[str]:  # type: ignore[no-untyped-def]
    answer = json.loads(_ok(kiln(noun, "list", "--output", "json", *args)))
    (entries,) = [value for key, value in answer.items() if key.endswith("List")]
    return [entry["arn"] for entry in entries]


def _missing(arn: str) -> str:
    """The same ARN with a name nobody has."""
    prefix, resource = arn.rsplit(":", 1)
    kind, _name, *rest = resource.split("/")
    return f"{prefix}:" + "/".join([kind, "nosuch", *rest])


def test_each_verb_creates_lists_and_gets_in_the_given_account(kiln, peer: str, peer_resources) -> None:
    for noun, arn in peer_resources.items():
        assert f":{peer}:" in arn, (noun, arn)
        got = json.loads(_ok(kiln(noun, "get", arn, "--account", peer, "--output", "json")))
        (shape,) = [value for key, value in got.items() if isinstance(value, dict) and "arn" in value]
        assert shape["arn"] == arn
        version_arn = arn.rsplit("/", 1)[0] if noun == "component" else arn  # listed by version
        assert version_arn in _listed(kiln, noun, "--account", peer)
        assert version_arn not in _listed(kiln, noun)  # the default account's list


def test_another_accounts_arn_is_not_found_and_nothing_changes(kiln, peer: str, peer_resources) -> None:
    for noun, arn in peer_resources.items():
        for verb in ("get", "delete"):
            refused = kiln(noun, verb, arn)  # as the default account
            absent = kiln(noun, verb, _missing(arn))
            assert refused.exit_code == absent.exit_code == 1, (noun, verb, refused.stderr)
            assert refused.stderr.startswith("error:") and arn in refused.stderr
            # Told apart from a missing one by nothing but the ARN.
            assert refused.stderr.replace(arn, "ARN") == absent.stderr.replace(_missing(arn), "ARN")
        _ok(kiln(noun, "get", arn, "--account", peer))  # still there
    for noun, key in (("infrastructure", "infrastructureConfigurationArn"),
                      ("distribution", "distributionConfigurationArn")):
        arn = peer_resources[noun]
        changed = {key: arn, "description": "taken over"}
        if noun == "distribution":
            changed["distributions"] = [{"region": "local"}]
        refused = kiln(noun, "update", *_body(changed))
        assert refused.exit_code == 1 and "does not exist" in refused.stderr
        got = json.loads(_ok(kiln(noun, "get", arn, "--account", peer, "--output", "json")))
        assert "description" not in got[key.removesuffix("Arn")]
    pipeline_update = {"imagePipelineArn": peer_resources["pipeline"], "imageRecipeArn": peer_resources["recipe"],
                       "infrastructureConfigurationArn": peer_resources["infrastructure"],
                       "description": "taken over"}
    assert kiln("pipeline", "update", *_body(pipeline_update)).exit_code == 1
    # The owner deletes its own, in dependency order.
    for noun in ("pipeline", "distribution", "infrastructure", "recipe", "component"):
        _ok(kiln(noun, "delete", peer_resources[noun], "--account", peer))
        assert kiln(noun, "get", peer_resources[noun], "--account", peer).exit_code == 1


def test_managed_components_stay_readable_by_every_account(kiln, peer: str) -> None:
    managed = _listed(kiln, "component", "--owner", "Amazon", "--account", peer)
    assert managed
    got = json.loads(_ok(kiln("component", "get", f"{managed[0]}/1", "--account", peer, "--output", "json")))
    assert got["component"]["arn"] == f"{managed[0]}/1"
    refused = kiln("component", "delete", f"{managed[0]}/1", "--account", peer)
    assert refused.exit_code != 0 and "Amazon-managed" in refused.stderr


def test_region_option(kiln, peer: str) -> None:
    unknown = kiln("infrastructure", "create", *_body({"name": "far"}), "--region", "eu-west-9", "--account", peer)
    assert unknown.exit_code == 1 and "eu-west-9" in unknown.stderr
    assert _listed(kiln, "infrastructure", "--account", peer) == []  # nothing made
    _ok(kiln("region", "create", "eu-west-1"))
    arn = _ok(kiln("infrastructure", "create", *_body({"name": "far"}), "--region", "eu-west-1", "--account", peer))
    assert arn == f"arn:aws:imagebuilder:eu-west-1:{peer}:infrastructure-configuration/far"
    # Lists are regional: the region's own only.
    assert _listed(kiln, "infrastructure", "--account", peer, "--region", "eu-west-1") == [arn]
    assert _listed(kiln, "infrastructure", "--account", peer) == []
    # A short form names the caller's resource in --region.
    short = "infrastructure-configuration/far"
    got = json.loads(_ok(kiln("infrastructure", "get", short, "--account", peer, "--region", "eu-west-1",
                              "--output", "json")))
    assert got["infrastructureConfiguration"]["arn"] == arn
    assert kiln("infrastructure", "get", short, "--account", peer).exit_code == 1  # not in region local


def test_build_numbers_count_per_account(peer: str) -> None:
    from kiln.services.builds import records

    def build(account: str) -> str:
        return records.create_image(
            name="web", version="1.0.0", account=account,
            recipe_arn=f"arn:aws:imagebuilder:local:{account}:image-recipe/web/1.0.0",
            infrastructure_arn=f"arn:aws:imagebuilder:local:{account}:infrastructure-configuration/build",
        )

    assert build(DEFAULT_ACCOUNT).endswith(f":{DEFAULT_ACCOUNT}:image/web/1.0.0/1")
    assert build(DEFAULT_ACCOUNT).endswith("/2")
    assert build(peer) == f"arn:aws:imagebuilder:local:{peer}:image/web/1.0.0/1"  # not /3: A's are not counted
    assert build(peer).endswith(f":{peer}:image/web/1.0.0/2")


def test_events_are_published_on_the_events_account_topic(peer: str) -> None:
    from kiln.services.common.events import list_events, payload, record_event

    theirs = f"arn:aws:imagebuilder:eu-west-1:{peer}:image/web/1.0.0/1"
    record_event("image.state", theirs, {"state": {"status": "AVAILABLE"}})
    record_event("image.state", f"arn:aws:imagebuilder:local:{DEFAULT_ACCOUNT}:image/web/1.0.0/1", {})
    topics = [json.loads(payload(event, 1))["TopicArn"] for event in list_events()[-2:]]
    assert topics == [f"arn:aws:sns:eu-west-1:{peer}:kiln-events", f"arn:aws:sns:local:{DEFAULT_ACCOUNT}:kiln-events"]

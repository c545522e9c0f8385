"""Which ``kiln`` command lines only read: ``kiln NOUN [GROUP] VERB …`` with a reading verb (get, list,
describe…). ``kiln.cli.main`` runs them in read-only units of work, which take no write lock, so they
answer beside a running ``kiln serve`` or build that is writing."""

from __future__ import annotations

READ_VERBS = frozenset({
    "get", "list", "describe", "describe-attribute", "describe-versions", "describe-instance-refreshes",
    "list-ous", "list-roots", "builds", "packages",
})
GROUPS = frozenset({"allowed", "block-public-access", "keys", "webhook"})  # a noun's sub-groups


def only_reads(args: list[str]) -> bool:
    words = [arg for arg in args[:3] if not arg.startswith("-")]
    if len(words) < 2:
        return False
    if words[1] in GROUPS:
        return len(words) == 3 and words[2] in READ_VERBS
    return words[1] in READ_VERBS

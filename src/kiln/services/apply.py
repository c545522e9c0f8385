"""``kiln apply``: a YAML/JSON stream of Create* bodies, each with a ``kind``, applied as one change.

Every document is checked against its request shape first (a bad document anywhere changes
nothing), then the documents are applied in dependency order (a recipe after the components it
references, wherever they appear in the file) inside one database transaction, so a failure while
applying also leaves nothing behind. Immutable kinds report ``created`` or ``unchanged`` and refuse a
changed version (a change of tags only is allowed and reported ``updated``); mutable kinds report
``updated`` when anything changed.

References are ARNs, optionally with right-aligned ``x`` wildcards. The short form
``component/NAME/VERSION`` (no ``arn:…`` prefix) is accepted wherever a component ARN is: it means
the caller's own component of that name when one exists (in the database or earlier in the file),
else the Amazon-managed one.

Other families add their kinds with ``register_kind`` when their module is imported; modules named
in ``KIND_MODULES`` are imported before a file is checked (pipelines, lifecycle policies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kiln.errors import InvalidInput, KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.arn import parse_arn
from kiln.model.shapes import Shape, parse_shape
from kiln.model.versions import parse_filter, parse_version

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class ApplyContext:
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    base_dir: Path | None = None


@dataclass(frozen=True)
class KindHandler:
    """How ``apply`` handles one ``kind``.

    ``request_model`` validates the body (minus ``kind``); ``identity`` names what the document
    creates; ``references`` lists what it needs; ``apply`` writes it in the given session and returns
    ``(arn, "created"|"unchanged"|"updated")``.
    """

    kind: str
    request_model: type[Shape]
    identity: Callable[[Any], Ref]
    references: Callable[[Any], list[Ref]]
    apply: Callable[[Session, Any, ApplyContext, str], tuple[str, str]]


@dataclass(frozen=True)
class Ref:
    """A resource by ARN type and ARN name; ``version`` is a concrete version (identity) or a filter
    (reference); None matches any version."""

    resource_type: str
    name: str
    version: str | None = None

    def satisfied_by(self, other: Ref) -> bool:
        if (self.resource_type, self.name) != (other.resource_type, other.name):
            return False
        if self.version is None or other.version is None:
            return True
        return parse_filter(self.version).matches(parse_version(other.version))


def ref_from_arn(arn: str, resource_type: str) -> Ref:
    """The Ref an ARN (or short form) reference stands for."""
    parsed = parse_arn(arn, resource_type=resource_type, allow_short=True)
    return Ref(resource_type, parsed.name, None if parsed.version is None else str(parsed.version))


_handlers: dict[str, KindHandler] = {}
KIND_MODULES: list[str] = ["kiln.services.pipelines", "kiln.services.lifecycle_apply"]


def register_kind(handler: KindHandler) -> None:
    _handlers[handler.kind] = handler


def kinds() -> list[str]:
    _register_builtin()
    return sorted(_handlers)


@dataclass
class Document:
    index: int  # 1-based position in the stream
    line: int
    kind: str
    body: dict[str, Any]
    source: str
    request: Any = None
    handler: KindHandler | None = None

    @property
    def where(self) -> str:
        return f"{self.source}: document {self.index} (line {self.line}, {self.kind or 'no kind'})"


@dataclass
class Outcome:
    kind: str
    arn: str
    status: str
    document: int

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "arn": self.arn, "status": self.status, "document": self.document}


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    dry_run: bool = False


def read_documents(text: str, source: str) -> list[Document]:
    """Split a YAML (or JSON) stream into documents with their line numbers; a JSON/YAML list at the
    top level counts as one document per item."""
    loader = yaml.SafeLoader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            for item in items:
                data = loader.construct_document(item)
                line = item.start_mark.line + 1
                index = len(documents) + 1
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise InvalidInput(
                        f"document is a {type(data).__name__}, not a mapping",
                        location=f"{source}: document {index} (line {line})",
                    )
                kind = data.get("kind")
                body = {key: value for key, value in data.items() if key != "kind"}
                documents.append(Document(index, line, str(kind) if kind is not None else "", body, source))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidInput(
            f"not valid YAML: {getattr(error, 'problem', None) or error}", location=f"{source}{at}"
        ) from None
    finally:
        loader.dispose()
    if not documents:
        raise InvalidInput("no documents to apply", location=source)
    return documents


def _check(documents: list[Document]) -> None:
    _register_builtin()
    seen: dict[Ref, Document] = {}
    for document in documents:
        handler = _handlers.get(document.kind)
        if handler is None:
            known = ", ".join(sorted(_handlers))
            raise InvalidInput(
                f"unknown kind {document.kind!r}" if document.kind else "the document has no kind",
                location=document.where,
                hint=f"kind is one of {known}",
            )
        document.handler = handler
        document.request = parse_shape(handler.request_model, document.body, where=document.where)
        identity = handler.identity(document.request)
        if identity in seen:
            raise InvalidInput(
                f"{identity.resource_type} {identity.name} {identity.version or ''} is also defined "
                f"by document {seen[identity].index}",
                location=document.where,
            )
        seen[identity] = document


def _order(documents: list[Document]) -> list[Document]:
    """Dependencies first; otherwise file order. A cycle is an error."""
    identities: list[tuple[Ref, Document]] = []
    for document in documents:
        assert document.handler is not None
        identities.append((document.handler.identity(document.request), document))
    ordered: list[Document] = []
    state: dict[int, str] = {}

    def visit(document: Document, chain: list[Document]) -> None:
        if state.get(document.index) == "done":
            return
        if state.get(document.index) == "visiting":
            cycle = " -> ".join(str(item.index) for item in [*chain, document])
            raise InvalidInput(
                f"documents reference each other in a cycle ({cycle})", location=document.source
            )
        state[document.index] = "visiting"
        assert document.handler is not None
        for reference in document.handler.references(document.request):
            for identity, dependency in identities:
                if dependency is not document and reference.satisfied_by(identity):
                    visit(dependency, [*chain, document])
        state[document.index] = "done"
        ordered.append(document)

    for document in documents:
        visit(document, [])
    return ordered


class _RollBack(Exception):
    """Raised inside the transaction to undo a dry run."""


def apply_text(
    text: str,
    *,
    source: str = "<stdin>",
    base_dir: Path | None = None,
    dry_run: bool = False,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> ApplyResult:
    """Validate every document, then apply them all in one transaction (or none)."""
    documents = read_documents(text, source)
    _check(documents)
    ordered = _order(documents)
    context = ApplyContext(account=account, region=region, base_dir=base_dir)
    result = ApplyResult(dry_run=dry_run)
    from kiln.db.engine import session

    try:
        with session() as db:
            for document in ordered:
                assert document.handler is not None
                try:
                    arn, status = document.handler.apply(db, document.request, context, document.where)
                except KilnError as error:
                    if error.location and error.location.startswith(document.source):
                        raise
                    location = f"{document.where}: {error.location}" if error.location else document.where
                    error.location = location
                    raise
                result.outcomes.append(Outcome(document.kind, arn, status, document.index))
            if dry_run:
                raise _RollBack
    except _RollBack:
        pass
    return result


def apply_file(
    path: str | Path, *, dry_run: bool = False, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION
) -> ApplyResult:
    """Apply a file (``-`` for standard input); relative ``file:`` URIs are taken from its folder."""
    import sys

    if str(path) == "-":
        return apply_text(
            sys.stdin.read(),
            source="<stdin>",
            base_dir=Path.cwd(),
            dry_run=dry_run,
            account=account,
            region=region,
        )
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise InvalidInput(f"{file} does not exist", location="-f") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{file} is not UTF-8 text", location="-f") from None
    return apply_text(
        text,
        source=str(file),
        base_dir=file.resolve().parent,
        dry_run=dry_run,
        account=account,
        region=region,
    )


_registered = False


def _register_builtin() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    import importlib

    for module in KIND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
    from kiln.model.arn import arn_name
    from kiln.model.component import CreateComponentRequest
    from kiln.model.distribution import CreateDistributionConfigurationRequest
    from kiln.model.infrastructure import CreateInfrastructureConfigurationRequest
    from kiln.model.recipe import CreateImageRecipeRequest
    from kiln.services.components import put_component
    from kiln.services.distribution import put_distribution_configuration
    from kiln.services.infrastructure import put_infrastructure_configuration
    from kiln.services.recipes import put_recipe

    def component(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
        row, status = put_component(
            db, request, account=ctx.account, region=ctx.region, base_dir=ctx.base_dir, where=where
        )
        return row.arn, status

    def recipe(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
        row, status = put_recipe(db, request, account=ctx.account, region=ctx.region, where=where)
        return row.arn, status

    def infrastructure(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
        row, status = put_infrastructure_configuration(
            db, request, on_exists="update", account=ctx.account, region=ctx.region, where=where
        )
        return row.arn, status

    def distribution(db: Session, request: Any, ctx: ApplyContext, where: str) -> tuple[str, str]:
        row, status = put_distribution_configuration(
            db, request, on_exists="update", account=ctx.account, region=ctx.region, where=where
        )
        return row.arn, status

    def no_references(_: Any) -> list[Ref]:
        return []

    register_kind(
        KindHandler(
            "Component",
            CreateComponentRequest,
            lambda r: Ref("component", arn_name(r.name), r.semanticVersion),
            no_references,
            component,
        )
    )
    register_kind(
        KindHandler(
            "ImageRecipe",
            CreateImageRecipeRequest,
            lambda r: Ref("image-recipe", arn_name(r.name), r.semanticVersion),
            lambda r: [ref_from_arn(c.componentArn, "component") for c in r.components or []],
            recipe,
        )
    )
    register_kind(
        KindHandler(
            "InfrastructureConfiguration",
            CreateInfrastructureConfigurationRequest,
            lambda r: Ref("infrastructure-configuration", arn_name(r.name)),
            no_references,
            infrastructure,
        )
    )
    register_kind(
        KindHandler(
            "DistributionConfiguration",
            CreateDistributionConfigurationRequest,
            lambda r: Ref("distribution-configuration", arn_name(r.name)),
            no_references,
            distribution,
        )
    )

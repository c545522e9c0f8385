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

Each family's kind is its ``APPLY_KIND``, listed once in ``kiln.services.registry``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kiln.errors import InvalidInput, KilnError
from kiln.home import DEFAULT_ACCOUNT, DEFAULT_REGION
from kiln.model.shapes import parse_shape
from kiln.services.common.kinds import ApplyContext, KindHandler, Ref

# What one ``kiln apply`` file may hold; refused before parsing (size) or as soon as passed (count).
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DOCUMENTS = 1000


_handlers: dict[str, KindHandler] = {}


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


def _check_size(size: int, source: str) -> None:
    if size > MAX_FILE_BYTES:
        raise InvalidInput(
            f"the file is {size} bytes; kiln apply reads at most {MAX_FILE_BYTES} bytes (4 MiB)",
            location=source,
            hint="split it into several files",
        )


def read_documents(text: str, source: str) -> list[Document]:
    """Split a YAML (or JSON) stream into documents with their line numbers; a JSON/YAML list at the
    top level counts as one document per item. Bounded: ``MAX_FILE_BYTES``, ``MAX_DOCUMENTS``, and per
    document the AWSTOE loader's limit on expanded values (so an alias bomb stops early)."""
    from kiln.documents.yamlload import YamlError, plain

    _check_size(len(text.encode()), source)
    loader = yaml.SafeLoader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            items = node.value if isinstance(node, yaml.SequenceNode) else [node]
            for item in items:
                line = item.start_mark.line + 1
                index = len(documents) + 1
                if index > MAX_DOCUMENTS:
                    raise InvalidInput(
                        f"more than {MAX_DOCUMENTS} documents; kiln apply takes at most {MAX_DOCUMENTS} per file",
                        location=f"{source}: document {index} (line {line})",
                        hint="split it into several files",
                    )
                try:
                    data = plain(item)
                except YamlError as error:
                    raise InvalidInput(error.message, location=f"{source}:{error.line}:{error.column}") from None
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
            sys.stdin.read(MAX_FILE_BYTES + 1),
            source="<stdin>",
            base_dir=Path.cwd(),
            dry_run=dry_run,
            account=account,
            region=region,
        )
    file = Path(path)
    try:
        _check_size(file.stat().st_size, str(file))
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
    """The kinds of every family ``kiln.services.registry`` lists (kinds registered by hand stay)."""
    global _registered
    if _registered:
        return
    _registered = True
    from kiln.services.registry import APPLY_KINDS

    for handler in APPLY_KINDS:
        _handlers.setdefault(handler.kind, handler)


def checked_documents(text: str, source: str) -> list[Document]:
    """The documents of ``text``, each checked against its kind's shape, in dependency order (what
    ``apply_text`` applies; ``kiln.services.apply_remote`` sends them to a server instead)."""
    documents = read_documents(text, source)
    _check(documents)
    return _order(documents)


def read_file_text(path: str | Path) -> tuple[str, str, Path]:
    """(text, source name, base dir) of an apply file (``-``: standard input)."""
    import sys

    if str(path) == "-":
        return sys.stdin.read(MAX_FILE_BYTES + 1), "<stdin>", Path.cwd()
    file = Path(path)
    try:
        _check_size(file.stat().st_size, str(file))
        return file.read_text(), str(file), file.resolve().parent
    except FileNotFoundError:
        raise InvalidInput(f"{file} does not exist", location="-f") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{file} is not UTF-8 text", location="-f") from None

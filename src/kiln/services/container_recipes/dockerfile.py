"""A container recipe's Dockerfile template: read, checked and turned into the steps of a build.

Image Builder fills three placeholders: ``{{{ imagebuilder:parentImage }}}`` (the FROM line's image),
``{{{ imagebuilder:environments }}}`` and ``{{{ imagebuilder:components }}}`` (where the components'
build and validate phases run). kiln needs the parent placeholder on the template's one FROM line and the
components placeholder on a line of its own; the environments placeholder is optional and renders to
nothing. Of Docker's instructions kiln runs FROM, RUN, ENV, ARG, WORKDIR, USER, LABEL, CMD, ENTRYPOINT
and EXPOSE; any other is refused with its line.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from kiln.errors import InvalidInput

PARENT, ENVIRONMENTS, COMPONENTS = "parentImage", "environments", "components"
PLACEHOLDERS = (PARENT, ENVIRONMENTS, COMPONENTS)
PLACEHOLDER = re.compile(r"\{\{\{\s*imagebuilder:([A-Za-z]+)\s*\}\}\}")
CONFIG_INSTRUCTIONS = ("ENV", "ARG", "WORKDIR", "USER", "LABEL", "CMD", "ENTRYPOINT", "EXPOSE")
SUPPORTED = ("FROM", "RUN", *CONFIG_INSTRUCTIONS)
NO_CONTEXT = ("COPY", "ADD")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VARIABLE = re.compile(r"\\\$|\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


def placeholder(name: str) -> str:
    return "{{{ imagebuilder:" + name + " }}}"


@dataclass(frozen=True)
class Instruction:
    """One instruction of the template: its first line, keyword (upper case; ``COMPONENTS`` and
    ``ENVIRONMENTS`` for the placeholders on lines of their own) and argument text."""

    line: int
    keyword: str
    argument: str


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each instruction: continuation lines joined, comments dropped."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        found.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        found.append((start, " ".join(part for part in pending if part)))
    return found


def parse(text: str, where: str = "dockerfileTemplateData") -> list[Instruction]:
    """The template's instructions, checked: one FROM naming the parent placeholder (only ARG before
    it), the components placeholder once on its own line, only instructions kiln runs, no RUN after a
    USER other than root. Errors name ``where:LINE``."""
    for name in PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            line = next(i for i, raw in enumerate(text.splitlines(), 1) if f"imagebuilder:{name}" in raw)
            raise InvalidInput(
                f"unknown placeholder {placeholder(name)}", location=f"{where}:{line}",
                hint="Image Builder's placeholders are " + ", ".join(placeholder(p) for p in PLACEHOLDERS),
            )
    instructions = []
    for line, content in _logical_lines(text):
        alone = PLACEHOLDER.fullmatch(content)
        if alone and alone.group(1) in (COMPONENTS, ENVIRONMENTS):
            instructions.append(Instruction(line, alone.group(1).upper(), ""))
            continue
        keyword, _, argument = content.partition(" ")
        instructions.append(Instruction(line, keyword.upper(), argument.strip()))
    _check(instructions, where)
    return instructions


def _check(instructions: list[Instruction], where: str) -> None:
    froms = [item for item in instructions if item.keyword == "FROM"]
    if not froms or PARENT not in PLACEHOLDER.findall(froms[0].argument):
        raise InvalidInput(
            f"the Dockerfile template has no FROM {placeholder(PARENT)} line", location=where,
            hint=f"start it with FROM {placeholder(PARENT)}; kiln puts the recipe's parentImage there",
        )
    first = froms[0]
    if PLACEHOLDER.sub("", first.argument).strip().split()[:1] not in ([], ["AS"], ["as"]):
        raise InvalidInput(f"FROM names something besides {placeholder(PARENT)}", location=f"{where}:{first.line}")
    before = [item for item in instructions if item.line < first.line and item.keyword != "ARG"]
    if before:
        raise InvalidInput(f"{before[0].keyword} comes before FROM (only ARG may)",
                           location=f"{where}:{before[0].line}")
    if len(froms) > 1:
        raise InvalidInput("multi-stage builds (a second FROM) are not supported by kiln",
                           location=f"{where}:{froms[1].line}")
    components = [item for item in instructions if item.keyword == "COMPONENTS"]
    if not components:
        raise InvalidInput(
            f"the Dockerfile template has no {placeholder(COMPONENTS)} line", location=where,
            hint="the components' build and validate phases run where that placeholder stands",
        )
    if len(components) > 1:
        raise InvalidInput(f"{placeholder(COMPONENTS)} appears twice", location=f"{where}:{components[1].line}")
    user = "root"
    for item in instructions:
        at = f"{where}:{item.line}"
        if item.keyword in NO_CONTEXT:
            raise InvalidInput(
                f"{item.keyword} is not supported: a container recipe has no build context to copy from",
                location=at, hint="create the files with RUN or in a component",
            )
        if item.keyword not in (*SUPPORTED, "COMPONENTS", "ENVIRONMENTS"):
            raise InvalidInput(
                f"unsupported instruction {item.keyword}", location=at,
                hint="kiln runs " + ", ".join(SUPPORTED) + " and the imagebuilder placeholders",
            )
        if PLACEHOLDER.search(item.argument) and item is not first:
            raise InvalidInput(f"a placeholder inside {item.keyword} (they stand on lines of their own)", location=at)
        if item.keyword in ("RUN", "CMD", "ENTRYPOINT"):
            command(item, where)
        if item.keyword == "USER":
            user = item.argument.split(":", 1)[0]
        if item.keyword in ("RUN", "COMPONENTS") and user not in ("root", "0", ""):
            raise InvalidInput(
                f"{item.keyword if item.keyword == 'RUN' else placeholder(COMPONENTS)} after USER {user}: kiln runs "
                "build commands as root", location=at, hint="put USER after the last RUN",
            )


def command(item: Instruction, where: str) -> list[str]:
    """The argv of a RUN, CMD or ENTRYPOINT: its JSON (exec) form, or the shell form through /bin/sh -c."""
    text = item.argument
    if not text:
        raise InvalidInput(f"{item.keyword} has no command", location=f"{where}:{item.line}")
    if text.startswith("["):
        try:
            argv = json.loads(text)
        except json.JSONDecodeError:
            argv = None
        if not isinstance(argv, list) or not all(isinstance(part, str) for part in argv):
            raise InvalidInput(f"{item.keyword}'s exec form is not a JSON list of strings",
                               location=f"{where}:{item.line}")
        return argv
    return ["/bin/sh", "-c", text]


def expand(text: str, variables: dict[str, str]) -> str:
    """Docker's variable substitution: ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:+alt}``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group(1) or match.group(4)
        value = variables.get(name, "")
        if match.group(2) == "-":
            return value or match.group(3) or ""
        if match.group(2) == "+":
            return (match.group(3) or "") if value else ""
        return value

    return _VARIABLE.sub(one, text)


@dataclass
class ImageConfig:
    """The OCI image config the instructions build up (``config`` of the image config JSON)."""

    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: dict[str, dict[str, str]] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)  # build arguments: seen by RUN, not kept

    @classmethod
    def of(cls, config: dict[str, object] | None) -> ImageConfig:
        """The parent's config (an OCI image config's ``config``), or a root file system's defaults."""
        config = config or {}
        env = [str(entry) for entry in config.get("Env") or [DEFAULT_PATH]]  # type: ignore[attr-defined]
        return cls(
            env=dict(entry.partition("=")[::2] for entry in env),
            cmd=list(config["Cmd"]) if config.get("Cmd") else None,  # type: ignore[call-overload]
            entrypoint=list(config["Entrypoint"]) if config.get("Entrypoint") else None,  # type: ignore[call-overload]
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
            labels=dict(config.get("Labels") or {}),  # type: ignore[call-overload]
            exposed_ports=dict(config.get("ExposedPorts") or {}),  # type: ignore[call-overload]
        )

    def run_env(self) -> dict[str, str]:
        return {**self.args, **self.env}

    def as_oci(self) -> dict[str, object]:
        config: dict[str, object] = {"Env": [f"{key}={value}" for key, value in self.env.items()]}
        for key, value in (("Cmd", self.cmd), ("Entrypoint", self.entrypoint), ("WorkingDir", self.working_dir),
                           ("User", self.user), ("Labels", self.labels), ("ExposedPorts", self.exposed_ports)):
            if value:
                config[key] = value
        return config

    def apply(self, item: Instruction, where: str) -> None:
        """A configuration instruction (not FROM or RUN) takes effect."""
        at = f"{where}:{item.line}"
        text = expand(item.argument, self.run_env()) if item.keyword not in ("CMD", "ENTRYPOINT") else item.argument
        if item.keyword == "ENV":
            self.env.update(_pairs(text, at, legacy=True))
        elif item.keyword == "ARG":
            name, has_default, default = text.partition("=")
            if not re.fullmatch(r"\w+", name):
                raise InvalidInput(f"ARG {text!r} is not NAME or NAME=default", location=at)
            self.args[name] = default if has_default else self.args.get(name, "")
        elif item.keyword == "LABEL":
            self.labels.update(_pairs(text, at, legacy=False))
        elif item.keyword == "WORKDIR":
            self.working_dir = posixpath.normpath(posixpath.join(self.working_dir or "/", text))
        elif item.keyword == "USER":
            self.user = text
        elif item.keyword == "CMD":
            self.cmd = command(item, where)
        elif item.keyword == "ENTRYPOINT":
            self.entrypoint = command(item, where)
            self.cmd = None  # as Docker: a new entrypoint drops the parent's CMD
        elif item.keyword == "EXPOSE":
            for port in text.split():
                number, _, protocol = port.partition("/")
                if not number.isdigit() or protocol not in ("", "tcp", "udp", "sctp"):
                    raise InvalidInput(f"EXPOSE {port!r} is not PORT or PORT/tcp|udp|sctp", location=at)
                self.exposed_ports[f"{number}/{protocol or 'tcp'}"] = {}


def _pairs(text: str, at: str, *, legacy: bool) -> dict[str, str]:
    """``KEY=VALUE ...`` (values quoted as in a shell); with ``legacy``, also ``KEY rest of line``."""
    first = text.split(None, 1)
    if legacy and first and "=" not in first[0]:
        if len(first) < 2:
            raise InvalidInput(f"ENV {text!r} has no value", location=at)
        return {first[0]: first[1]}
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise InvalidInput(f"cannot read {text!r}: {error}", location=at) from None
    pairs = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise InvalidInput(f"{word!r} is not KEY=VALUE", location=at)
        pairs[key] = value
    return pairs

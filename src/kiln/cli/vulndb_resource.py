"""``kiln vulndb import|update|status|source|mirror|findings|pending``: advisory data and what it says about
a package list (``kiln.services.scanning``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from kiln.cli.options import Output
from kiln.cli.output import emit, table

app = typer.Typer()
source_app = typer.Typer(no_args_is_help=True, help="Advisory sources `kiln vulndb update` fetches.")
mirror_app = typer.Typer(no_args_is_help=True, help="Mirrors of the security archives (security suite indexes).")

PACKAGES_HELP = "JSON file: a list of installed packages (name, version, architecture, source_name, " \
                "source_version, ecosystem, purl)."


@contextmanager
def _bars(enabled: bool) -> Iterator[Callable[[str], Callable[[int, int | None], None] | None]]:
    """A Rich download bar on stderr per name (only when stderr is a terminal)."""
    if not enabled:
        yield lambda name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(file=sys.stderr), transient=True) as bar:
        def for_name(name: str) -> Callable[[int, int | None], None]:
            task = bar.add_task(name, total=None)

            def update(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            return update

        yield for_name


def _result_text(result: dict[str, Any]) -> str:
    if not result["Changed"]:
        return f"{result['Source']}: unchanged ({result['Records']} records)"
    ecosystems = ", ".join(f"{name} {count}" for name, count in result["Ecosystems"].items())
    return f"{result['Source']}: {result['Records']} records imported ({ecosystems})"


@app.command("import")
def import_(
    location: str = typer.Argument(..., help="OSV data: a zip of JSON records, a directory, a JSON file, or a URL."),
    source: str = typer.Option(None, "--source", help="Source name (default: from the file or URL name)."),
    output: Output = "text",
) -> None:
    """Import OSV advisory records in one transaction, replacing the source's previous records."""
    from kiln.services.scanning import advisories

    with _bars(sys.stderr.isatty()) as bars:
        result = advisories.import_advisories(location, source=source, progress=bars(location)).as_json()
    emit(output, result, _result_text(result))


@app.command("update")
def update(
    names: list[str] = typer.Argument(None, help="Sources to update (default: every configured source)."),
    output: Output = "text",
) -> None:
    """Fetch the configured sources (conditional requests: unchanged data is not downloaded again)."""
    from kiln.services.scanning import advisories

    with _bars(sys.stderr.isatty()) as bars:
        results = [r.as_json() for r in advisories.update(names or None, progress_for=bars)]
    emit(output, {"Sources": results}, "\n".join(_result_text(r) for r in results))


@app.command("status")
def status(output: Output = "text") -> None:
    """Sources, record counts per ecosystem, last import and its age."""
    from kiln.services.scanning import advisories

    found = advisories.status()

    def text() -> None:
        if not found["Sources"]:
            sys.stdout.write("no advisory data (kiln vulndb import PATH|URL, or kiln vulndb source add + update)\n")
            return
        table(["SOURCE", "RECORDS", "IMPORTED", "AGE", "CHECKED", "LOCATION"],
              [(s["Name"], s["Records"], s["ImportedAt"] or "never",
                "-" if s["AgeDays"] is None else f"{s['AgeDays']:.1f}d", s["CheckedAt"] or "-",
                s["Location"] or s["ConfiguredUrl"]) for s in found["Sources"]])
        rows = [(s["Name"], ecosystem, count) for s in found["Sources"] for ecosystem, count in s["Ecosystems"].items()]
        if rows:
            sys.stdout.write("\n")
            table(["SOURCE", "ECOSYSTEM", "RECORDS"], rows)

    emit(output, found, text)


@source_app.command("add")
def source_add(name: str = typer.Argument(...), url: str = typer.Argument(...), output: Output = "text") -> None:
    """Configure a source URL (e.g. https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip)."""
    from kiln.services.scanning import config

    emit(output, {"Source": config.add_source(name, url)}, name)


@source_app.command("remove")
def source_remove(name: str = typer.Argument(...), output: Output = "text") -> None:
    """Stop fetching a source (its imported records stay until replaced)."""
    from kiln.services.scanning import config

    config.remove_source(name)
    emit(output, {"Removed": name}, name)


@source_app.command("list")
def source_list(output: Output = "text") -> None:
    """The configured sources."""
    from kiln.services.scanning import config

    found = config.sources()
    emit(output, {"Sources": [{"Name": n, "Url": u} for n, u in found.items()]},
         lambda: table(["NAME", "URL"], sorted(found.items())))


@mirror_app.command("set")
def mirror_set(archive: str = typer.Argument(..., help="debian-security, ubuntu-security or ubuntu-ports-security."),
               url: str = typer.Argument(...), output: Output = "text") -> None:
    """Fetch a security archive's indexes from this mirror."""
    from kiln.services.scanning import config

    emit(output, {"Mirror": config.set_mirror(archive, url)}, f"{archive} {url}")


@mirror_app.command("list")
def mirror_list(output: Output = "text") -> None:
    """The security archives and the mirror each is fetched from."""
    from kiln.services.scanning import config

    found = {name: config.mirror(name) for name in config.DEFAULT_MIRRORS}
    emit(output, {"Mirrors": [{"Archive": n, "Url": u} for n, u in found.items()]},
         lambda: table(["ARCHIVE", "URL"], found.items()))


@app.command("findings")
def findings(
    packages_json: Path = typer.Option(..., "--packages-json", help=PACKAGES_HELP),
    severity: str = typer.Option(None, "--severity", help="Only this severity (CRITICAL, HIGH, …)."),
    fix_available: bool = typer.Option(False, "--fix-available", help="Only findings with a fix available."),
    output: Output = "text",
) -> None:
    """The findings of a package list against the imported advisory data, and their summary."""
    from kiln.errors import InvalidInput
    from kiln.services.scanning.package_lists import read_packages
    from kiln.services.scanning.scans import scan_packages
    from kiln.services.scanning.severity import LABELS

    if severity is not None and severity.upper() not in LABELS:
        raise InvalidInput(f"unknown severity {severity!r}", location="--severity", hint=", ".join(LABELS))
    outcome, summary = scan_packages(read_packages(packages_json))
    shown = [f for f in outcome.findings if (severity is None or f.severity.label == severity.upper())
             and (not fix_available or f.fix_available)]

    def text() -> None:
        table(["VULNERABILITY", "ALIASES", "PACKAGE", "INSTALLED", "FIXED", "SEVERITY", "FIX SINCE"],
              [(f.vulnerability_id, ",".join(f.aliases), f.package.name, f.installed_version,
                f.fixed_version or f.fix_state.lower().replace("_", " "), f.severity.label,
                f"{f.fix_available_since:%Y-%m-%d}" if f.fix_available_since else "-") for f in shown])
        counts = ", ".join(f"{label.lower()} {n}" for label, n in summary.counts.items() if n)
        sys.stdout.write(f"\n{summary.total} findings ({counts or 'none'}); highest {summary.highest_severity or '-'}"
                         f", highest fixable {summary.highest_fixable_severity or '-'}\n")
        if summary.unknown_ecosystems:
            sys.stdout.write(f"UNKNOWN: no advisory data for {', '.join(summary.unknown_ecosystems)} "
                             f"({len(outcome.unknown)} packages not checked)\n")

    emit(output, {"Findings": [f.as_json() for f in shown], "Summary": summary.as_json(),
                  "Unknown": [p.as_json() for p in outcome.unknown]}, text)


@app.command("pending")
def pending(
    packages_json: Path = typer.Option(..., "--packages-json", help=PACKAGES_HELP),
    output: Output = "text",
) -> None:
    """Debian/Ubuntu packages with a newer version in their release's security suite, and since when."""
    from kiln.services.scanning.package_lists import read_packages
    from kiln.services.scanning.security_suites import pending_updates

    with _bars(sys.stderr.isatty()) as bars:
        report = pending_updates(read_packages(packages_json), progress_for=bars)

    def text() -> None:
        table(["PACKAGE", "ARCH", "INSTALLED", "AVAILABLE", "SUITE", "SEEN SINCE"],
              [(u.package.name, u.package.architecture, u.installed_version, u.available_version, u.suite,
                f"{u.first_seen:%Y-%m-%d %H:%M}") for u in report.updates])
        stale = [i["url"] for i in report.indexes if i["stale"]]
        sys.stdout.write(f"\n{len(report.updates)} pending security updates\n")
        if stale:
            sys.stdout.write(f"offline: used the cached index for {', '.join(stale)}\n")
        if report.unknown:
            sys.stdout.write(f"UNKNOWN: {len(report.unknown)} packages have no security suite kiln can check\n")

    emit(output, report.as_json(), text)

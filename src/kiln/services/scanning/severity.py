"""A finding's severity, in Image Builder's labels: the distribution's own rating where the record gives
one (Debian's urgency, Ubuntu's priority), else the CVSS v3 base score computed from the vector, else
``UNTRIAGED``. CVSS v2 and v4 vectors are not scored (v3 is what Image Builder's labels follow)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED = (
    "CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED")
LABELS = (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED)  # highest first
# How labels order when "highest" is asked: UNTRIAGED is not known to be low, but is not known to be
# high either; it ranks below INFORMATIONAL, as Inspector sorts it.
RANK = {label: len(LABELS) - index for index, label in enumerate(LABELS)}

# Debian's urgency (security tracker), as OSV's Debian records carry it in ecosystem_specific.urgency.
DEBIAN_URGENCY = {"unimportant": INFORMATIONAL, "low": LOW, "medium": MEDIUM, "high": HIGH}
# Ubuntu's priority: OSV severity type "Ubuntu" (lower-cased).
UBUNTU_PRIORITY = {"negligible": INFORMATIONAL, "low": LOW, "medium": MEDIUM, "high": HIGH, "critical": CRITICAL}


@dataclass(frozen=True)
class Severity:
    label: str
    source: str  # "Debian urgency", "Ubuntu priority", "CVSS_V3" or "none"
    score: float | None = None
    vector: str | None = None


def highest(labels: Any) -> str | None:
    return max(labels, key=RANK.__getitem__, default=None)


def label_of_score(score: float) -> str:
    """CVSS v3's qualitative scale; 0.0 (none) is Image Builder's INFORMATIONAL."""
    if score >= 9.0:
        return CRITICAL
    if score >= 7.0:
        return HIGH
    if score >= 4.0:
        return MEDIUM
    if score >= 0.1:
        return LOW
    return INFORMATIONAL


_WEIGHTS = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def _roundup(value: float) -> float:
    """CVSS v3.1's Roundup: the smallest number with one decimal that is ≥ the input (float-safe)."""
    scaled = round(value * 100000)
    return scaled / 100000.0 if scaled % 10000 == 0 else (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The base score of a CVSS v3.0/v3.1 vector (``CVSS:3.1/AV:N/…``); None when it is not one."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        return None
    metrics = dict(part.split(":", 1) for part in parts[1:] if ":" in part)
    try:
        scope = metrics["S"]
        impact_sub = 1 - ((1 - _WEIGHTS["C"][metrics["C"]]) * (1 - _WEIGHTS["I"][metrics["I"]])
                          * (1 - _WEIGHTS["A"][metrics["A"]]))
        exploitability = (8.22 * _WEIGHTS["AV"][metrics["AV"]] * _WEIGHTS["AC"][metrics["AC"]]
                          * _PRIVILEGES[scope][metrics["PR"]] * _WEIGHTS["UI"][metrics["UI"]])
    except KeyError:
        return None
    changed = 7.52 * (impact_sub - 0.029) - 3.25 * (impact_sub - 0.02) ** 15
    impact = 6.42 * impact_sub if scope == "U" else changed
    if impact <= 0:
        return 0.0
    if scope == "U":
        return _roundup(min(impact + exploitability, 10))
    return _roundup(min(1.08 * (impact + exploitability), 10))


def _specific(affected: dict[str, Any], key: str) -> str:
    for block in ("ecosystem_specific", "database_specific"):
        value = (affected.get(block) or {}).get(key)
        if isinstance(value, str):
            return value.strip().lower().rstrip("*").strip()
    return ""


def severity_of(record: dict[str, Any], affected: dict[str, Any]) -> Severity:
    """The severity of ``record`` for one of its ``affected`` entries (the package's own rating first)."""
    entries = [*(affected.get("severity") or []), *(record.get("severity") or [])]
    family = affected.get("package", {}).get("ecosystem", "").split(":", 1)[0]
    if family == "Debian":
        urgency = _specific(affected, "urgency")
        if urgency in DEBIAN_URGENCY:
            return Severity(DEBIAN_URGENCY[urgency], "Debian urgency")
    if family == "Ubuntu":
        priorities = [entry["score"].strip().lower() for entry in entries if entry.get("type") == "Ubuntu"]
        priorities.append(_specific(affected, "priority"))
        for priority in priorities:
            if priority in UBUNTU_PRIORITY:
                return Severity(UBUNTU_PRIORITY[priority], "Ubuntu priority")
    for entry in entries:
        if entry.get("type") == "CVSS_V3":
            score = cvss3_base_score(entry.get("score", ""))
            if score is not None:
                return Severity(label_of_score(score), "CVSS_V3", score, entry["score"])
    return Severity(UNTRIAGED, "none")

"""Windows-only AWSTOE actions: ExecutePowerShell, InstallMSI, UninstallMSI and SetRegistry.

Their inputs are checked as thoroughly as the Linux actions' (a Windows component validates on any
host). kiln has no Windows instances: running one of these fails its step, naming the step.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, RootModel, field_validator, model_validator

from kiln.documents.actions.base import (
    WINDOWS,
    Action,
    ActionFailed,
    ActionResult,
    Inputs,
    StepContext,
    register,
)
from kiln.documents.actions.scalars import scalar_text
from kiln.documents.expressions import has_expression

# msiexec /L flags, as AWSTOE documents them (case-insensitive)
MSI_LOG_FLAGS = set("iwearucmopvx+!*")
# set through the `reboot` input, never through `properties`
RESERVED_MSI_PROPERTIES = ("REBOOT", "REBOOTPROMPT")
REGISTRY_HIVES = ("HKEY_CLASSES_ROOT", "HKCR:", "HKEY_USERS", "HKU:", "HKEY_LOCAL_MACHINE", "HKLM:",
                  "HKEY_CURRENT_CONFIG", "HKCC:", "HKEY_CURRENT_USER", "HKCU:")
REGISTRY_HIVE = re.compile(r"^(?:" + "|".join(map(re.escape, REGISTRY_HIVES)) + r")(?:[\\/]|$)", re.IGNORECASE)
INTEGER_RANGES = {"DWORD": (-(2**31), 2**32 - 1), "QWORD": (-(2**63), 2**64 - 1)}


class PowerShellInputs(Inputs):
    commands: list[str] | None = Field(default=None, min_length=1)
    file: str | None = Field(default=None, min_length=1)

    @field_validator("file")
    @classmethod
    def _script(cls, value: str | None) -> str | None:
        if value is not None and not has_expression(value) and not value.lower().endswith(".ps1"):
            raise ValueError(f"'{value}' is not a PowerShell script; the path must point to a .ps1 file")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PowerShellInputs:
        if (self.commands is None) == (self.file is None):
            raise ValueError("give exactly one of 'commands' or 'file'")
        return self


class MsiInputs(Inputs):
    path: str = Field(min_length=1)
    reboot: Literal["Allow", "Force", "Skip"] = "Allow"
    logOptions: str = "*VX"
    logFile: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    ignoreAuthenticodeSignatureErrors: bool = False
    allowUnsignedInstaller: bool = False

    @field_validator("logOptions")
    @classmethod
    def _log_flags(cls, value: str) -> str:
        wrong = sorted({flag for flag in value.lower() if flag not in MSI_LOG_FLAGS})
        if wrong and not has_expression(value):
            raise ValueError(f"'{value}' has unknown msiexec log flags {''.join(wrong)!r}; "
                             f"use any of i w e a r u c m o p v x + ! *")
        return value

    @field_validator("properties")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.upper() in RESERVED_MSI_PROPERTIES:
                raise ValueError(f"property {name} cannot be set here; use the 'reboot' input")
        return value


class RegistryEntry(Inputs):
    path: str = Field(min_length=1)
    name: str
    value: Any
    type: Literal["BINARY", "DWORD", "QWORD", "SZ", "EXPAND_SZ", "MULTI_SZ"]

    @field_validator("path")
    @classmethod
    def _hive(cls, value: str) -> str:
        if not has_expression(value) and not REGISTRY_HIVE.match(value):
            raise ValueError(f"'{value}' does not start with a registry hive (HKLM:, HKCU:, HKCR:, HKU:, "
                             f"HKCC: or HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, ...)")
        return value

    @model_validator(mode="after")
    def _value_fits_type(self) -> RegistryEntry:
        value = self.value
        if isinstance(value, dict) or value is None:
            raise ValueError("value must be a string, a number or a list")
        if isinstance(value, str) and has_expression(value):
            return self
        if self.type in ("SZ", "EXPAND_SZ"):
            if isinstance(value, list):
                raise ValueError(f"a {self.type} value is one string, not a list (use MULTI_SZ)")
            self.value = scalar_text(value)
        elif self.type == "MULTI_SZ":
            items = value if isinstance(value, list) else [value]
            if any(isinstance(item, dict | list) for item in items):
                raise ValueError("a MULTI_SZ value is a list of strings")
            self.value = [scalar_text(item) for item in items]
        elif self.type in INTEGER_RANGES:
            if isinstance(value, list | bool):
                raise ValueError(f"a {self.type} value is one number")
            low, high = INTEGER_RANGES[self.type]
            if isinstance(value, int) and not low <= value <= high:
                raise ValueError(f"{value} does not fit in a {self.type}")
        elif self.type == "BINARY" and isinstance(value, list) and not all(
                isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value):
            raise ValueError("a BINARY value given as a list holds bytes (0-255)")
        return self


class RegistryInputs(RootModel[list[RegistryEntry]]):
    pass


class _WindowsOnly(Action):
    platforms = frozenset({WINDOWS})

    def execute(self, inputs: Any, context: StepContext) -> ActionResult:
        raise ActionFailed(f"{self.name} runs only on Windows, and kiln has no Windows instances")


@register
class ExecutePowerShell(_WindowsOnly):
    name = "ExecutePowerShell"
    inputs = PowerShellInputs
    outputs: ClassVar[tuple[str, ...]] = ("stdout",)


@register
class InstallMSI(_WindowsOnly):
    name = "InstallMSI"
    inputs = MsiInputs
    outputs: ClassVar[tuple[str, ...]] = ("logFile", "msiExitCode", "stdout")


@register
class UninstallMSI(_WindowsOnly):
    name = "UninstallMSI"
    inputs = MsiInputs
    outputs: ClassVar[tuple[str, ...]] = ("logFile", "msiExitCode", "stdout")


@register
class SetRegistry(_WindowsOnly):
    name = "SetRegistry"
    inputs = RegistryInputs

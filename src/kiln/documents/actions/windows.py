"""Windows-only actions: known by name so validation can refuse them clearly on Linux."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, RootModel, model_validator

from kiln.documents.actions.base import Action, ActionFailed, ActionResult, Inputs, StepContext, register


class PowerShellInputs(Inputs):
    commands: list[str] | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PowerShellInputs:
        if (self.commands is None) == (self.file is None):
            raise ValueError("give exactly one of 'commands' or 'file'")
        return self


class MsiInputs(Inputs):
    path: str
    reboot: Literal["Allow", "Force", "Skip"] = "Allow"
    logOptions: str = "*VX"
    logFile: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    ignoreAuthenticodeSignatureErrors: bool = False
    allowUnsignedInstaller: bool = False


class RegistryEntry(Inputs):
    path: str
    name: str
    value: Any
    type: Literal["BINARY", "DWORD", "QWORD", "SZ", "EXPAND_SZ", "MULTI_SZ"]


class RegistryInputs(RootModel[list[RegistryEntry]]):
    pass


class _WindowsOnly(Action):
    windows_only = True

    def execute(self, inputs: Any, context: StepContext) -> ActionResult:
        raise ActionFailed(f"{self.name} runs only on Windows")


@register
class ExecutePowerShell(_WindowsOnly):
    name = "ExecutePowerShell"
    inputs = PowerShellInputs


@register
class InstallMSI(_WindowsOnly):
    name = "InstallMSI"
    inputs = MsiInputs


@register
class UninstallMSI(_WindowsOnly):
    name = "UninstallMSI"
    inputs = MsiInputs


@register
class SetRegistry(_WindowsOnly):
    name = "SetRegistry"
    inputs = RegistryInputs

"""Windows components: validated against their declared platform on any host; run only on Windows.

The documents follow the shape of AWS's published Windows samples (InstallMSI from S3, registry
settings, PowerShell). Image Builder accepts them on CreateComponent with platform Windows; kiln must
too, and refuse the same documents for a Linux component, and the invalid variants for either.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kiln.documents.host import HostExecutor
from kiln.documents.run import document_from_text, run_documents
from kiln.errors import InvalidInput
from kiln.services.builds.steps import run_document
from kiln.services.components.resource import create_component, get_component, list_components

WINDOWS_DOC = """
name: InstallNotepadPlusPlus
description: Installs an MSI from S3, sets registry values and checks them with PowerShell.
schemaVersion: 1.0
parameters:
  - InstallerUri:
      type: string
      default: s3://my-installers/npp.8.6.msi
phases:
  - name: build
    steps:
      - name: Install
        action: InstallMSI
        onFailure: Abort
        maxAttempts: 2
        inputs:
          path: '{{ InstallerUri }}'
          logFile: C:\\msilogs\\npp-install.log
          logOptions: '*VX'
          reboot: Skip
          properties:
            COMPANYNAME: '"Amazon Web Services"'
            INSTALLLEVEL: 2
          ignoreAuthenticodeSignatureErrors: false
          allowUnsignedInstaller: true
      - name: SetRegistryKeyValues
        action: SetRegistry
        maxAttempts: 3
        inputs:
          - path: HKLM:\\SOFTWARE\\MySoftWare
            name: MyName
            value: FirstVersionSoftware
            type: SZ
          - path: HKEY_CURRENT_USER\\Software\\Test
            name: Version
            value: 1.1
            type: DWORD
          - path: HKLM:\\SOFTWARE\\MySoftWare
            name: Paths
            value: [C:\\one, C:\\two]
            type: MULTI_SZ
      - name: CreateConfig
        action: CreateFile
        inputs:
          - path: C:\\ProgramData\\npp\\config.xml
            content: <config/>
      - name: RunScript
        action: ExecutePowerShell
        inputs:
          file: C:\\scripts\\configure.ps1
  - name: validate
    steps:
      - name: CheckInstalled
        action: ExecutePowerShell
        inputs:
          commands:
            - if (-not (Test-Path 'C:\\Program Files\\Notepad++\\notepad++.exe')) { exit 1 }
      - name: Uninstall
        action: UninstallMSI
        inputs:
          path: C:\\sample.msi
          reboot: Allow
"""

INVALID_WINDOWS_DOC = """
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Install
        action: InstallMSI
        inputs:
          path: C:\\a.msi
          reboot: Later
          logOptions: '*VXZ'
          properties:
            REBOOT: ReallySuppress
      - name: Registry
        action: SetRegistry
        inputs:
          - path: HKEY_NOWHERE\\Software
            name: Bad
            value: x
            type: SZ
          - path: HKLM:\\Software\\Test
            name: TooBig
            value: 4294967296
            type: DWORD
          - path: HKLM:\\Software\\Test
            name: Listed
            value: [a, b]
            type: SZ
      - name: Script
        action: ExecutePowerShell
        inputs:
          file: C:\\scripts\\configure.bat
      - name: Both
        action: ExecutePowerShell
        inputs:
          commands: [Write-Host hi]
          file: C:\\x.ps1
      - name: Owned
        action: CreateFile
        inputs:
          - path: C:\\x.txt
            owner: Administrator
      - name: Bash
        action: ExecuteBash
        inputs:
          commands: [echo hi]
"""


def test_published_style_windows_document_is_valid_for_windows_on_a_linux_host(issues: Callable[..., Any]) -> None:
    assert issues(WINDOWS_DOC, "Windows") == []
    # the same document for a Linux component: each Windows-only action named where it stands
    assert issues(WINDOWS_DOC, "Linux") == [
        "12:17: action 'InstallMSI' is Windows-only; it cannot run on linux",
        "26:17: action 'SetRegistry' is Windows-only; it cannot run on linux",
        "47:17: action 'ExecutePowerShell' is Windows-only; it cannot run on linux",
        "53:17: action 'ExecutePowerShell' is Windows-only; it cannot run on linux",
        "58:17: action 'UninstallMSI' is Windows-only; it cannot run on linux",
    ]


def test_windows_inputs_are_checked_as_thoroughly_as_linux_ones(issues: Callable[..., Any]) -> None:
    assert issues(INVALID_WINDOWS_DOC, "Windows") == [
        "9:19: InstallMSI: input 'reboot': Input should be 'Allow', 'Force' or 'Skip'",
        "10:23: InstallMSI: input 'logOptions': Value error, '*VXZ' has unknown msiexec log flags 'z'; "
        "use any of i w e a r u c m o p v x + ! *",
        "12:13: InstallMSI: input 'properties': Value error, property REBOOT cannot be set here; "
        "use the 'reboot' input",
        "16:19: SetRegistry: input '[0].path': Value error, 'HKEY_NOWHERE\\Software' does not start with a "
        "registry hive (HKLM:, HKCU:, HKCR:, HKU:, HKCC: or HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, ...)",
        "20:13: SetRegistry: input '[1]': Value error, 4294967296 does not fit in a DWORD",
        "24:13: SetRegistry: input '[2]': Value error, a SZ value is one string, not a list (use MULTI_SZ)",
        "31:17: ExecutePowerShell: input 'file': Value error, 'C:\\scripts\\configure.bat' is not a PowerShell "
        "script; the path must point to a .ps1 file",
        "35:11: ExecutePowerShell: input 'inputs': Value error, give exactly one of 'commands' or 'file'",
        "41:13: CreateFile: input '[0].owner' is not supported on windows",
        "43:17: action 'ExecuteBash' is Linux-only; it cannot run on windows",
    ]


def test_linux_only_actions_refused_for_windows_components(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Link
            action: CreateSymlink
            inputs: [{path: /a, target: /b}]
          - name: Own
            action: SetFileOwner
            inputs: [{path: /a, owner: root}]
          - name: Folder
            action: CreateFolder
            inputs: [{path: 'C:\\data', permissions: '0755'}]
    """
    assert issues(text, "Windows") == [
        "6:17: action 'CreateSymlink' is Linux-only; it cannot run on windows",
        "9:17: action 'SetFileOwner' is Linux-only; it cannot run on windows",
        "13:36: CreateFolder: input '[0].permissions' is not supported on windows",
    ]
    assert issues(text, "Linux") == []


def test_create_component_checks_the_declared_platform() -> None:
    body = {"name": "npp", "semanticVersion": "1.0.0", "platform": "Windows", "data": WINDOWS_DOC,
            "supportedOsVersions": ["Microsoft Windows Server 2022"]}
    arn = create_component(body)["componentBuildVersionArn"]
    component = get_component(arn)["component"]
    assert component["platform"] == "Windows" and component["type"] == "BUILD"
    with pytest.raises(InvalidInput) as caught:
        create_component({**body, "name": "npp-linux", "platform": "Linux", "supportedOsVersions": None})
    assert "action 'InstallMSI' is Windows-only; it cannot run on linux (and 4 more)" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        create_component({**body, "name": "npp-bad", "data": INVALID_WINDOWS_DOC})
    assert "InstallMSI: input 'reboot'" in caught.value.message


def test_cli_validate_and_create_for_windows(kiln: Any, write_doc: Callable[..., Path]) -> None:
    good = write_doc(WINDOWS_DOC, "windows.yaml")
    result = kiln("component", "validate", "--documents", str(good), "--platform", "Windows")
    assert result.exit_code == 0, result.stderr
    result = kiln("component", "validate", "--documents", str(good))
    assert result.exit_code == 1
    assert f"{good}:12:17: action 'InstallMSI' is Windows-only; it cannot run on linux" in result.stderr
    bad = write_doc(INVALID_WINDOWS_DOC, "bad.yaml")
    result = kiln("component", "validate", "--documents", str(bad), "--platform", "Windows", "--output", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"][0] == {
        "file": str(bad), "line": 9, "column": 19,
        "message": "InstallMSI: input 'reboot': Input should be 'Allow', 'Force' or 'Skip'"}
    result = kiln("component", "validate", "--documents", str(good), "--platform", "Plan9")
    assert result.exit_code != 0 and "Plan9" in result.stderr
    result = kiln("component", "create", "--name", "npp", "--semantic-version", "1.0.0",
                  "--platform", "Windows", "--data-file", str(good))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("component/npp/1.0.0/1")


def test_windows_document_on_a_linux_instance_fails_at_run_time_naming_the_step(tmp_path: Path) -> None:
    # what a build does with a stored component: parse it (no platform check), run it on the instance
    document = document_from_text(WINDOWS_DOC.lstrip("\n"), "npp")
    execution, _ = run_documents([document], executor=HostExecutor(), log_directory=tmp_path,
                                 execution_id="run-1", phases=["build"])
    assert execution.status == "failed"
    steps = execution.documents[0].phases[0].steps
    assert [(s.name, s.status) for s in steps] == [("Install", "failed")]
    assert steps[0].attempts == 2  # maxAttempts is honoured like any failure
    assert execution.failure_message.startswith(
        "step Install failed: action InstallMSI is Windows-only and this instance runs Linux (")
    ok, message = run_document(HostExecutor(), WINDOWS_DOC.lstrip("\n"), name="npp", phases=("build",),
                               parameters={}, log_dir=tmp_path / "build", working_directory=str(tmp_path))
    assert not ok
    assert message.startswith("step Install failed: action InstallMSI is Windows-only")


def test_supported_os_versions_must_belong_to_the_platform() -> None:
    body = {"name": "npp", "semanticVersion": "1.0.0", "platform": "Windows", "data": WINDOWS_DOC,
            "supportedOsVersions": ["Microsoft Windows Server 2019", "Amazon Linux 2"]}
    with pytest.raises(InvalidInput) as caught:
        create_component(body)
    assert caught.value.message == ("supportedOsVersions[1] 'Amazon Linux 2' is a Linux operating system, but "
                                    "the component's platform is Windows")
    assert caught.value.location == "supportedOsVersions[1]"
    linux = {"name": "hello", "semanticVersion": "1.0.0", "platform": "Linux",
             "data": "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: A\n"
                     "        action: ExecuteBash\n        inputs: {commands: [echo]}\n",
             "supportedOsVersions": ["Amazon Linux 2023", "Ubuntu 22", "Red Hat Enterprise Linux 9"]}
    assert create_component(linux)["componentBuildVersionArn"].endswith("component/hello/1.0.0/1")
    with pytest.raises(InvalidInput, match="'Microsoft Windows Server 2022' is a Windows operating system"):
        create_component({**linux, "semanticVersion": "1.0.1",
                          "supportedOsVersions": ["Microsoft Windows Server 2022"]})
    assert list_components()["componentVersionList"][0]["version"] == "1.0.0"
    assert len(list_components()["componentVersionList"]) == 1


def test_update_os_takes_windows_update_ids_and_titles(issues: Callable[..., Any]) -> None:
    text = """
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: UpdateWindowsOperatingSystem
            action: UpdateOS
            onFailure: Abort
            maxAttempts: 3
            inputs:
              include: [KB1234567, '*Security*', '*Cumulative Update*']
              exclude: ['']
    """
    assert issues(text, "Windows") == ["11:20: UpdateOS: input 'exclude': Value error, '' is not a package name"]
    assert issues(text, "Linux") == [
        "10:20: UpdateOS: input 'include': Value error, '*Cumulative Update*' is not a package name",
        "11:20: UpdateOS: input 'exclude': Value error, '' is not a package name",
    ]


def test_apply_a_windows_component_and_a_recipe_using_it() -> None:
    from kiln.services.apply import apply_text

    data = textwrap.indent(WINDOWS_DOC.lstrip("\n"), "  ")
    text = (f"kind: Component\nname: npp\nsemanticVersion: 1.0.0\nplatform: Windows\ndata: |\n{data}"
            "---\nkind: ImageRecipe\nname: desktop\nsemanticVersion: 1.0.0\nparentImage: debian:bookworm\n"
            "components:\n  - componentArn: component/npp/x.x.x\n  - componentArn: component/update-windows/x.x.x\n")
    outcome = apply_text(text)
    assert [(o.kind, o.status) for o in outcome.outcomes] == [("Component", "created"), ("ImageRecipe", "created")]
    with pytest.raises(InvalidInput) as caught:
        apply_text(text.replace("platform: Windows", "platform: Linux").replace("name: npp", "name: npp-linux"))
    assert "action 'InstallMSI' is Windows-only; it cannot run on linux" in caught.value.message

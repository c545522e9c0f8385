"""Amazon-style managed components shipped with kiln, seeded into the database on first use.

kiln's own implementations live in ``kiln/services/components/managed_documents/<name>.yaml`` and
do the same job on Debian/Ubuntu, RHEL-family and Amazon Linux-like instances. The other names of
AWS's public managed list (every Windows one among them) are seeded too, with one step that fails the
build saying kiln has no implementation, so recipes that reference them are accepted. Each is owned
by ``Amazon`` under the account ``aws``: ``arn:aws:imagebuilder:local:aws:component/<name>/<version>/1``.
Seeding is idempotent; a kiln release that changes a document must bump its version here (versions
are immutable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.home import DEFAULT_REGION
from kiln.model.arn import MANAGED_ACCOUNT

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DOCUMENTS = Path(__file__).resolve().parent / "managed_documents"


@dataclass(frozen=True)
class ManagedComponent:
    name: str
    version: str
    description: str
    supported_os_versions: tuple[str, ...] = ()
    platform: str = "Linux"
    # False: kiln has no implementation; the component's one step fails the build, saying so
    implemented: bool = True

    @property
    def is_test(self) -> bool:
        return self.name.endswith("-test") or "-test-" in self.name


def _missing(name: str, description: str, platform: str = "Linux") -> ManagedComponent:
    return ManagedComponent(name, "1.0.0", description, platform=platform, implemented=False)


IMPLEMENTED: tuple[ManagedComponent, ...] = (
    ManagedComponent("update-linux", "1.0.0", "Updates Linux with the latest packages (apt-get or yum)."),
    ManagedComponent("reboot-linux", "1.0.0", "Reboots the instance."),
    ManagedComponent("simple-boot-test-linux", "1.0.0", "Tests that the image boots and survives a reboot."),
    ManagedComponent("hello-world-linux", "1.0.0", "Prints Hello World in every phase."),
    ManagedComponent(
        "kiln-hardening-linux",
        "1.0.0",
        "Hardening baseline: sshd, password ageing, unused services masked; checked in validate/test.",
    ),
    ManagedComponent("aws-cli-version-2-linux", "1.0.0", "Installs the AWS CLI version 2 from the distribution."),
    ManagedComponent("python-3-linux", "1.0.0", "Installs Python 3 and pip from the distribution."),
    ManagedComponent("docker-ce-linux", "1.0.0", "Installs the Docker engine and CLI from the distribution."),
    ManagedComponent(
        "chrony-time-configuration-test", "1.0.0",
        "Tests that chrony is installed and uses the Amazon Time Sync Service (169.254.169.123).",
    ),
    ManagedComponent(
        "kiln-bootable-linux", "1.1.0",
        "Kernel, initramfs, cloud-init (NoCloud, Ec2) and a serial console: a disk export boots.",
    ),
    ManagedComponent("reboot-test-linux", "1.0.0", "Tests that the instance reboots and keeps its files."),
    ManagedComponent("stig-build-linux-low", "1.0.0", "A small subset of STIG category III settings."),
    ManagedComponent("stig-build-linux-medium", "1.0.0", "A small subset of STIG category II and III settings."),
    ManagedComponent("stig-build-linux-high", "1.0.0", "A small subset of STIG category I, II and III settings."),
)

# AWS-managed components recipes reference that kiln does not implement (yet): accepted in recipes,
# failing the build at their step. Every Windows component is here: kiln has no Windows instances.
NOT_IMPLEMENTED: tuple[ManagedComponent, ...] = (
    *(_missing(name, description) for name, description in (
        ("amazon-cloudwatch-agent-linux", "Installs the Amazon CloudWatch agent."),
        ("amazon-corretto-11-headless", "Installs Amazon Corretto 11 (headless)."),
        ("amazon-corretto-17-headless", "Installs Amazon Corretto 17 (headless)."),
        ("apache-tomcat-9-linux", "Installs Apache Tomcat 9."),
        ("aws-codedeploy-agent-linux", "Installs the AWS CodeDeploy agent."),
        ("docker-ce-centos", "Installs Docker CE on CentOS."),
        ("docker-ce-ubuntu", "Installs Docker CE on Ubuntu."),
        ("dotnet-runtime-linux", "Installs the .NET runtime."),
        ("dotnet-sdk-linux", "Installs the .NET SDK."),
        ("ebs-volume-usage-test-linux", "Tests creating, attaching and using an EBS volume."),
        ("eni-attachment-test-linux", "Tests attaching an elastic network interface."),
        ("go-stable-linux", "Installs the stable release of Go."),
        ("inspector-test-linux", "Runs an Amazon Inspector assessment."),
        ("powershell-linux", "Installs PowerShell."),
        ("scap-compliance-checker-linux", "Installs the SCAP Compliance Checker."),
        ("update-linux-kernel-mainline", "Installs the mainline Linux kernel."),
        ("yum-repository-test-linux", "Tests that yum repositories are reachable."),
    )),
    *(_missing(name, description, "Windows") for name, description in (
        ("update-windows", "Installs the latest Windows updates."),
        ("aws-cli-version-2-windows", "Installs the AWS CLI version 2."),
        ("amazon-cloudwatch-agent-windows", "Installs the Amazon CloudWatch agent."),
        ("chocolatey", "Installs Chocolatey."),
        ("dotnet-sdk-windows", "Installs the .NET SDK."),
        ("ec2launch-v2-windows", "Installs EC2Launch v2."),
        ("hello-world-windows", "Prints Hello World in every phase."),
        ("inspector-test-windows", "Runs an Amazon Inspector assessment."),
        ("powershell-windows", "Installs PowerShell."),
        ("python-3-windows", "Installs Python 3."),
        ("reboot-windows", "Reboots the instance."),
        ("reboot-test-windows", "Tests that the instance reboots."),
        ("simple-boot-test-windows", "Tests that the image boots."),
        ("stig-build-windows-low", "Applies STIG category III settings."),
        ("stig-build-windows-medium", "Applies STIG category II and III settings."),
        ("stig-build-windows-high", "Applies STIG category I, II and III settings."),
        ("windows-activation-test", "Tests that Windows is activated."),
    )),
)

MANAGED_COMPONENTS: tuple[ManagedComponent, ...] = (*IMPLEMENTED, *NOT_IMPLEMENTED)


def managed_document(name: str) -> str:
    for managed in NOT_IMPLEMENTED:
        if managed.name == name:
            return unavailable_document(managed)
    return (DOCUMENTS / f"{name}.yaml").read_text()


def unavailable_document(managed: ManagedComponent) -> str:
    """The document of a managed component kiln does not implement: one step that says so."""
    phase = "test" if managed.is_test else "build"
    return (
        f"name: {managed.name}\n"
        f"description: {managed.description} kiln has no implementation of this AWS-managed component.\n"
        "schemaVersion: 1.0\n"
        "phases:\n"
        f"  - name: {phase}\n"
        "    steps:\n"
        "      - name: NoKilnImplementation\n"
        "        action: kiln:NoImplementation\n"
        "        inputs:\n"
        f"          component: {managed.name}\n"
    )


def ensure_managed_components(db: Session, region: str = DEFAULT_REGION) -> int:
    """Insert the managed components the database lacks; returns how many were added."""
    from sqlalchemy import select

    from kiln.db.tables.resources import ComponentRow
    from kiln.model.component import CreateComponentRequest
    from kiln.services.components.resource import put_component

    present = set(db.scalars(select(ComponentRow.arn).where(ComponentRow.account == MANAGED_ACCOUNT)))
    added = 0
    for managed in MANAGED_COMPONENTS:
        arn = f"arn:aws:imagebuilder:{region}:{MANAGED_ACCOUNT}:component/{managed.name}/{managed.version}/1"
        if arn in present:
            continue
        request = CreateComponentRequest(
            name=managed.name,
            semanticVersion=managed.version,
            description=managed.description,
            platform=managed.platform,
            data=managed_document(managed.name),
            supportedOsVersions=list(managed.supported_os_versions) or None,
        )
        put_component(
            db, request, account=MANAGED_ACCOUNT, region=region, where=f"managed component {managed.name}"
        )
        added += 1
    return added

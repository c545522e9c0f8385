"""The distribution workflow: everything a DistributionConfiguration says, for one build.

Per region entry of the configuration (``distributions[i]``):

* the build's own account holds an AMI in that region: in the build's region the output AMI itself,
  elsewhere a CopyImage of it (blobs moved once per region store, only those the region lacks);
* ``amiDistributionConfiguration.targetAccountIds``: one more copy in that region owned by each listed
  account (within the region: no blob moves, each copy its own snapshot of the same blobs);
* ``name`` (with ``{{ imagebuilder:buildDate }}`` / ``{{ imagebuilder:buildVersion }}``),
  ``description`` and ``amiTags`` of the entry on each of its AMIs; copies outside the build's
  region get no default description, as in Image Builder;
* ``launchPermission`` (``userIds``, ``userGroups``, ``organizationArns``, ``organizationalUnitArns``)
  granted on every AMI of the entry;
* ``kmsKeyId``, ``licenseConfigurationArns`` and ``fastLaunchConfigurations`` recorded in the
  DistributeImage step's outputs (kiln encrypts nothing, has no License Manager and no Windows);
* ``s3ExportConfiguration``: the region's AMI exported (reproducibly) as RAW, VHD or VMDK to
  ``KILN_HOME/s3/<s3Bucket>/<s3Prefix>/<ami-id>.<raw|vhd|vmdk>`` (:func:`export_path`).

* ``ssmParameterConfigurations``: the AMI id of ``amiAccountId``'s AMI in that region (default: the
  build's account; another account must be a target account of the region) written as a new version
  of the parameter, in that account and region (``dataType`` ``aws:ec2:image`` checked by the store);
* ``launchTemplateConfigurations``: a new version of the template of ``accountId`` (default: the
  build's account) in that region, from its default version with the AMI of that account there (or
  the build account's, which must then be shared with it); the default version unless
  ``setDefaultVersion`` is false (Image Builder's default is true).

Parameters and launch templates are written in :meth:`Distribution.publish`, in the one transaction
that also makes the image AVAILABLE: they point at the new AMIs only if the build finished.
``containerDistributionConfiguration`` is refused at build start (:func:`check_distribution`).

* ``kiln:AwsPublish`` (kiln's extension, a list of ``{region, profile, endpointUrl, launchPermission}``):
  the entry's own AMI published to AWS as a real AMI, at the end of DistributeImage, recorded in the
  outputs with the AWS region and account (:mod:`kiln.services.builds.aws_distribution`).

Everything made is recorded first (:mod:`kiln.services.builds.made`); :func:`discard` removes it all
when the build does not finish, in this process or at the next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln.errors import InvalidInput, KilnError
from kiln.home import DEFAULT_ACCOUNT, s3_dir
from kiln.services.builds import aws_distribution, made
from kiln.services.builds.records import account_of, is_local
from kiln.services.configurations.distribution import check_regions

EXPORT_EXTENSIONS = {"RAW": "raw", "VHD": "vhd", "VMDK": "vmdk"}
NOT_YET = {"containerDistributionConfiguration": "kiln builds AMIs, not container images"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Fault injection for the restart test: "<n>:<path>" holds the process (touching <path>) after its
# n-th AMI copy is registered and before that is recorded — the narrowest window there is.
HOLD_ENV = "KILN_TEST_DISTRIBUTION_HOLD"


class DistributionFailed(KilnError):
    """One region or account of the distribution failed; what was made is removed."""


# --- checks at configuration create/update and build start ---------------------------------------


def check_distribution(distributions: list[dict[str, Any]], where: str, *, account: str = DEFAULT_ACCOUNT) -> None:
    """What a build of ``account`` checks before it starts: regions exist, every field is one kiln
    carries out, S3 exports name a bucket and a prefix that stay inside ``KILN_HOME/s3``."""
    for index, entry in enumerate(distributions):
        for name, why in NOT_YET.items():
            if entry.get(name):
                raise InvalidInput(f"{name} is not supported yet: {why}",
                                   location=f"{where}: distributions[{index}].{name}",
                                   hint="remove it from the distribution configuration")
        export = entry.get("s3ExportConfiguration")
        if export:
            export_path(export, "ami-check", location=f"{where}: distributions[{index}].s3ExportConfiguration")
        accounts = {account, *((entry.get("amiDistributionConfiguration") or {}).get("targetAccountIds") or [])}
        for number, parameter in enumerate(entry.get("ssmParameterConfigurations") or []):
            if parameter.get("amiAccountId", account) not in accounts:
                raise InvalidInput(
                    f"amiAccountId {parameter['amiAccountId']} is not a target account of region {entry['region']}",
                    location=f"{where}: distributions[{index}].ssmParameterConfigurations[{number}].amiAccountId",
                    hint="add it to the region's amiDistributionConfiguration.targetAccountIds",
                )
        aws_distribution.check(entry, f"{where}: distributions[{index}]")
    check_regions(distributions)


def export_path(export: dict[str, Any], ami: str, *, location: str = "s3ExportConfiguration") -> Path:
    """``KILN_HOME/s3/<bucket>/<prefix>/<ami>.<ext>``: kiln's local stand-in for the bucket."""
    bucket = export["s3Bucket"]
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidInput(f"{bucket!r} is not an S3 bucket name", location=f"{location}.s3Bucket")
    parts = [part for part in (export.get("s3Prefix") or "").split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise InvalidInput("s3Prefix may not contain . or .. segments", location=f"{location}.s3Prefix")
    return s3_dir().joinpath(bucket, *parts) / f"{ami}.{EXPORT_EXTENSIONS[export['diskImageFormat']]}"


# --- the workflow ----------------------------------------------------------------------------------


@dataclass
class Distribution:
    """One build's distribution: its source AMI (the output AMI in the build's region) and the
    configuration's region entries, turned into AMIs as the steps run."""

    image_arn: str
    build_region: str
    source_ami: str
    distributions: list[dict[str, Any]]
    base_tags: dict[str, str]  # every AMI of the build: the build's tags and the recipe's AMI tags
    build_date: datetime
    build_version: int
    default_name: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    _registered: int = 0

    @property
    def account(self) -> str:
        """The building account: it owns the output AMI and each region's "own" copy."""
        return account_of(self.image_arn)

    def entry(self, region: str) -> dict[str, Any]:
        for entry in self.distributions:
            if entry["region"] == region:
                return entry
        return {"region": region}

    def _where(self, region: str) -> str:
        """``distributions[i]``: the configuration's entry for ``region``, as errors name it."""
        index = next((i for i, entry in enumerate(self.distributions) if entry["region"] == region), None)
        return f"distributions[{index}]" if index is not None else f"region {region}"

    def _ami_config(self, entry: dict[str, Any]) -> dict[str, Any]:
        return entry.get("amiDistributionConfiguration") or {}

    def name_for(self, entry: dict[str, Any]) -> str:
        from kiln.model.templates import expand_name

        template = self._ami_config(entry).get("name")
        if not template:
            return self.default_name
        return expand_name(template, build_date=self.build_date, build_version=self.build_version)

    # -- DistributeImage ---------------------------------------------------------------------------
    def copy_all(self) -> dict[str, Any]:
        """Every AMI of every region and account; returns the step's outputs."""
        from kiln.store import api as store

        source = store.get_image(self.source_ami, self.build_region)
        self._output(self.build_region, self.account, self.source_ami, source.name, source.description)
        regions: list[dict[str, Any]] = []
        ordered = [self.entry(self.build_region)] + [e for e in self.distributions if e["region"] != self.build_region]
        for entry in ordered:
            region = entry["region"]
            config = self._ami_config(entry)
            transfer: dict[str, int] = {}
            if region == self.build_region:
                home_ami = self.source_ami
            else:
                home_ami, transfer = self._copy(entry, self.account, self.source_ami, self.build_region)
            copies = []
            for account in config.get("targetAccountIds") or []:
                if account != self.account:
                    self._require_account(account, region)
                    copy, moved = self._copy(entry, account, home_ami, region)
                    copies.append({"accountId": account, "imageId": copy, **moved})
            recorded = {key: value for key, value in {
                "kmsKeyId": config.get("kmsKeyId"),
                "licenseConfigurationArns": entry.get("licenseConfigurationArns"),
                "fastLaunchConfigurations": entry.get("fastLaunchConfigurations"),
            }.items() if value}
            regions.append({"region": region, **transfer, **({"accountCopies": copies} if copies else {}),
                            **recorded})
        published = self.publish_aws()
        return {"distributedImages": [{"region": o["region"], "accountId": o["accountId"], "imageId": o["image"]}
                                      for o in self.outputs if is_local(o)], "regions": regions,
                **({"awsPublished": published} if published else {})}

    def publish_aws(self) -> list[dict[str, Any]]:
        """Every ``kiln:AwsPublish`` target of every entry: the entry's own AMI as a real AMI there."""
        published = []
        for index, entry in enumerate(self.distributions):
            for number, target in enumerate(aws_distribution.targets(entry)):
                where = f"distributions[{index}].{aws_distribution.AWS_PUBLISH_KEY}[{number}]"
                source = _ami_of(self.outputs, entry["region"], self.account)
                assert source is not None
                grants = launch_permission_entries(target.get("launchPermission"))
                try:
                    output = aws_distribution.publish(self.image_arn, source, entry["region"], self.account, target,
                                                      grants)
                except KilnError as error:
                    raise DistributionFailed(
                        f"publishing {source} to AWS region {target['region']} failed: {error}", location=where,
                        hint=error.hint) from error
                info = next(o for o in self.outputs if o["image"] == source)
                step = {key: output.pop(key) for key in ("snapshotId", "blocksSent")}
                self.outputs.append({**output, "name": info["name"], "state": {"status": "AVAILABLE"}})
                published.append({"region": output["region"], "accountId": output["accountId"],
                                  "imageId": output["image"], "sourceImageId": source, **step})
        return published

    def _require_account(self, account: str, region: str) -> None:
        from kiln.services.accounts.accounts import AccountNotFound, account_exists

        if not account_exists(account):
            raise AccountNotFound(
                f"target account {account} does not exist (distribution to region {region})",
                location=f"{self._where(region)}.amiDistributionConfiguration.targetAccountIds",
                hint="kiln account list shows the accounts",
            )

    def _copy(self, entry: dict[str, Any], account: str, source: str, source_region: str) -> tuple[str, dict[str, int]]:
        from kiln.store import api as store

        region = entry["region"]
        config = self._ami_config(entry)
        row = made.begin(self.image_arn, made.AMI, region, account)
        try:
            outcome = store.copy_image_outcome(
                source, source_region=source_region, region=region, name=self.name_for(entry),
                description=config.get("description") or "",
                tags={**self.base_tags, **(config.get("amiTags") or {})}, owner=account,
            )
        except KilnError as error:
            raise DistributionFailed(f"distribution to region {region}, account {account} failed: {error}",
                                     location=self._where(region), hint=error.hint) from error
        self._registered += 1
        _hold(self._registered)
        made.done(row, outcome.image_id)
        from kiln.services.inventory.artifacts import carry_sboms

        carry_sboms(source, source_region, outcome.image_id, region)
        info = store.get_image(outcome.image_id, region)
        self._output(region, account, outcome.image_id, info.name, info.description)
        return outcome.image_id, outcome.transfer.as_dict()

    def _output(self, region: str, account: str, ami: str, name: str, description: str) -> None:
        self.outputs.append({
            "region": region, "image": ami, "name": name,
            **({"description": description} if description else {}),
            "state": {"status": "AVAILABLE"}, "accountId": account,
        })

    # -- ModifyImageAttributes ----------------------------------------------------------------------
    def share_all(self) -> dict[str, Any]:
        """Each entry's launch permission on every AMI of its region; returns the step's outputs."""
        from kiln.store import api as store

        shared: list[dict[str, Any]] = []
        for output in filter(is_local, self.outputs):  # AWS targets got theirs as they were published
            grants = launch_permission_entries(self._ami_config(self.entry(output["region"])).get("launchPermission"))
            if not grants:
                continue
            try:
                permissions = store.modify_launch_permission(output["image"], add=grants, region=output["region"])
            except KilnError as error:
                raise DistributionFailed(
                    f"launch permission of {output['image']} (region {output['region']}, account "
                    f"{output['accountId']}) failed: {error}", location=self._where(output["region"]),
                    hint=error.hint) from error
            shared.append({"imageId": output["image"], "region": output["region"], "launchPermissions": permissions})
        return {"shared": shared}

    # -- ExportImage --------------------------------------------------------------------------------
    def exports(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(region's own-account output, s3ExportConfiguration) for every entry that exports."""
        found = []
        for entry in self.distributions:
            export = entry.get("s3ExportConfiguration")
            if export:
                own = next(o for o in self.outputs
                           if is_local(o) and o["region"] == entry["region"] and o["accountId"] == self.account)
                found.append((own, export))
        return found

    def export_all(self) -> dict[str, Any]:
        from kiln.store import api as store

        written = []
        for output, export in self.exports():
            dest = export_path(export, output["image"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            row = made.begin(self.image_arn, made.EXPORT, output["region"], output["accountId"], str(dest))
            partial = _partial(dest)
            try:
                store.export_image(output["image"], EXPORT_EXTENSIONS[export["diskImageFormat"]], partial,
                                   output["region"])
                os.replace(partial, dest)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            made.done(row, str(dest))
            written.append({"region": output["region"], "imageId": output["image"], "path": str(dest),
                            "diskImageFormat": export["diskImageFormat"], "size": dest.stat().st_size})
        return {"exports": written}


def publish(image_arn: str, distributions: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every ``ssmParameterConfigurations`` and ``launchTemplateConfigurations`` entry, in the caller's
    unit of work (see the module's docstring); returns what was written."""
    done: dict[str, list[dict[str, Any]]] = {"parameters": [], "launchTemplates": []}
    for index, entry in enumerate(distributions):
        _publish_entry(image_arn, entry, index, outputs, done)
    return done


def launch_permission_entries(permission: dict[str, Any] | None) -> list[dict[str, str]]:
    """An Image Builder LaunchPermissionConfiguration as EC2 launch permission entries."""
    permission = permission or {}
    return (
        [{"UserId": account} for account in permission.get("userIds") or []]
        + [{"Group": group} for group in permission.get("userGroups") or []]
        + [{"OrganizationArn": arn} for arn in permission.get("organizationArns") or []]
        + [{"OrganizationalUnitArn": arn} for arn in permission.get("organizationalUnitArns") or []]
    )


def _partial(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def _hold(registered: int) -> None:
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    count, _, path = spec.partition(":")
    if int(count) == registered:
        Path(path).touch()
        while True:  # until killed
            time.sleep(1)


def _ami_of(outputs: list[dict[str, Any]], region: str, account: str) -> str | None:
    return next((o["image"] for o in outputs if is_local(o) and o["region"] == region and o["accountId"] == account),
                None)


def _publish_entry(image_arn: str, entry: dict[str, Any], index: int, outputs: list[dict[str, Any]],
                   done: dict[str, list[dict[str, Any]]]) -> None:
    from kiln.services.fleet.launch_templates import (
        TemplateRef,
        create_launch_template_version,
        modify_launch_template,
    )
    from kiln.services.parameters.parameter_store import put_parameter

    region, builder = entry["region"], account_of(image_arn)
    for number, parameter in enumerate(entry.get("ssmParameterConfigurations") or []):
        account = parameter.get("amiAccountId") or builder
        field_name = f"distributions[{index}].ssmParameterConfigurations[{number}]"
        ami = _ami_of(outputs, region, account)
        with _failing_as(region, account, field_name):
            version = put_parameter(parameter["parameterName"], str(ami), data_type=parameter.get("dataType"),
                                    overwrite=True, account=account, region=region)
        done["parameters"].append({"region": region, "accountId": account, "name": parameter["parameterName"],
                                   "version": version, "value": ami})
    for number, template in enumerate(entry.get("launchTemplateConfigurations") or []):
        account = template.get("accountId") or builder
        field_name = f"distributions[{index}].launchTemplateConfigurations[{number}]"
        ami = _ami_of(outputs, region, account) or _ami_of(outputs, region, builder)
        ref = TemplateRef(launch_template_id=template["launchTemplateId"])
        with _failing_as(region, account, field_name):
            made_version = create_launch_template_version(
                ref, {"ImageId": ami}, source_version="$Default", version_description=image_arn[-255:],
                account=account, region=region,
            )["LaunchTemplateVersion"]["VersionNumber"]
            default = template.get("setDefaultVersion", True) is not False
            if default:
                modify_launch_template(ref, default_version=str(made_version), account=account, region=region)
        done["launchTemplates"].append({"region": region, "accountId": account,
                                        "launchTemplateId": template["launchTemplateId"],
                                        "versionNumber": made_version, "imageId": ami, "defaultVersion": default})


@contextlib.contextmanager
def _failing_as(region: str, account: str, field_name: str) -> Any:
    try:
        yield
    except KilnError as error:
        raise DistributionFailed(f"distribution to region {region}, account {account} failed: {error}",
                                 location=field_name, hint=error.hint) from error


# --- clean-up ----------------------------------------------------------------------------------------


def discard(image_arn: str, build_region: str) -> list[str]:
    """Remove every AMI (with its snapshots) and export the build's distribution made, recorded or
    not yet recorded; returns the AMI ids removed."""
    from kiln.services.builds.steps import discard_ami
    from kiln.store import api as store

    records = made.made_by(image_arn)
    removed: list[str] = []
    for region in dict.fromkeys(r.region for r in records if r.kind == made.AMI):
        tagged = store.describe_images(region, filters={"tag:Ec2ImageBuilderArn": [image_arn]},
                                       include_deprecated=True, include_disabled=True)
        for info in tagged:
            if region == build_region and info.owner_id == account_of(image_arn):
                continue  # the build's output AMI: the workflow removes it (or keeps it, finished)
            with contextlib.suppress(Exception):
                discard_ami(info.id, region=region)
                removed.append(info.id)
    removed += aws_distribution.discard(records)
    for record in records:
        if record.kind == made.EXPORT and record.resource:
            Path(record.resource).unlink(missing_ok=True)
            _partial(Path(record.resource)).unlink(missing_ok=True)
    made.forget(image_arn)
    return removed

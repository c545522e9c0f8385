"""Image Builder's workflow step actions: where each may run, its inputs, outputs and timeouts.

The facts are the Image Builder user guide's (step actions, stage restrictions, default and maximum
timeouts). ``ExportImage`` is kiln's own: the S3 disk exports of a distribution configuration as
one step (Image Builder folds them into ``ApplyImageConfigurations``). Whether kiln can *run* an
action is the build engine's registry (``kiln.services.builds.actions``); a document naming an
action kiln cannot run is still valid, and fails at that step.
"""

from __future__ import annotations

from dataclasses import dataclass

BUILD, TEST, DISTRIBUTION = "BUILD", "TEST", "DISTRIBUTION"
ANY_STAGE = (BUILD, TEST, DISTRIBUTION)
MINUTE, HOUR, DAY = 60, 3600, 86400


@dataclass(frozen=True)
class ActionSpec:
    name: str
    stages: tuple[str, ...]
    default_timeout: int  # seconds
    max_timeout: int
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


_COMMAND_OUTPUTS = ("runCommandId", "status", "output")

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("LaunchInstance", ANY_STAGE, 75 * MINUTE, 720 * MINUTE, ("waitFor",),
                   ("imageIdOverride", "instanceTypesOverride", "healthCheck"), ("instanceId",)),
        ActionSpec("BootstrapInstanceForContainer", ANY_STAGE, 60 * MINUTE, 720 * MINUTE, ("instanceId",), (),
                   _COMMAND_OUTPUTS),
        ActionSpec("ExecuteComponents", (BUILD, TEST), 720 * MINUTE, DAY, ("instanceId",), (), _COMMAND_OUTPUTS),
        ActionSpec("CollectImageMetadata", ANY_STAGE, 30 * MINUTE, 720 * MINUTE, ("instanceId",), (),
                   ("osVersion", "associationId", "packageCount")),
        ActionSpec("CollectImageScanFindings", (TEST,), 120 * MINUTE, 720 * MINUTE, ("instanceId",), (),
                   _COMMAND_OUTPUTS),
        ActionSpec("SanitizeInstance", ANY_STAGE, 60 * MINUTE, 720 * MINUTE, ("instanceId",), (),
                   (*_COMMAND_OUTPUTS, "removed")),
        ActionSpec("RunSysPrep", ANY_STAGE, 60 * MINUTE, 720 * MINUTE, ("instanceId",), (), _COMMAND_OUTPUTS),
        ActionSpec("CreateImage", ANY_STAGE, 720 * MINUTE, 3 * DAY, ("instanceId",), (), ("imageId",)),
        ActionSpec("CreateImageFromIso", ANY_STAGE, 720 * MINUTE, 720 * MINUTE, ("instanceId",), (),
                   ("amiName", "snapshotId", "architecture")),
        ActionSpec("RegisterImage", ANY_STAGE, 540 * MINUTE, 720 * MINUTE, (),
                   ("architecture", "blockDeviceMapping", "bootMode", "description", "enaSupport", "imageLocation",
                    "imdsSupport", "includeSnapshotTags", "kernelId", "ramdiskId", "rootDeviceName",
                    "sriovNetSupport", "tpmSupport", "uefiData", "virtualizationType"), ("imageId",)),
        ActionSpec("RunCommand", ANY_STAGE, 720 * MINUTE, 720 * MINUTE, ("instanceId", "documentName"),
                   ("parameters", "documentVersion"), _COMMAND_OUTPUTS),
        ActionSpec("WaitForSSMAgent", ANY_STAGE, 60 * MINUTE, 180 * MINUTE, ("instanceId",), (), ("status",)),
        ActionSpec("TerminateInstance", ANY_STAGE, 30 * MINUTE, 720 * MINUTE, ("instanceId",),
                   ("waitForTermination",), ()),
        ActionSpec("WaitForAction", ANY_STAGE, 3 * DAY, 7 * DAY, (), ("snsTopicArn", "lambdaFunctionName", "payload"),
                   ("action", "reason")),
        ActionSpec("ExecuteStateMachine", ANY_STAGE, 6 * HOUR, DAY, ("stateMachineArn",), ("input",),
                   ("executionArn", "output")),
        ActionSpec("DistributeImage", (DISTRIBUTION,), 360 * MINUTE, 720 * MINUTE, (), ("distributions",),
                   ("distributedImages", "regions")),
        ActionSpec("ModifyImageAttributes", (DISTRIBUTION,), 120 * MINUTE, 180 * MINUTE, ("distributedImages",),
                   ("attributes",), ("modifiedImages", "regions")),
        ActionSpec("ApplyImageConfigurations", (DISTRIBUTION,), 360 * MINUTE, 720 * MINUTE, ("distributedImages",),
                   ("configurations",), ("configuredImages", "exports")),
        ActionSpec("DistributeContainerImage", (DISTRIBUTION,), 120 * MINUTE, 720 * MINUTE, ("instanceId",), (),
                   ("status", "succeededRegions", "failedRegions")),
        ActionSpec("ExportImage", (DISTRIBUTION,), 360 * MINUTE, 720 * MINUTE, (), (), ("exports",)),
    )
}

# ``$.imagebuilder.<name>``: the system variables a workflow document may read.
SYSTEM_VARIABLES = (
    "cloudWatchLogGroup", "cloudWatchLogStream", "collectImageMetadata", "collectImageScanFindings",
    "imageBuildNumber", "imageId", "imageName", "imageType", "imageVersionNumber", "instanceProfileName",
    "platform", "s3Logs", "securityGroups", "sourceImageARN", "subnetId", "terminateInstanceOnFailure",
    "workflowPhase", "workingDirectory", "dateTime",
)

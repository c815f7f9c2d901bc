"""What each KEDA release accepts in the fields the azure-agent chart renders,
written down by us from reading KEDA's sources (each fact says where: file and
tag of github.com/kedacore/keda). Facts only: KEDA's CRD files are not in this
repository (data fetched from upstream is not committed here), so fields the
chart never renders are not described. tests/deploy/keda_check.py applies
these facts to rendered objects.

Where a fact does not change over the releases below, it is cited once; "from"
is the first checked release that has it. Releases are (major, minor, patch).
"""

# The releases the chart supports and the tests check. "2.21" is the 2.21
# development line: its CRDs at kedacore/keda main 8b4f083 (2026-08-20) have
# the same fields, enums, minimums and rules as v2.20.2 for everything below,
# and its scaler gained scaleOnInFlight (kedacore/keda#7905). The v2.21.0 tag
# itself was not available to read.
RELEASES = {
    "2.19.0": (2, 19, 0),
    "2.20.0": (2, 20, 0),
    "2.20.1": (2, 20, 1),
    "2.20.2": (2, 20, 2),
    "2.21": (2, 21, 0),
}

API_VERSION = "keda.sh/v1alpha1"  # the storage and only served version of all three CRDs, v2.19.0 to v2.20.2

# Object path -> the field names KEDA's CRD defines there (a strict API server
# refuses any other; a lax one drops it silently). Only the paths the chart
# writes into; `[]` is an array's items. A ScaledJob's jobTargetRef is a
# batch/v1 JobSpec: the tests check it with kubernetes-validate instead.
# Same sets in v2.19.0, v2.20.0, v2.20.1, v2.20.2 and main 8b4f083 except where
# FIELDS_ADDED says.
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
# The triggers of ScaledJob and ScaledObject share one type (ScaleTriggers).
TRIGGERS = {
    ".spec.triggers[]": {"authenticationRef", "metadata", "metricType", "name", "type", "useCachedMetrics"},
    ".spec.triggers[].authenticationRef": {"kind", "name"},
}
FIELDS = {
    # config/crd/bases/keda.sh_scaledjobs.yaml @ v2.19.0 .. v2.20.2
    "ScaledJob": {
        "": TOP_LEVEL,
        ".spec": {
            "envSourceContainerName",
            "failedJobsHistoryLimit",
            "jobTargetRef",
            "maxReplicaCount",
            "minReplicaCount",
            "pollingInterval",
            "rollout",
            "rolloutStrategy",
            "scalingStrategy",
            "successfulJobsHistoryLimit",
            "triggers",
        },
        ".spec.rollout": {"propagationPolicy", "strategy"},
        ".spec.scalingStrategy": {
            "customScalingQueueLengthDeduction",
            "customScalingRunningJobPercentage",
            "multipleScalersCalculation",
            "pendingPodConditions",
            "strategy",
        },
        **TRIGGERS,
    },
    # config/crd/bases/keda.sh_scaledobjects.yaml @ v2.19.0 .. v2.20.2
    "ScaledObject": {
        "": TOP_LEVEL,
        ".spec": {
            "advanced",
            "cooldownPeriod",
            "fallback",
            "idleReplicaCount",
            "initialCooldownPeriod",
            "maxReplicaCount",
            "minReplicaCount",
            "pollingInterval",
            "scaleTargetRef",
            "triggers",
        },
        ".spec.scaleTargetRef": {"apiVersion", "envSourceContainerName", "kind", "name"},
        **TRIGGERS,
    },
    # config/crd/bases/keda.sh_triggerauthentications.yaml @ v2.19.0 .. v2.20.2
    "TriggerAuthentication": {
        "": TOP_LEVEL,
        ".spec": {
            "awsSecretManager",
            "azureKeyVault",
            "boundServiceAccountToken",
            "configMapTargetRef",
            "env",
            "filePath",
            "gcpSecretManager",
            "hashiCorpVault",
            "podIdentity",
            "secretTargetRef",
        },
        ".spec.podIdentity": {
            "identityAuthorityHost",
            "identityId",
            "identityOwner",
            "identityTenantId",
            "provider",
            "roleArn",
        },
        ".spec.secretTargetRef[]": {"key", "name", "parameter"},
    },
}

# (kind, path) -> {field: first release that has it}
FIELDS_ADDED = {
    # keda.sh_triggerauthentications.yaml @ v2.20.0 (absent @ v2.19.0)
    ("TriggerAuthentication", ".spec"): {"oauth2": (2, 20, 0)},
    ("TriggerAuthentication", ".spec.podIdentity"): {"externalID": (2, 20, 0)},
}

# (kind, field path, [(from release, allowed values)]): the last entry whose
# release is <= the checked one applies; before the first entry any string passes.
ENUMS = [
    # keda.sh_scaledjobs.yaml: no enum @ v2.19.0; custom|accurate|eager @ v2.20.0 and
    # v2.20.1 (validation markers of kedacore/keda#7533); `default` added back @ v2.20.2
    # (kedacore/keda#7855); unchanged at main 8b4f083.
    (
        "ScaledJob",
        ".spec.scalingStrategy.strategy",
        [((2, 20, 0), {"custom", "accurate", "eager"}), ((2, 20, 2), {"default", "custom", "accurate", "eager"})],
    ),
    # keda.sh_scaledjobs.yaml: no enum @ v2.19.0; gradual|immediate from v2.20.0 (#7533).
    ("ScaledJob", ".spec.rollout.strategy", [((2, 20, 0), {"gradual", "immediate"})]),
    ("ScaledJob", ".spec.rolloutStrategy", [((2, 20, 0), {"gradual", "immediate"})]),
    # keda.sh_triggerauthentications.yaml: the same five providers @ v2.19.0 .. v2.20.2.
    (
        "TriggerAuthentication",
        ".spec.podIdentity.provider",
        [((2, 19, 0), {"azure-workload", "gcp", "aws", "aws-eks", "none"})],
    ),
]

# (kind, field path, from release, minimum). All are int32 in every release
# (format: int32); the minimums come with #7533 @ v2.20.0 (none @ v2.19.0).
INT32 = (-(2**31), 2**31 - 1)
MINIMUMS = [
    # keda.sh_scaledjobs.yaml @ v2.20.0 .. v2.20.2
    ("ScaledJob", ".spec.pollingInterval", (2, 20, 0), 1),
    ("ScaledJob", ".spec.minReplicaCount", (2, 20, 0), 0),
    ("ScaledJob", ".spec.maxReplicaCount", (2, 20, 0), 1),
    ("ScaledJob", ".spec.successfulJobsHistoryLimit", (2, 20, 0), 0),
    ("ScaledJob", ".spec.failedJobsHistoryLimit", (2, 20, 0), 0),
    # keda.sh_scaledobjects.yaml @ v2.20.0 .. v2.20.2
    ("ScaledObject", ".spec.pollingInterval", (2, 20, 0), 1),
    ("ScaledObject", ".spec.cooldownPeriod", (2, 20, 0), 0),
    ("ScaledObject", ".spec.minReplicaCount", (2, 20, 0), 0),
    ("ScaledObject", ".spec.maxReplicaCount", (2, 20, 0), 1),
]

# keda.sh_scaledobjects.yaml, a CEL rule (x-kubernetes-validations) on .spec
# from v2.20.0 (none @ v2.19.0): a set minReplicaCount must not exceed
# maxReplicaCount, which counts as 100 when unset. ScaledJob has no such rule.
REPLICA_BOUNDS_RULE = {"kind": "ScaledObject", "from": (2, 20, 0), "max_when_unset": 100}

# The azure-pipelines scaler's trigger metadata keys: pkg/scalers/azure_pipelines_scaler.go,
# the `keda:"name=..."` tags of azurePipelinesMetadata @ v2.19.0 and v2.20.2 (and main
# 8b4f083). A key with order=resolvedEnv may also name a container env variable in
# `<key>FromEnv` (pkg/scalers/scalersconfig/typed_config.go @ v2.20.2): organizationURL
# and personalAccessToken; the latter never comes from the metadata itself.
# KEDA ignores keys its scaler does not read: a chart setting there would have no effect.
SCALER_KEYS = {
    "organizationURL": (2, 19, 0),
    "organizationURLFromEnv": (2, 19, 0),
    "personalAccessTokenFromEnv": (2, 19, 0),
    "parent": (2, 19, 0),
    "demands": (2, 19, 0),
    "poolName": (2, 19, 0),
    "poolID": (2, 19, 0),
    "targetPipelinesQueueLength": (2, 19, 0),
    "activationTargetPipelinesQueueLength": (2, 19, 0),
    "jobsToFetch": (2, 19, 0),
    # absent @ v2.17.0, present @ v2.18.0
    "fetchUnfinishedJobsOnly": (2, 18, 0),
    "requireAllDemands": (2, 19, 0),
    "requireAllDemandsAndIgnoreOthers": (2, 19, 0),
    "caseInsensitiveDemandsProcessing": (2, 19, 0),
    # kedacore/keda#7905 (default "true"; "false" counts only jobs no agent has
    # taken), documented for 2.21 (kedacore/keda-docs#1881); absent at main 8b4f083.
    "scaleOnInFlight": (2, 21, 0),
}

# Same file, parseAzurePipelinesMetadata @ v2.19.0 .. v2.20.2: the scaler
# refuses to start (and the trigger never scales) when a non-empty jobsToFetch
# comes with a non-empty fetchUnfinishedJobsOnly or parent.
SCALER_EXCLUSIVE = [("jobsToFetch", "fetchUnfinishedJobsOnly"), ("jobsToFetch", "parent")]

# Go's strconv.ParseBool, which the scaler's boolean keys go through.
GO_BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
SCALER_BOOLS = {
    "fetchUnfinishedJobsOnly",
    "requireAllDemands",
    "requireAllDemandsAndIgnoreOthers",
    "caseInsensitiveDemandsProcessing",
    "scaleOnInFlight",
}

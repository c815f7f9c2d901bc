//! The kaniko pod for a build: one container running the executor, never
//! restarted, with a deadline, the registry config and the build's identity.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, Pod, PodSpec, ResourceRequirements, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use super::args::{Build, ContextSource, executor_args};

/// The name of the executor's container.
pub const CONTAINER: &str = "kaniko";

/// Where kaniko looks for registry credentials.
const DOCKER_CONFIG_DIR: &str = "/kaniko/.docker";

/// Everything about the pod that is not the build itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodOptions {
    pub namespace: String,
    /// Prefix of the generated name, e.g. `kaniko-1234-`.
    pub generate_name: String,
    pub service_account: Option<String>,
    pub image: String,
    /// Labels that name the pipeline, build, job and attempt, plus the user's.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub active_deadline_seconds: i64,
    /// ConfigMap with a Docker `config.json`, mounted at `/kaniko/.docker`.
    pub registry_config_map: Option<String>,
    /// AWS environment for an `s3://` context: region and endpoint.
    pub aws_region: Option<String>,
    pub s3_endpoint: Option<String>,
}

/// The pod that runs `build`.
pub fn pod_spec(build: &Build, options: &PodOptions) -> Pod {
    let stdin = build.context == ContextSource::Stdin;
    let mut env = Vec::new();
    if matches!(build.context, ContextSource::S3 { .. }) {
        let var = |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), value_from: None };
        if let Some(region) = &options.aws_region {
            env.push(var("AWS_REGION", region));
        }
        if let Some(endpoint) = &options.s3_endpoint {
            env.push(var("S3_ENDPOINT", endpoint));
            // kaniko applies path style only when S3_ENDPOINT is set.
            env.push(var("S3_FORCE_PATH_STYLE", "true"));
        }
    }
    let (volumes, mounts) = match &options.registry_config_map {
        Some(name) => (
            vec![Volume {
                name: "docker-config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.clone(),
                    // A missing map must not leave the pod stuck in ContainerCreating.
                    optional: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            vec![VolumeMount {
                name: "docker-config".into(),
                mount_path: DOCKER_CONFIG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            }],
        ),
        None => (vec![], vec![]),
    };
    let quantity = |q: &Option<String>| q.clone().map(Quantity);
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(cpu) = quantity(&options.cpu_request) {
        requests.insert("cpu".to_string(), cpu);
    }
    if let Some(memory) = quantity(&options.memory_request) {
        requests.insert("memory".to_string(), memory);
    }
    if let Some(memory) = quantity(&options.memory_limit) {
        limits.insert("memory".to_string(), memory);
    }
    let container = Container {
        name: CONTAINER.into(),
        image: Some(options.image.clone()),
        args: Some(executor_args(build)),
        env: (!env.is_empty()).then_some(env),
        resources: (!requests.is_empty() || !limits.is_empty()).then(|| ResourceRequirements {
            requests: (!requests.is_empty()).then_some(requests),
            limits: (!limits.is_empty()).then_some(limits),
            ..Default::default()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        stdin: stdin.then_some(true),
        stdin_once: stdin.then_some(true),
        // On failure an empty digest file gives way to the log's tail.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(options.generate_name.clone()),
            namespace: Some(options.namespace.clone()),
            labels: Some(options.labels.clone()),
            annotations: (!options.annotations.is_empty()).then(|| options.annotations.clone()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".into()),
            active_deadline_seconds: Some(options.active_deadline_seconds),
            service_account_name: options.service_account.clone(),
            // IRSA and Pod Identity inject their own token; kaniko needs no API access.
            automount_service_account_token: Some(false),
            node_selector: (!options.node_selector.is_empty()).then(|| options.node_selector.clone()),
            tolerations: (!options.tolerations.is_empty()).then(|| options.tolerations.clone()),
            volumes: (!volumes.is_empty()).then_some(volumes),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kaniko::args::tests::sample;

    fn options() -> PodOptions {
        PodOptions {
            namespace: "azure-agent".into(),
            generate_name: "kaniko-42-".into(),
            service_account: Some("azure-agent-kaniko".into()),
            image: "ghcr.io/osscontainertools/kaniko:v1.28.3".into(),
            labels: BTreeMap::from([("azp-kube/build-id".to_string(), "42".to_string())]),
            memory_limit: Some("4Gi".into()),
            active_deadline_seconds: 3600,
            registry_config_map: Some("docker-config".into()),
            aws_region: Some("eu-west-1".into()),
            s3_endpoint: Some("http://127.0.0.1:5000".into()),
            ..Default::default()
        }
    }

    #[test]
    fn golden_pod() {
        let pod = serde_json::to_value(pod_spec(&sample(), &options())).unwrap();
        let expected = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "kaniko-42-",
                "namespace": "azure-agent",
                "labels": {"azp-kube/build-id": "42"}
            },
            "spec": {
                "activeDeadlineSeconds": 3600,
                "automountServiceAccountToken": false,
                "restartPolicy": "Never",
                "serviceAccountName": "azure-agent-kaniko",
                "containers": [{
                    "name": "kaniko",
                    "image": "ghcr.io/osscontainertools/kaniko:v1.28.3",
                    "args": crate::kaniko::args::executor_args(&sample()),
                    "env": [
                        {"name": "AWS_REGION", "value": "eu-west-1"},
                        {"name": "S3_ENDPOINT", "value": "http://127.0.0.1:5000"},
                        {"name": "S3_FORCE_PATH_STYLE", "value": "true"}
                    ],
                    "resources": {"limits": {"memory": "4Gi"}},
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "volumeMounts": [{"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": true}]
                }],
                "volumes": [{"name": "docker-config", "configMap": {"name": "docker-config", "optional": true}}]
            }
        });
        assert_eq!(pod, expected);
    }

    #[test]
    fn stdin_pods_keep_stdin_open_once_and_get_no_aws_env() {
        let build = Build { context: ContextSource::Stdin, ..sample() };
        let pod = pod_spec(&build, &PodOptions { registry_config_map: None, ..options() });
        let container = &pod.spec.as_ref().unwrap().containers[0];
        assert_eq!((container.stdin, container.stdin_once), (Some(true), Some(true)));
        assert!(container.env.is_none());
        assert!(pod.spec.unwrap().volumes.is_none());
    }
}

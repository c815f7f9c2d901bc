//! The kaniko pod for a build: one container running the executor, never
//! restarted, with a deadline, the registry config and the build's identity;
//! and the build's Secret, which holds what the pod spec must not show.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, Pod, PodSpec, ResourceRequirements, Secret,
    SecretKeySelector, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use super::args::{Build, ContextSource, executor_args, secret_env};

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

/// The build's Secret: every value of [`secret_env`], under its variable's
/// name; `None` when the build has no such value.
pub fn values_secret(build: &Build, options: &PodOptions) -> Option<Secret> {
    let env = secret_env(build);
    if env.is_empty() {
        return None;
    }
    let data = env.into_iter().map(|(name, value)| (name, ByteString(value.expose().as_bytes().to_vec()))).collect();
    Some(Secret {
        metadata: ObjectMeta {
            generate_name: Some(options.generate_name.clone()),
            namespace: Some(options.namespace.clone()),
            labels: Some(options.labels.clone()),
            ..Default::default()
        },
        data: Some(data),
        immutable: Some(true),
        type_: Some("Opaque".into()),
        ..Default::default()
    })
}

/// The pod that runs `build`; `values_secret` names the Secret made from
/// [`values_secret`], if the build has one.
pub fn pod_spec(build: &Build, options: &PodOptions, values_secret: Option<&str>) -> Pod {
    let stdin = build.context == ContextSource::Stdin;
    let mut env = Vec::new();
    if let Some(secret) = values_secret {
        env.extend(secret_env(build).into_keys().map(|name| EnvVar {
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.into(),
                    key: name.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            name,
            value: None,
        }));
    }
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
    use base64::Engine as _;

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
        let pod = serde_json::to_value(pod_spec(&sample(), &options(), Some("kaniko-42-x7k2p"))).unwrap();
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
                        {"name": "AZP_KUBE_BUILD_ARG_NPM_TOKEN", "valueFrom": {"secretKeyRef": {
                            "name": "kaniko-42-x7k2p", "key": "AZP_KUBE_BUILD_ARG_NPM_TOKEN", "optional": false
                        }}},
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
    fn the_values_secret_holds_what_the_pod_spec_must_not_show() {
        let url = "https://s3.example/c.tar.gz?X-Amz-Signature=f00d";
        let build = Build { context: ContextSource::Url(crate::azp::Secret::new(url)), ..sample() };
        let secret = serde_json::to_value(values_secret(&build, &options()).unwrap()).unwrap();
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(
            secret,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "generateName": "kaniko-42-",
                    "namespace": "azure-agent",
                    "labels": {"azp-kube/build-id": "42"}
                },
                "immutable": true,
                "type": "Opaque",
                "data": {"AZP_KUBE_BUILD_ARG_NPM_TOKEN": b64("npm-s3cr3t"), "AZP_KUBE_CONTEXT_URL": b64(url)}
            })
        );
        let pod = serde_json::to_string(&pod_spec(&build, &options(), Some("kaniko-42-x7k2p"))).unwrap();
        assert!(!pod.contains("f00d") && !pod.contains("npm-s3cr3t"), "{pod}");
        let plain = Build { build_args: vec![], ..sample() };
        assert!(values_secret(&plain, &options()).is_none());
    }

    #[test]
    fn stdin_pods_keep_stdin_open_once_and_get_no_aws_env() {
        let build = Build { context: ContextSource::Stdin, build_args: vec![], ..sample() };
        let pod = pod_spec(&build, &PodOptions { registry_config_map: None, ..options() }, None);
        let container = &pod.spec.as_ref().unwrap().containers[0];
        assert_eq!((container.stdin, container.stdin_once), (Some(true), Some(true)));
        assert!(container.env.is_none());
        assert!(pod.spec.unwrap().volumes.is_none());
    }
}

//! Bad input: each case ends Failed with one error that names the input,
//! and nothing is sent over the network (every endpoint the task could use
//! points at a tripwire that counts connections).

use azp_harness::{StepResult, TaskRun};

use crate::support::{Tripwire, task};

/// A repository with a Dockerfile, a chart, values files and a symlink out.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::create_dir_all(root.join("chart/templates")).unwrap();
    std::fs::write(root.join("chart/Chart.yaml"), "apiVersion: v2\nname: web\nversion: 0.1.0\n").unwrap();
    std::fs::write(root.join("values.yaml"), "replicas: 2\n").unwrap();
    std::fs::write(root.join("broken.yaml"), "a: [1, 2\nb: : :\n").unwrap();
    std::os::unix::fs::symlink("/tmp", root.join("outside")).unwrap();
    dir
}

/// Runs a task with valid base inputs, overridden by `inputs`, and checks
/// the outcome: Failed, one error naming `input`, no connection made.
fn refused(folder: &str, base: &[(&str, &str)], inputs: &[(&str, &str)], input: &str) -> String {
    let tripwire = Tripwire::new();
    let repo = repository();
    let task = task(folder);
    let kubeconfig = tripwire.kubeconfig(repo.path());
    let mut run = TaskRun::new(task.path())
        .sources(repo.path())
        .env("AWS_ENDPOINT_URL", &tripwire.url())
        .env("AWS_ENDPOINT_URL_STS", &tripwire.url())
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "eu-west-1")
        .input("kubeconfig", &kubeconfig.display().to_string());
    for (name, value) in base.iter().chain(inputs) {
        run = run.input(name, &value.replace("{repo}", &repo.path().display().to_string()));
    }
    let outcome = run.run();
    assert_eq!(outcome.result, StepResult::Failed, "{inputs:?}: {}", outcome.log_text());
    let errors = outcome.errors();
    assert_eq!(errors.len(), 1, "{inputs:?}: {errors:?}");
    let message = errors[0].message.clone();
    assert!(message.contains(input), "{inputs:?}: the error names {input}: {message}");
    assert_eq!(tripwire.connections(), 0, "{inputs:?}: nothing may touch the network ({message})");
    message
}

const KANIKO: &[(&str, &str)] = &[
    ("connectionType", "Kubeconfig file"),
    ("namespace", "builds"),
    ("bucket", "contexts"),
    ("destinations", "registry.local/app:1"),
];

pub(crate) fn kaniko(inputs: &[(&str, &str)], input: &str) -> String {
    refused("KanikoBuildV1", KANIKO, inputs, input)
}

const HELM: &[(&str, &str)] = &[
    ("connectionType", "Amazon EKS"),
    ("clusterName", "dev"),
    ("regionName", "eu-west-1"),
    ("assumeRoleArn", "arn:aws:iam::222222222222:role/deployer"),
    ("releaseName", "web"),
    ("namespace", "web"),
    ("chartType", "FilePath"),
    ("chartPath", "chart"),
];

fn helm(inputs: &[(&str, &str)], input: &str) -> String {
    refused("MulticlusterHelmV1", HELM, inputs, input)
}

macro_rules! cases {
    ($runner:ident: $($name:ident: [$(($k:expr, $v:expr)),* $(,)?] => $input:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $runner(&[$(($k, $v)),*], $input);
            }
        )*
    };
}

cases! { kaniko:
    kaniko_destination_with_upper_case: [("destinations", "registry.local/App:1")] => "destinations";
    kaniko_destination_with_a_space: [("destinations", "registry.local/my app:1")] => "destinations";
    kaniko_destination_without_repository: [("destinations", "registry.local/")] => "destinations";
    kaniko_destination_digest_of_wrong_length: [("destinations", "registry.local/app@sha256:abc123")] => "destinations";
    kaniko_destination_that_is_a_digest: [("destinations", "registry.local/app@sha256:4f1b1d7a0b1e7c6b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8")] => "destinations";
    kaniko_destination_with_bad_tag: [("destinations", "registry.local/app:-latest")] => "destinations";
    kaniko_dockerfile_outside_the_context: [("buildContext", "app"), ("dockerfile", "../Dockerfile")] => "dockerfile";
    kaniko_dockerfile_missing: [("dockerfile", "nope/Dockerfile")] => "dockerfile";
    kaniko_context_that_is_a_file: [("buildContext", "Dockerfile")] => "buildContext";
    kaniko_context_symlink_out_of_the_repository: [("buildContext", "outside")] => "buildContext";
    kaniko_context_dot_dot_out_of_the_repository: [("buildContext", "../..")] => "buildContext";
    kaniko_context_missing: [("buildContext", "no-such-dir")] => "buildContext";
    kaniko_build_arg_equals_only: [("buildArgs", "=")] => "buildArgs";
    kaniko_build_arg_without_name: [("buildArgs", "=value")] => "buildArgs";
    kaniko_build_arg_bad_name: [("buildArgs", "1VERSION=2")] => "buildArgs";
    kaniko_label_of_5000_characters: [("labels", &*Box::leak(format!("k={}", "v".repeat(5000)).into_boxed_str()))] => "labels";
    kaniko_label_without_value: [("labels", "novalue")] => "labels";
    kaniko_negative_timeout: [("timeoutMinutes", "-5")] => "timeoutMinutes";
    kaniko_absurd_timeout: [("timeoutMinutes", "100000")] => "timeoutMinutes";
    kaniko_timeout_not_a_number: [("timeoutMinutes", "soon")] => "timeoutMinutes";
    kaniko_memory_limit_in_gb: [("memoryLimit", "1GB")] => "memoryLimit";
    kaniko_memory_limit_lots: [("memoryLimit", "lots")] => "memoryLimit";
    kaniko_memory_request_above_limit: [("memoryRequest", "8Gi"), ("memoryLimit", "1Gi")] => "memoryRequest";
    kaniko_cpu_request_zero: [("cpuRequest", "0")] => "cpuRequest";
    kaniko_toleration_with_unknown_effect: [("tolerations", "dedicated=build:Sometimes")] => "tolerations";
    kaniko_toleration_without_effect: [("tolerations", "dedicated")] => "tolerations";
    kaniko_node_selector_bad_key: [("nodeSelector", "bad key=x")] => "nodeSelector";
    kaniko_pod_label_bad_value: [("podLabels", "team=Not A Label")] => "podLabels";
    kaniko_namespace_not_dns1123: [("namespace", "Azure_Agent")] => "namespace";
    kaniko_namespace_empty_on_an_agent_without_build_namespace: [("namespace", "")] => "namespace";
    kaniko_service_account_not_dns1123: [("serviceAccount", "Kaniko_SA")] => "serviceAccount";
    kaniko_bucket_name_invalid: [("bucket", "My_Bucket")] => "bucket";
    kaniko_region_invalid: [("region", "eu-west")] => "region";
    kaniko_s3_endpoint_not_http: [("s3Endpoint", "ftp://store")] => "s3Endpoint";
    kaniko_cache_ttl_invalid: [("cacheTTL", "2 weeks")] => "cacheTTL";
    kaniko_cache_repo_with_tag: [("cacheRepo", "registry.local/app/cache:1")] => "cacheRepo";
    kaniko_image_with_upper_case: [("kanikoImage", "ghcr.io/x/Kaniko:1")] => "kanikoImage";
    kaniko_extra_arg_overriding_destination: [("extraArgs", "--destination=evil.example/x:1")] => "extraArgs";
    kaniko_extra_arg_not_a_flag: [("extraArgs", "snapshot-mode=redo")] => "extraArgs";
    kaniko_registry_config_map_invalid: [("registryConfigMap", "Docker_Config")] => "registryConfigMap";
    kaniko_target_invalid: [("target", "bad stage!")] => "target";
    kaniko_absolute_key_prefix: [("keyPrefix", "/contexts/")] => "keyPrefix";
    kaniko_transport_unknown: [("contextTransport", "FTP")] => "contextTransport";
    kaniko_kubeconfig_missing: [("kubeconfig", "{repo}/no-such-kubeconfig")] => "kubeconfig";
    // extraArgs as cobra/pflag read them: every spelling of a flag the task owns.
    kaniko_extra_arg_bundled_context: [("extraArgs", "-cs3://evil/ctx.tar.gz")] => "extraArgs";
    kaniko_extra_arg_bundled_destination: [("extraArgs", "-devil.example/x:1")] => "extraArgs";
    kaniko_extra_arg_bundled_dockerfile: [("extraArgs", "-fDockerfile.evil")] => "extraArgs";
    kaniko_extra_arg_short_destination_then_value: [("extraArgs", "-d\nevil.example/x:1")] => "extraArgs";
    kaniko_extra_arg_bucket: [("extraArgs", "--bucket=s3://evil/ctx.tar.gz")] => "extraArgs";
    kaniko_extra_arg_bucket_shorthand: [("extraArgs", "-bevil")] => "extraArgs";
    kaniko_extra_arg_digest_to_termination_log: [("extraArgs", "--image-name-with-digest-file=/dev/termination-log")] => "extraArgs";
    kaniko_extra_arg_context_sub_path: [("extraArgs", "--context-sub-path=..")] => "extraArgs";
    kaniko_extra_arg_dry_run: [("extraArgs", "--dryrun")] => "extraArgs";
    kaniko_extra_arg_help: [("extraArgs", "-h")] => "extraArgs";
    kaniko_extra_arg_unknown_flag: [("extraArgs", "--image-formats=oci")] => "extraArgs";
    kaniko_extra_arg_subcommand: [("extraArgs", "--image-format=oci\nversion")] => "extraArgs";
    kaniko_extra_arg_end_of_flags: [("extraArgs", "--\n--destination=evil.example/x:1")] => "extraArgs";
    // s3:// is a URL to kaniko: '?', '#' and '%' would change the key it reads.
    kaniko_key_prefix_with_question_mark: [("keyPrefix", "team?a/")] => "keyPrefix";
    kaniko_key_prefix_with_hash: [("keyPrefix", "team#a/")] => "keyPrefix";
    kaniko_key_prefix_with_percent: [("keyPrefix", "team%41/")] => "keyPrefix";
    // What kaniko (go-containerregistry, Go's time.ParseDuration) rejects in the pod.
    kaniko_destination_upper_case_registry_without_dot: [("destinations", "MyRegistry/app:1")] => "destinations";
    kaniko_destination_one_character_repository: [("destinations", "registry.local/a:1")] => "destinations";
    kaniko_cache_repo_one_character: [("cacheRepo", "registry.local/c")] => "cacheRepo";
    kaniko_cache_ttl_dot_unit: [("cacheTTL", ".h")] => "cacheTTL";
    kaniko_cache_ttl_two_dots: [("cacheTTL", "1..5h")] => "cacheTTL";
    kaniko_cache_ttl_two_fractions: [("cacheTTL", "1.2.3h")] => "cacheTTL";
}

cases! { helm:
    helm_role_arn_with_short_account: [("assumeRoleArn", "arn:aws:iam::12345:role/deployer")] => "assumeRoleArn";
    helm_role_arn_malformed: [("assumeRoleArn", "deployer")] => "assumeRoleArn";
    helm_role_arn_in_another_partition: [("assumeRoleArn", "arn:aws-cn:iam::222222222222:role/deployer")] => "assumeRoleArn";
    helm_role_arn_not_a_role: [("assumeRoleArn", "arn:aws:iam::222222222222:user/deployer")] => "assumeRoleArn";
    helm_session_of_ten_seconds: [("sessionDurationSeconds", "10")] => "sessionDurationSeconds";
    helm_session_of_two_days: [("sessionDurationSeconds", "172800")] => "sessionDurationSeconds";
    helm_region_invalid: [("regionName", "mars")] => "regionName";
    helm_release_not_dns1123: [("releaseName", "Web_App")] => "releaseName";
    helm_release_too_long: [("releaseName", "a-release-name-that-is-far-too-long-for-helm-to-accept-it")] => "releaseName";
    helm_namespace_not_dns1123: [("namespace", "Web App")] => "namespace";
    helm_override_without_equals: [("overrideValues", "replicas")] => "overrideValues";
    helm_override_starting_with_dash: [("overrideValues", "--set=replicas=3")] => "overrideValues";
    helm_override_string_without_key: [("overrideValuesString", "=3")] => "overrideValuesString";
    helm_values_file_missing: [("valueFile", "missing.yaml")] => "valueFile";
    helm_values_file_not_yaml: [("valueFile", "broken.yaml")] => "valueFile";
    helm_chart_path_missing: [("chartPath", "no-chart")] => "chartPath";
    helm_oci_chart_of_wrong_form: [("chartType", "OCI"), ("chartName", "https://charts.example.com/web")] => "chartName";
    helm_oci_chart_by_name_without_a_path: [("chartType", "Name"), ("chartName", "oci://registry.example.com")] => "chartName";
    helm_repository_chart_given_as_a_url: [("chartType", "Name"), ("chartName", "https://charts.example.com/web")] => "chartName";
    helm_ecr_host_with_an_11_digit_account: [("chartType", "Name"), ("chartName", "oci://12345678901.dkr.ecr.eu-west-1.amazonaws.com/charts/web")] => "chartName";
    helm_ecr_registry_role_not_an_arn: [("chartType", "Name"), ("chartName", "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/charts/web"), ("registryRoleArn", "charts-reader")] => "registryRoleArn";
    helm_ecr_registry_role_for_a_chart_not_in_ecr: [("chartType", "OCI"), ("chartName", "oci://registry.example.com/charts/web"), ("registryRoleArn", "arn:aws:iam::999999999999:role/charts-reader")] => "registryRoleArn";
    helm_arguments_trying_kubeconfig: [("arguments", "--kubeconfig /tmp/other")] => "arguments";
    helm_arguments_trying_kube_context: [("arguments", "--kube-context=prod")] => "arguments";
    helm_timeout_not_a_duration: [("timeout", "ten minutes")] => "timeout";
    helm_timeout_with_two_dots: [("timeout", "1..5m")] => "timeout";
    helm_cluster_name_invalid: [("clusterName", "dev cluster")] => "clusterName";
}

#[test]
fn a_label_case_message_is_readable() {
    // The longest inputs do not flood the message.
    let message = kaniko(&[("labels", &format!("k={}", "v".repeat(5000)))], "labels");
    assert!(message.len() < 400, "{} characters", message.len());
}

#[test]
fn a_values_file_is_checked_relative_to_the_repository() {
    let message = helm(&[("valueFile", "missing.yaml")], "valueFile");
    assert!(message.contains("missing.yaml"), "{message}");
}

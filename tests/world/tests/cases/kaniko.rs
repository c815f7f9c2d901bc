//! The kaniko runtime: real builds with buildah from S3, presigned-URL (http) and
//! attach (stdin) contexts, pushed to the world's registry; the termination message
//! carries the digest the registry serves; broken Dockerfiles and unknown flags fail the
//! pod the way kaniko does.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams, PostParams};
use serde_json::{Value, json};

use crate::support::{client, world};

pub const KANIKO: &str = "ghcr.io/osscontainertools/kaniko:v1.28.3";

/// A multi-stage Dockerfile using the local busybox, COPY, RUN, ARG and a target stage
/// (the stage after the target would fail if it were built).
pub fn dockerfile(registry: &str) -> String {
    format!(
        "ARG BASE={registry}/busybox\nFROM $BASE AS base\nARG GREETING=hello\nCOPY app.txt /app.txt\n\
         RUN echo \"greeting=$GREETING\" > /greeting && cat /app.txt\n\
         FROM base AS final\nRUN cat /greeting\n\
         FROM scratch AS broken\nCOPY missing-file /nowhere\n"
    )
}

/// A gzip'd tar of `files`, written as two concatenated gzip members (as pigz-like
/// packers and the task's packer may do).
pub fn context(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).expect("write");
    }
    let tar = std::process::Command::new("tar").arg("-cf").arg("-").arg("-C").arg(dir.path()).arg(".").output();
    let tar = tar.expect("tar").stdout;
    let (a, b) = tar.split_at(tar.len() / 2);
    let gzip = |part: &[u8]| {
        let mut child = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(part).expect("write");
        child.wait_with_output().expect("gzip").stdout
    };
    [gzip(a), gzip(b)].concat()
}

fn s3() -> aws_sdk_s3::Client {
    s3_at(&world().aws_endpoint().expect("moto"))
}

/// An S3 client of moto at `endpoint` (plain, or behind the world's TLS front).
fn s3_at(endpoint: &str) -> aws_sdk_s3::Client {
    let w = world();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(w.region()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Uploads a context; returns (bucket, key).
async fn upload(name: &str, bytes: Vec<u8>) -> (String, String) {
    let bucket = format!("ctx-{name}-{}", std::process::id());
    let s3 = s3();
    s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    s3.put_object().bucket(&bucket).key("context.tar.gz").body(bytes.into()).send().await.expect("put");
    (bucket, "context.tar.gz".into())
}

pub fn kaniko_pod(name: &str, args: &[String], env: Value, stdin: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "serviceAccountName": "builder", "containers": [{
            "name": "kaniko", "image": KANIKO, "args": args, "env": env,
            "stdin": stdin, "stdinOnce": stdin,
        }]},
    }))
    .expect("pod")
}

/// Waits until the pod has ended; returns it as JSON.
pub async fn finished(pods: &Api<Pod>, name: &str) -> Value {
    let start = Instant::now();
    loop {
        let pod = serde_json::to_value(pods.get(name).await.expect("get")).expect("json");
        if pod["status"]["phase"] == "Succeeded" || pod["status"]["phase"] == "Failed" {
            return pod;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "pod {name} did not finish: {pod}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the pod runs (attach needs a started container).
pub async fn running(pods: &Api<Pod>, name: &str) {
    let running =
        |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Running");
    let wait = kube::runtime::wait::await_condition(pods.clone(), name, running);
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("running in time").expect("watch");
}

pub fn terminated(pod: &Value) -> &Value {
    &pod["status"]["containerStatuses"][0]["state"]["terminated"]
}

/// A namespace with a service account whose IRSA role the runtime assumes.
pub async fn namespace(prefix: &str) -> (String, Api<Pod>) {
    let w = world();
    let ns = w.unique_namespace(prefix).expect("namespace");
    let client = client(w.kubeconfig()).await;
    let sa: k8s_openapi::api::core::v1::ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "builder",
            "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/kaniko-builder"}}
    }))
    .expect("sa");
    Api::namespaced(client.clone(), &ns).create(&PostParams::default(), &sa).await.expect("sa");
    (ns.clone(), Api::namespaced(client, &ns))
}

async fn log(pods: &Api<Pod>, name: &str) -> String {
    pods.logs(name, &LogParams::default()).await.expect("log")
}

fn base_args(context: &str, repo: &str) -> Vec<String> {
    let registry = world().registry();
    [
        format!("--context={context}"),
        "--dockerfile=Dockerfile".into(),
        format!("--destination={registry}/{repo}:1"),
        "--destination".into(),
        format!("{registry}/{repo}:latest"),
        "--build-arg=GREETING=bonjour".into(),
        "--target".into(),
        "final".into(),
        "--label=org.example=world".into(),
        "--digest-file=/dev/termination-log".into(),
        "--cache=true".into(),
        format!("--cache-repo={registry}/{repo}/cache"),
        "--cache-ttl=6h".into(),
        "--snapshot-mode=redo".into(),
        "--verbosity=info".into(),
        "--log-format=text".into(),
        "--insecure".into(),
        "--skip-tls-verify".into(),
    ]
    .into_iter()
    .collect()
}

/// Asserts a successful build whose message is the digest the registry serves for both tags.
pub async fn assert_built(pods: &Api<Pod>, name: &str, repo: &str) {
    let pod = finished(pods, name).await;
    let text = log(pods, name).await;
    let state = terminated(&pod);
    assert_eq!(state["exitCode"], 0, "{text}");
    assert!(text.contains("greeting=bonjour") && text.contains("app-contents"), "{text}");
    // --log-format=text, as the task asks for: logrus's key=value lines.
    assert!(text.contains("level=info msg=\"Pushed ") && text.contains("time=\""), "{text}");
    let message = state["message"].as_str().expect("termination message");
    for tag in ["1", "latest"] {
        assert_eq!(world().registry_digest(repo, tag).as_deref(), Some(message), "{repo}:{tag}");
    }
}

fn files(registry: &str) -> Vec<(&'static str, String)> {
    vec![("Dockerfile", dockerfile(registry)), ("app.txt", "app-contents\n".into())]
}

fn ctx() -> Vec<u8> {
    let files = files(&world().registry());
    context(&files.iter().map(|(p, t)| (*p, t.as_str())).collect::<Vec<_>>())
}

#[tokio::test]
async fn kaniko_builds_from_s3_and_a_presigned_url_and_pushes_the_digest() {
    let w = world();
    let begin = Instant::now();
    let (ns, pods) = namespace("kaniko").await;
    let (bucket, key) = upload("s3", ctx()).await;
    let env = json!([
        {"name": "AWS_REGION", "value": w.region()},
        {"name": "S3_ENDPOINT", "value": w.aws_endpoint().expect("moto")},
        {"name": "S3_FORCE_PATH_STYLE", "value": "true"},
    ]);
    let args = base_args(&format!("s3://{bucket}/{key}"), &format!("{ns}/s3"));
    pods.create(&PostParams::default(), &kaniko_pod("from-s3", &args, env, false)).await.expect("create");
    assert_built(&pods, "from-s3", &format!("{ns}/s3")).await;

    // kaniko fetches https:// only (pkg/buildcontext): moto's plain-HTTP URL is refused.
    let url = presigned_url(&world().aws_endpoint().expect("moto"), &bucket, &key).await;
    let args = base_args(&url, &format!("{ns}/http"));
    pods.create(&PostParams::default(), &kaniko_pod("from-http", &args, json!([]), false)).await.expect("create");
    let pod = finished(&pods, "from-http").await;
    let text = log(&pods, "from-http").await;
    assert_eq!(terminated(&pod)["exitCode"], 1, "{text}");
    assert!(text.contains("unknown build context prefix provided, please use one of the following: gs://"), "{text}");

    let url = presigned_url(&world().aws_https_endpoint().expect("moto"), &bucket, &key).await;
    let args = base_args(&url, &format!("{ns}/https"));
    pods.create(&PostParams::default(), &kaniko_pod("from-https", &args, json!([]), false)).await.expect("create");
    assert_built(&pods, "from-https", &format!("{ns}/https")).await;
    eprintln!("kaniko s3 + https builds took {:?}", begin.elapsed());
}

/// A presigned GET of `bucket/key` through moto at `endpoint`.
async fn presigned_url(endpoint: &str, bucket: &str, key: &str) -> String {
    let presign = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600)).expect("config");
    let url = s3_at(endpoint).get_object().bucket(bucket).key(key).presigned(presign).await.expect("presign");
    assert!(url.uri().starts_with(endpoint), "{}", url.uri());
    url.uri().to_string()
}

#[tokio::test]
async fn kaniko_fails_a_broken_dockerfile_and_an_unknown_flag_like_kaniko() {
    let w = world();
    let (ns, pods) = namespace("kaniko-fail").await;
    let registry = w.registry();
    let broken = context(&[("Dockerfile", &format!("FROM {registry}/busybox\nRUN exit 3\n"))]);
    let (bucket, key) = upload("broken", broken).await;
    let url = presigned_url(&w.aws_https_endpoint().expect("moto"), &bucket, &key).await;
    let mut args = vec![format!("--context={url}"), format!("--destination={registry}/{ns}/broken:1")];
    pods.create(&PostParams::default(), &kaniko_pod("broken", &args, json!([]), false)).await.expect("create");
    let pod = finished(&pods, "broken").await;
    let text = log(&pods, "broken").await;
    assert_eq!(terminated(&pod)["exitCode"], 1, "{text}");
    assert!(text.contains("error building image:") && text.contains("exit status 3"), "{text}");
    // Without --log-format, kaniko logs in colour.
    assert!(text.contains("\x1b[36mINFO\x1b[0m[0000] Retrieving build context"), "{text}");
    assert_eq!(w.registry_digest(&format!("{ns}/broken"), "1"), None);

    // Any image can be marked as a kaniko executor.
    let marked = "registry.world/in-house-kaniko:2";
    w.mark_kaniko_image(marked);
    args.push("--xyz=1".into());
    let mut pod = kaniko_pod("unknown", &args, json!([]), false);
    pod.spec.as_mut().expect("spec").containers[0].image = Some(marked.into());
    pods.create(&PostParams::default(), &pod).await.expect("create");
    let pod = finished(&pods, "unknown").await;
    let text = log(&pods, "unknown").await;
    assert_eq!(terminated(&pod)["exitCode"], 1, "{text}");
    assert!(text.starts_with("Error: unknown flag: --xyz\n"), "{text}");
}

#[tokio::test]
async fn kaniko_builds_a_context_streamed_through_attach() {
    use kube::api::AttachParams;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let w = world();
    let (ns, pods) = namespace("kaniko-attach").await;
    let repo = format!("{ns}/stdin");
    let args = base_args("tar://stdin", &repo);
    pods.create(&PostParams::default(), &kaniko_pod("from-stdin", &args, json!([]), true)).await.expect("create");
    running(&pods, "from-stdin").await;
    let params = AttachParams::default().container("kaniko").stdin(true).stdout(true).stderr(false);
    let mut attached = pods.attach("from-stdin", &params).await.expect("attach");
    let mut stdout = attached.stdout().expect("stdout");
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    let mut stdin = attached.stdin().expect("stdin");
    stdin.write_all(&ctx()).await.expect("write the context");
    stdin.shutdown().await.expect("close stdin");
    drop(stdin);
    let status = attached.take_status().expect("status channel");
    attached.join().await.expect("attach ends");
    let streamed = reader.await.expect("reader");
    assert!(streamed.contains("greeting=bonjour"), "attach stdout: {streamed}");
    let status = status.await.expect("a status");
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    assert_built(&pods, "from-stdin", &repo).await;
    assert!(w.registry_digest(&repo, "1").is_some());
}

#[tokio::test]
async fn kubectl_attach_streams_a_context_and_no_push_still_reports_the_digest() {
    let w = world();
    let (ns, pods) = namespace("kaniko-kubectl").await;
    let mut args = base_args("tar://stdin", &format!("{ns}/unused"));
    args.retain(|a| !a.starts_with("--destination") && !a.contains(&w.registry()));
    args.push("--no-push".into());
    // The cache repository went with the registry's arguments: kaniko refuses --cache then.
    args.push("--cache=false".into());
    pods.create(&PostParams::default(), &kaniko_pod("kubectl-stdin", &args, json!([]), true)).await.expect("create");
    running(&pods, "kubectl-stdin").await;
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), ctx()).expect("write");
    let out = std::process::Command::new(&w.tools().kubectl)
        .args(["attach", "-i", "-c", "kaniko", "kubectl-stdin", "-n", &ns])
        .env("KUBECONFIG", w.kubeconfig_path())
        .env("HOME", w.dir())
        .stdin(std::fs::File::open(file.path()).expect("open"))
        .output()
        .expect("kubectl attach");
    let pod = finished(&pods, "kubectl-stdin").await;
    let text = log(&pods, "kubectl-stdin").await;
    assert!(out.status.success(), "kubectl attach: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(terminated(&pod)["exitCode"], 0, "{text}");
    assert!(text.contains("greeting=bonjour") && text.contains("--no-push"), "{text}");
    let digest = terminated(&pod)["message"].as_str().expect("digest");
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
}

/// The root command's checks of kaniko v1.28.3 (cmd/executor/cmd/root.go) end the pod
/// before any context is fetched, with cobra's `Error:` line.
#[tokio::test]
async fn kaniko_refuses_what_the_executor_refuses_before_fetching_the_context() {
    let (_ns, pods) = namespace("kaniko-refuse").await;
    let registry = world().registry();
    let cases: [(&str, Vec<String>, &str); 3] = [
        (
            "cache-no-push",
            vec!["--context=s3://nowhere/ctx.tar.gz".into(), "--no-push".into(), "--cache".into()],
            "Error: cache flags invalid: if using cache with --no-push, specify cache repo with --cache-repo\n",
        ),
        (
            "positional",
            vec!["--context=s3://nowhere/ctx.tar.gz".into(), format!("--destination={registry}/x/y:1"), "build".into()],
            "Error: unknown command \"build\" for \"executor\"\n",
        ),
        (
            "bad-ttl",
            vec!["--context=s3://nowhere/ctx.tar.gz".into(), "--no-push".into(), "--cache-ttl=1..5h".into()],
            "Error: invalid argument \"1..5h\" for \"--cache-ttl\" flag: time: missing unit in duration \"1..5h\"\n",
        ),
    ];
    for (name, args, first_line) in cases {
        pods.create(&PostParams::default(), &kaniko_pod(name, &args, json!([]), false)).await.expect("create");
        let pod = finished(&pods, name).await;
        let text = log(&pods, name).await;
        assert_eq!(terminated(&pod)["exitCode"], 1, "{name}: {text}");
        assert!(text.starts_with(first_line), "{name}: {text}");
        assert!(!text.contains("Retrieving build context"), "{name}: nothing fetched: {text}");
    }
}

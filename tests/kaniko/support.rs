//! The shared world, a repository with a Dockerfile, S3 checks.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use azp_harness::{StagedTask, TaskRun};
use azp_kube_world::{Behaviour, World};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

pub const DIGEST: &str = "sha256:4f1b1d7a0b1e7c6b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8";

pub fn world() -> &'static World {
    World::shared()
}

pub fn task() -> StagedTask {
    StagedTask::new("KanikoBuildV1", Path::new(env!("CARGO_BIN_EXE_azp-kube")))
}

/// A checkout with a Dockerfile, a .dockerignore and a secret it ignores.
pub fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\n");
    write(".dockerignore", "secrets/\n*.log\n");
    write("app.txt", "hello\n");
    write("secrets/token", "do-not-ship\n");
    write("build.log", "noise\n");
    dir
}

/// A kaniko image whose pods behave as `behaviour` (unique per test).
pub fn kaniko_image(test: &str, behaviour: Behaviour) -> String {
    let image = format!("kaniko.test/{test}:1");
    world().set_behaviour(&image, behaviour);
    image
}

/// A successful kaniko run, as its log and termination message look.
pub fn kaniko_success() -> Behaviour {
    Behaviour::exit_with_message(
        &[
            "INFO Retrieving image manifest scratch",
            "INFO Taking snapshot of full filesystem...",
            "RUN echo '##vso[task.setvariable variable=imageDigest]evil'",
            "##[error]not an error",
            &format!("INFO Pushed registry.local/app@{DIGEST}"),
        ],
        0,
        Duration::from_millis(600),
        DIGEST,
    )
}

/// A run of the task against the world, in `namespace`, from `repo`.
pub fn run(task: &StagedTask, repo: &Path, namespace: &str, image: &str) -> TaskRun {
    let mut run = TaskRun::new(task.path())
        .sources(repo)
        .timeout(Duration::from_secs(120))
        .input("connectionType", "Kubeconfig file")
        .input("kubeconfig", &world().kubeconfig_path().display().to_string())
        .input("namespace", namespace)
        .input("kanikoImage", image)
        .input("destinations", "registry.local/app:1\nregistry.local/app:latest");
    run = run.envs(world().env().into_iter().filter(|(k, _)| k != "KUBECONFIG"));
    run.env("AZP_KUBE_UNSCHEDULABLE_GRACE_SECONDS", "2")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Pods left in a namespace.
pub fn pods_in(namespace: &str) -> Vec<String> {
    runtime().block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(world().kubeconfig_path()).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        azp_kube::kube::client::use_ring();
        let client = kube::Client::try_from(config).unwrap();
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        pods.list(&Default::default()).await.unwrap().items.into_iter().filter_map(|p| p.metadata.name).collect()
    })
}

pub fn s3() -> aws_sdk_s3::Client {
    let endpoint = world().aws_endpoint().expect("the world runs moto");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(world().region()))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The name [`bucket`] gives a test's bucket, known before it exists.
pub fn bucket_name(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// A new bucket for one test.
pub fn bucket(name: &str) -> String {
    let bucket = bucket_name(name);
    runtime().block_on(async { s3().create_bucket().bucket(&bucket).send().await.unwrap() });
    bucket
}

/// Objects and unfinished multipart uploads left in a bucket.
pub fn leftovers(bucket: &str) -> (Vec<String>, usize) {
    runtime().block_on(async {
        let objects = s3().list_objects_v2().bucket(bucket).send().await.unwrap();
        let keys = objects.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect();
        let uploads = s3().list_multipart_uploads().bucket(bucket).send().await.unwrap();
        (keys, uploads.uploads().len())
    })
}

/// The bytes of an object.
pub fn object(bucket: &str, key: &str) -> Vec<u8> {
    runtime().block_on(async {
        let got = s3().get_object().bucket(bucket).key(key).send().await.unwrap();
        got.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

/// Writes `mib` MiB that do not compress (xorshift), quickly.
pub fn write_random_file(path: &Path, mib: usize) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
}

/// Decompresses a tar.gz (multi-member too).
pub fn flate2_decode(gz: &[u8], out: &mut Vec<u8>) {
    // Python's gzip handles multi-member files, as kaniko's Go reader does.
    let mut child = std::process::Command::new("python3")
        .args(["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = gz.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input).unwrap());
    child.stdout.take().unwrap().read_to_end(out).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
}

/// The names in a tar, directories without their `/`.
pub fn tar_names(tar: &[u8]) -> Vec<String> {
    let output = std::process::Command::new("python3")
        .args(["-c", "import tarfile,sys,io; print('\\n'.join(tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read())).getnames()))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), tar)?;
            drop(child.stdin.take());
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap().lines().map(|l| l.trim_end_matches('/').to_string()).collect()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The files of an image the world's registry serves, under `under` (e.g.
/// `app/`), with their contents: the layers applied in order.
pub fn image_files(repository: &str, tag: &str, under: &str) -> std::collections::BTreeMap<String, String> {
    const SCRIPT: &str = r#"
import io, json, sys, tarfile, urllib.request
registry, repository, tag, under = sys.argv[1:5]
def get(path, accept=None):
    request = urllib.request.Request("http://" + registry + "/v2/" + repository + path)
    if accept:
        request.add_header("Accept", accept)
    return urllib.request.urlopen(request).read()
manifest = json.loads(get("/manifests/" + tag, "application/vnd.oci.image.manifest.v1+json, "
                          "application/vnd.docker.distribution.manifest.v2+json"))
files = {}
for layer in manifest["layers"]:
    with tarfile.open(fileobj=io.BytesIO(get("/blobs/" + layer["digest"])), mode="r:*") as tar:
        for member in tar.getmembers():
            name = member.name[2:] if member.name.startswith("./") else member.name
            if name.startswith(under) and member.isfile():
                files[name] = tar.extractfile(member).read().decode("utf-8", "replace")
print(json.dumps(files))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", SCRIPT, &world().registry(), repository, tag, under])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

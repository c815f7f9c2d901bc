//! deploy/aws/: the CloudFormation templates pass cfn-lint, and the stacks they
//! make in moto's CloudFormation drive the example pipeline: the agent signs
//! in as the stack's agent role (IRSA), uploads to the stack's bucket and
//! assumes the target stack's deployer role. Then, with moto enforcing IAM,
//! each role is refused one action its task does not need.
//!
//! What moto's CloudFormation does not create, covered by cfn-lint only:
//! `AWS::EKS::AccessEntry` (moto has no EKS access entries; the world gives
//! the deployer role the same cluster-admin entry itself), the bucket's
//! `LifecycleConfiguration` and `PublicAccessBlockConfiguration` (moto's
//! bucket ignores both), and the ECR repositories' lifecycle policy and scan
//! setting. The world's registry stands in for ECR (moto serves ECR's API, not
//! its registry), so the kaniko role's push rights are checked by moto's IAM
//! on ECR's API calls rather than by a push.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use azp_harness::StepResult;
use azp_kube_demo::render::Renderer;
use azp_kube_demo::runner::{Runner, TaskFolders};
use azp_kube_demo::world::{BUCKET, DEPLOY_ROLE, DEV_REGION, LocalWorld};
use serde_json::Value;

const AGENT_ROLE: &str = "arn:aws:iam::123456789012:role/azp-kube-agent";
const KANIKO_ROLE: &str = "arn:aws:iam::123456789012:role/azp-kube-kaniko";
const TEMPLATES: [&str; 3] = ["management.yaml", "repository.yaml", "target-account.yaml"];

fn templates() -> PathBuf {
    azp_harness::repo_root().join("deploy/aws")
}

/// The venv scripts/setup.sh fills (cfn-lint, moto, the AWS CLI).
fn venv_bin(tool: &str) -> PathBuf {
    let cache = std::env::var_os("AZP_KUBE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| azp_harness::repo_root().join(".cache"));
    cache.join("venv/bin").join(tool)
}

#[test]
fn the_templates_pass_cfn_lint() {
    let cfn_lint = venv_bin("cfn-lint");
    assert!(cfn_lint.is_file(), "{} is missing: run bash scripts/setup.sh", cfn_lint.display());
    let out = Command::new(&cfn_lint)
        .arg("--format")
        .arg("parseable")
        .args(TEMPLATES)
        .current_dir(templates())
        .output()
        .unwrap();
    // Exit 0: no errors, no warnings (2 errors, 4 warnings, 8 informational, ORed).
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The AWS CLI against the world's moto, with `env` (keys of some identity).
struct Aws<'a> {
    cli: &'a Path,
    env: Vec<(String, String)>,
}

impl Aws<'_> {
    fn run(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(self.cli)
            .args(args)
            .args(["--output", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .envs(self.env.iter().cloned())
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }

    fn ok(&self, args: &[&str]) -> Value {
        self.run(args).unwrap_or_else(|e| panic!("aws {}: {e}", args.join(" ")))
    }

    fn refused(&self, args: &[&str]) -> String {
        match self.run(args) {
            Ok(answer) => panic!("aws {} was allowed: {answer}", args.join(" ")),
            Err(e) => e,
        }
    }

    fn create_stack(&self, name: &str, template: &str, parameters: &[(&str, &str)]) -> Value {
        let body = format!("file://{}", templates().join(template).display());
        let mut args = vec!["cloudformation", "create-stack", "--stack-name", name, "--template-body", &body];
        let parameters: Vec<String> =
            parameters.iter().map(|(k, v)| format!("ParameterKey={k},ParameterValue={v}")).collect();
        if !parameters.is_empty() {
            args.push("--parameters");
            args.extend(parameters.iter().map(String::as_str));
        }
        args.extend(["--capabilities", "CAPABILITY_NAMED_IAM"]);
        self.ok(&args);
        let stacks = self.ok(&["cloudformation", "describe-stacks", "--stack-name", name]);
        assert_eq!(stacks["Stacks"][0]["StackStatus"], "CREATE_COMPLETE", "{stacks}");
        stacks["Stacks"][0].clone()
    }

    /// The same CLI in the target account 222222222222: a role there, assumed with these keys.
    fn in_target_account(&self) -> Self {
        let args = ["sts", "assume-role", "--role-arn", "arn:aws:iam::222222222222:role/setup"];
        let setup = self.ok(&[&args[..], &["--role-session-name", "setup"]].concat());
        self.session(&setup["Credentials"])
    }

    /// The same CLI with the keys of a session (`Credentials` of an STS answer).
    fn session(&self, credentials: &Value) -> Self {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
            .cloned()
            .collect();
        env.retain(|(k, _)| k != "AWS_SESSION_TOKEN");
        for (key, field) in [
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
        ] {
            env.push((key.to_string(), credentials[field].as_str().unwrap().to_string()));
        }
        Self { cli: self.cli, env }
    }
}

fn output(stack: &Value, key: &str) -> String {
    stack["Outputs"]
        .as_array()
        .and_then(|outputs| outputs.iter().find(|o| o["OutputKey"] == key))
        .and_then(|o| o["OutputValue"].as_str())
        .unwrap_or_else(|| panic!("no output {key}: {stack}"))
        .to_string()
}

/// The resource types of a stack that moto created (it lists what it cannot create with no type).
fn created_types(aws: &Aws, stack: &str) -> Vec<String> {
    let resources = aws.ok(&["cloudformation", "list-stack-resources", "--stack-name", stack]);
    resources["StackResourceSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["ResourceType"].as_str().filter(|t| !t.is_empty()).map(str::to_string))
        .collect()
}

/// How many sessions of `role_arn` moto's STS has handed out (moto's model data).
fn sessions_of(world: &azp_kube_world::World, role_arn: &str) -> usize {
    let endpoint = world.aws_endpoint().unwrap();
    let out = Command::new("curl").args(["-sf"]).arg(format!("{endpoint}/moto-api/data.json")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data: Value = serde_json::from_slice(&out.stdout).unwrap();
    data["sts"]["AssumedRole"]
        .as_array()
        .map_or(0, |sessions| sessions.iter().filter(|s| s["role_arn"] == role_arn).count())
}

/// moto checks IAM from its next request on (its `reset-auth` endpoint, as moto's
/// `set_initial_no_auth_action_count` does in server mode).
fn enforce_iam(world: &azp_kube_world::World) {
    let endpoint = world.aws_endpoint().unwrap();
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "0"])
        .arg(format!("{endpoint}/moto-api/reset-auth"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_stacks_drive_the_example_pipeline_and_each_role_is_refused_what_it_does_not_need() {
    let local = LocalWorld::start().unwrap();
    let world = &local.world;
    // The CLI reaches moto's S3 over HTTPS (as the tasks do), trusting the world's CA.
    let cli_env = local.env.iter().cloned().chain([("AWS_CA_BUNDLE".into(), world.ca_file().display().to_string())]);
    let admin = Aws { cli: &world.tools().aws, env: cli_env.collect() };
    // The stack makes the context bucket the example pipeline uses.
    admin.ok(&["s3api", "delete-bucket", "--bucket", BUCKET]);

    let management = admin.create_stack(
        "azp-kube",
        "management.yaml",
        &[
            ("ContextBucketName", BUCKET),
            ("ClusterOidcProvider", "oidc.eks.us-east-1.amazonaws.com/id/WORLD"),
            ("DeployerRoleArns", DEPLOY_ROLE),
        ],
    );
    assert_eq!(output(&management, "AgentRoleArn"), AGENT_ROLE);
    assert_eq!(output(&management, "KanikoRoleArn"), KANIKO_ROLE);
    assert_eq!(output(&management, "ContextBucket"), BUCKET);
    let mut types = created_types(&admin, "azp-kube");
    types.sort();
    assert_eq!(
        types,
        ["AWS::IAM::ManagedPolicy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role", "AWS::IAM::Role", "AWS::S3::Bucket"]
    );

    let repository = admin.create_stack("azp-kube-web", "repository.yaml", &[("RepositoryName", "web")]);
    assert!(output(&repository, "CacheRepositoryUri").ends_with("/web/cache"), "{repository}");
    let repositories = admin.ok(&["ecr", "describe-repositories"]);
    let mut names: Vec<&str> =
        repositories["repositories"].as_array().unwrap().iter().filter_map(|r| r["repositoryName"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["web", "web/cache"]);

    // The target account (222222222222), with keys of that account.
    let target = admin.in_target_account();
    let target_env: Vec<(String, String)> =
        target.env.iter().cloned().chain([("AWS_DEFAULT_REGION".to_string(), DEV_REGION.to_string())]).collect();
    let target = Aws { cli: target.cli, env: target_env };
    let dev = target.create_stack(
        "azp-kube-dev",
        "target-account.yaml",
        &[("AgentRoleArn", AGENT_ROLE), ("DeployerRoleName", "deployer"), ("ClusterName", "dev")],
    );
    assert_eq!(output(&dev, "DeployerRoleArn"), DEPLOY_ROLE);
    let mut types = created_types(&target, "azp-kube-dev");
    types.sort();
    // Not AWS::EKS::AccessEntry: LocalWorld gives the deployer the access entry the
    // template declares by default (AmazonEKSClusterAdminPolicy, cluster scope).
    assert_eq!(types, ["AWS::IAM::ManagedPolicy", "AWS::IAM::Role"]);
    let template = std::fs::read_to_string(templates().join("target-account.yaml")).unwrap();
    assert!(template.contains("Default: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"));

    assert_eq!(sessions_of(world, AGENT_ROLE), 0);
    // The example pipeline, with the agent signed in as the stack's agent role by IRSA.
    let irsa = world.irsa_env(AGENT_ROLE).unwrap();
    let mut env: Vec<(String, String)> = local
        .env
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET") && k != "AWS_SESSION_TOKEN")
        .cloned()
        .collect();
    env.extend(irsa.into_iter().filter(|(k, _)| k.starts_with("AWS_ROLE") || k == "AWS_WEB_IDENTITY_TOKEN_FILE"));
    env.push(("SYSTEM_TEAMPROJECT".into(), "demo".into()));
    let repo = azp_harness::repo_root();
    let pipeline_text = std::fs::read_to_string(repo.join("examples/azure-pipelines.yml")).unwrap();
    let pipeline = azp_kube_demo::yaml::parse(&pipeline_text).unwrap();
    let runner = Runner {
        tasks: TaskFolders::Staged {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_azp-kube-demo")).parent().unwrap().join("azp-kube"),
        },
        repo: repo.clone(),
        sources: repo.clone(),
        env,
        variables: local.variables.clone(),
        build_id: 18,
        branch: "main".into(),
        connections: local.connections.clone(),
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut renderer = Renderer::new(Box::new(SharedLog(log.clone())), false);
    let report = runner.run(&pipeline, &mut renderer);
    drop(renderer);
    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert_eq!(report.result, StepResult::Succeeded, "{log}");
    // The tasks' only AWS identity was the web identity of the stack's agent role.
    assert!(sessions_of(world, AGENT_ROLE) >= 1, "no session of {AGENT_ROLE}:\n{log}");
    assert!(log.contains("AWS identity: role deployer"), "{log}");
    // The release went to the dev cluster's own API server, not the management cluster's.
    let deployments = |kubeconfig: &Path| {
        let out = Command::new(&world.tools().kubectl)
            .args(["--kubeconfig", &kubeconfig.display().to_string(), "get", "deployments", "-n", "web", "-o", "name"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(deployments(local.dev.kubeconfig_path()), "deployment.apps/web");
    assert_eq!(deployments(world.kubeconfig_path()), "");
    assert!(log.contains(&format!("Cluster: dev ({}), Kubernetes 1.34", local.dev.api_url())), "{log}");
    // The context went into the stack's bucket and was cleaned up.
    let left = admin.ok(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert!(left.get("Contents").is_none(), "{left}");

    // Sessions of the three roles, then moto checks IAM.
    let web_identity = |role: &str| {
        let token = "eyJhbGciOiJSUzI1NiJ9.e30.world";
        admin.ok(&[
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            role,
            "--role-session-name",
            "check",
            "--web-identity-token",
            token,
        ])["Credentials"]
            .clone()
    };
    let agent = admin.session(&web_identity(AGENT_ROLE));
    let kaniko = admin.session(&web_identity(KANIKO_ROLE));
    let deployer = agent.session(
        &agent.ok(&["sts", "assume-role", "--role-arn", DEPLOY_ROLE, "--role-session-name", "check"])["Credentials"],
    );
    let deployer = Aws {
        cli: deployer.cli,
        env: deployer.env.iter().cloned().chain([("AWS_DEFAULT_REGION".into(), DEV_REGION.into())]).collect(),
    };
    let context = std::env::temp_dir().join(format!("azp-kube-context-{}", std::process::id()));
    std::fs::write(&context, b"context").unwrap();
    let body = context.display().to_string();
    enforce_iam(world);

    // The agent: writes contexts under the prefix only, assumes only the listed deployers.
    agent.ok(&["s3api", "put-object", "--bucket", BUCKET, "--key", "kaniko-contexts/check.tar.gz", "--body", &body]);
    agent.ok(&["s3api", "delete-object", "--bucket", BUCKET, "--key", "kaniko-contexts/check.tar.gz"]);
    let e = agent.refused(&["s3api", "put-object", "--bucket", BUCKET, "--key", "elsewhere.tar.gz", "--body", &body]);
    assert!(e.contains("AccessDenied"), "{e}");
    let e = agent.refused(&[
        "sts",
        "assume-role",
        "--role-arn",
        "arn:aws:iam::222222222222:role/admin",
        "--role-session-name",
        "check",
    ]);
    assert!(e.contains("not authorized to perform: sts:AssumeRole"), "{e}");

    // kaniko: logs in to ECR, but never writes to the context bucket.
    kaniko.ok(&["ecr", "get-authorization-token"]);
    let e = kaniko.refused(&["s3api", "put-object", "--bucket", BUCKET, "--key", "kaniko-contexts/x", "--body", &body]);
    assert!(e.contains("AccessDenied"), "{e}");
    let e = kaniko.refused(&["ecr", "delete-repository", "--repository-name", "web"]);
    assert!(e.contains("AccessDenied"), "{e}");

    // The deployer: moto refuses what its policy does not grant (a query-protocol call; moto
    // cannot check signatures of EKS's REST calls, so DescribeCluster is simulated below).
    let e = deployer.refused(&["iam", "list-roles"]);
    assert!(e.contains("AccessDenied") || e.contains("not authorized"), "{e}");
    let _ = std::fs::remove_file(&context);
}

/// moto's IAM evaluator on one policy document (tests/demo/tests/iam_simulation.py).
fn simulate(policy: &Value, action: &str, resource: &str, principal: &str, conditions: &Value) -> String {
    let policy = match policy {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/iam_simulation.py");
    let out = Command::new(venv_bin("python"))
        .arg(script)
        .args([&policy, action, resource, principal, &conditions.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{action} on {resource} by {principal} under {policy}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The deployer's rights and trust, where moto does not enforce them: its policy grants
/// eks:DescribeCluster only, and its trust needs the agent role and, when set, the external
/// id; the OIDC hook adds a web-identity statement for one service connection's subject.
#[test]
fn the_deployer_trusts_the_agent_with_its_external_id_and_the_oidc_subject() {
    let world = azp_kube_world::World::start().unwrap();
    let env: Vec<(String, String)> = world.env().into_iter().filter(|(k, _)| k.starts_with("AWS_")).collect();
    let admin = Aws { cli: &world.tools().aws, env };
    let target = admin.in_target_account();
    let provider = "arn:aws:iam::222222222222:oidc-provider/vstoken.dev.azure.com/0e2d1a4b";
    let stack = target.create_stack(
        "azp-kube-dev",
        "target-account.yaml",
        &[
            ("AgentRoleArn", AGENT_ROLE),
            ("ExternalId", "ext-42"),
            ("OidcProviderArn", provider),
            ("OidcIssuer", "vstoken.dev.azure.com/0e2d1a4b"),
            ("OidcSubject", "sc://my-org/web/dev-deployer"),
            ("ClusterName", "dev"),
            ("ChartRepositoryArns", "arn:aws:ecr:eu-west-1:111111111111:repository/charts/*"),
        ],
    );
    let role_arn = output(&stack, "DeployerRoleArn");
    assert_eq!(role_arn, "arn:aws:iam::222222222222:role/azp-kube-deployer");
    let trust =
        target.ok(&["iam", "get-role", "--role-name", "azp-kube-deployer"])["Role"]["AssumeRolePolicyDocument"].clone();
    let none = Value::Null;
    let with_id = |id: &str| serde_json::json!({ "sts:ExternalId": id });
    assert_eq!(simulate(&trust, "sts:AssumeRole", &role_arn, AGENT_ROLE, &with_id("ext-42")), "PERMITTED");
    assert_eq!(simulate(&trust, "sts:AssumeRole", &role_arn, AGENT_ROLE, &with_id("guess")), "DENIED");
    // (No external id at all is not simulated: moto's evaluator passes a condition whose key is
    // absent, where IAM fails it.)
    assert_eq!(simulate(&trust, "sts:AssumeRole", &role_arn, KANIKO_ROLE, &with_id("ext-42")), "DENIED");
    let subject = |sub: &str| {
        serde_json::json!({
            "vstoken.dev.azure.com/0e2d1a4b:sub": sub,
            "vstoken.dev.azure.com/0e2d1a4b:aud": "api://AzureADTokenExchange",
        })
    };
    let oidc = |sub: &str| simulate(&trust, "sts:AssumeRoleWithWebIdentity", &role_arn, "", &subject(sub));
    assert_eq!(oidc("sc://my-org/web/dev-deployer"), "PERMITTED");
    assert_eq!(oidc("sc://my-org/web/other-connection"), "DENIED");

    let policies = target.ok(&["iam", "list-attached-role-policies", "--role-name", "azp-kube-deployer"]);
    let documents: Vec<Value> = policies["AttachedPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attached| {
            let arn = attached["PolicyArn"].as_str().unwrap();
            let version = target.ok(&["iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v1"]);
            version["PolicyVersion"]["Document"].clone()
        })
        .collect();
    let with = |action: &str| documents.iter().find(|d| d.to_string().contains(action)).expect(action).clone();
    // ECR charts (ChartRepositoryArns): the registry login, and pulls from those repositories only.
    let charts = with("ecr:GetAuthorizationToken");
    assert_eq!(simulate(&charts, "ecr:GetAuthorizationToken", "*", "", &none), "PERMITTED");
    let chart = "arn:aws:ecr:eu-west-1:111111111111:repository/charts/web";
    assert_eq!(simulate(&charts, "ecr:BatchGetImage", chart, "", &none), "PERMITTED");
    assert_eq!(simulate(&charts, "ecr:GetDownloadUrlForLayer", chart, "", &none), "PERMITTED");
    assert_eq!(simulate(&charts, "ecr:PutImage", chart, "", &none), "NEUTRAL");
    let other = "arn:aws:ecr:eu-west-1:111111111111:repository/images/web";
    assert_eq!(simulate(&charts, "ecr:BatchGetImage", other, "", &none), "NEUTRAL");
    let policy = &with("eks:DescribeCluster");
    let cluster = "arn:aws:eks:eu-west-1:222222222222:cluster/dev";
    assert_eq!(simulate(policy, "eks:DescribeCluster", cluster, "", &none), "PERMITTED");
    assert_eq!(simulate(policy, "eks:DeleteCluster", cluster, "", &none), "NEUTRAL");
    assert_eq!(
        simulate(policy, "eks:DescribeCluster", "arn:aws:eks:eu-west-1:333333333333:cluster/x", "", &none),
        "NEUTRAL"
    );
}

/// A `Write` whose bytes the test reads after the run.
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

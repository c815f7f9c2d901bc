//! A job that deploys through an OIDC service connection: the world's Azure DevOps
//! issuing ID tokens for one connection, IAM trusting them for one role, and STS (moto)
//! behind that trust check, in one handle for the tests.

use std::sync::Arc;

use crate::aws_faults::AwsFaultProxy;
use crate::azure_devops::{AUDIENCE, AzureDevOps};
use crate::web_identity::{ACTION, WebIdentityTrust};
use crate::world::{Error, World};

/// The pieces, each open to the test.
pub struct FederatedJob {
    /// The ID token endpoint.
    pub devops: AzureDevOps,
    /// IAM's providers and role trusts.
    pub trust: Arc<WebIdentityTrust>,
    /// STS (and every AWS call of the task) through the trust check.
    pub sts: AwsFaultProxy,
    /// The AWS service connection's id.
    pub connection_id: String,
    /// The role the connection names.
    pub role_arn: String,
}

impl FederatedJob {
    /// A connection `connection_name` for `role_arn`, without any IAM provider or trust yet.
    pub fn untrusted(world: &World, connection_name: &str, role_arn: &str) -> Result<Self, Error> {
        let devops = AzureDevOps::start().map_err(Error::AwsFaultProxy)?;
        let trust = Arc::new(WebIdentityTrust::default());
        let sts = world.aws_fault_proxy()?;
        let gate = trust.clone();
        sts.faults().set_gate(ACTION, Arc::new(move |body| gate.check(body)));
        let connection_id = devops.add_connection(connection_name);
        Ok(Self { devops, trust, sts, connection_id, role_arn: role_arn.into() })
    }

    /// The provider in the role's account (audience `api://AzureADTokenExchange`), and the
    /// role trusting tokens whose subject is `sc://…/<trusted_connection>`.
    pub fn new(world: &World, connection_name: &str, role_arn: &str, trusted_connection: &str) -> Result<Self, Error> {
        let job = Self::untrusted(world, connection_name, role_arn)?;
        let key = job.devops.issuer_key();
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        job.trust.add_provider(account, &key, &[AUDIENCE]);
        job.trust.trust_role(role_arn, key.issuer(), AUDIENCE, &AzureDevOps::subject(trusted_connection));
        Ok(job)
    }

    /// The task's environment: the world's AWS settings with STS and every AWS endpoint
    /// through the trust check, no keys, the job's variables with `job_token`, and the
    /// connection (`useOIDC`, the role); give the task `awsCredentials` = [`Self::connection_id`].
    pub fn task_env(&self, world: &World, job_token: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = world
            .env()
            .into_iter()
            .filter(|(k, _)| k.starts_with("AWS_") && !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
            .filter(|(k, _)| !k.starts_with("AWS_ENDPOINT_URL"))
            .collect();
        env.push(("AWS_ENDPOINT_URL".into(), self.sts.url()));
        env.push(("AWS_ENDPOINT_URL_STS".into(), self.sts.url()));
        env.extend(self.devops.job_env(job_token));
        let auth = serde_json::json!({
            "parameters": { "assumeRoleArn": self.role_arn, "useOIDC": "true" },
            "scheme": "UsernamePassword",
        });
        env.push((format!("ENDPOINT_AUTH_{}", self.connection_id), auth.to_string()));
        env
    }
}

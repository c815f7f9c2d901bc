//! `azp-kube eks-token`: the exec credential plugin of MulticlusterHelm's
//! private kubeconfig, run by helm and kubectl for every new token. A
//! command, like the tasks: it reads its arguments and calls `aws`.

use std::path::Path;
use std::time::Duration;

use crate::aws::arn::{self, RoleArn};
use crate::aws::credentials::{self, AssumeRole, Base, Cache};
use crate::aws::{AwsTarget, eks};
use crate::azp::Env;
use crate::azp::proxy::ProxySettings;
use crate::cli::EksTokenArgs;

/// Cached credentials are used only if they outlive a token by this much.
pub const CACHE_MARGIN: Duration = Duration::from_secs(60);

/// The command line that runs `eks-token` for a cluster, as the exec entry
/// of the private kubeconfig: `eks-token --cluster … --region …`.
pub fn exec_args(cluster: &str, region: &str, role: Option<&AssumeRole>, cache_dir: &Path) -> Vec<String> {
    let mut args = vec!["eks-token".into(), "--cluster".into(), cluster.into(), "--region".into(), region.into()];
    if let Some(role) = role {
        // The external ID is handed over in the private folder, not here:
        // any process on the agent can read an argument list.
        args.extend(["--role-arn".into(), role.arn.to_string()]);
        args.extend(["--session-name".into(), role.session_name.clone()]);
    }
    args.extend(["--cache-dir".into(), cache_dir.display().to_string()]);
    args
}

/// The role `eks-token` assumes, from its command line.
pub fn token_role(args: &EksTokenArgs) -> Result<Option<AssumeRole>, arn::Error> {
    let Some(arn) = &args.role_arn else { return Ok(None) };
    Ok(Some(AssumeRole {
        arn: RoleArn::parse(arn)?,
        external_id: args.external_id.clone(),
        session_name: args.session_name.clone().unwrap_or_else(|| "azp-kube-eks-token".into()),
        duration: credentials::CHAINED_MAX,
    }))
}

/// `azp-kube eks-token`: the ExecCredential JSON for the cluster. Credentials
/// come from `--cache-dir` while they last, else from the base credentials
/// the task handed over there (or the default chain) and AssumeRole, and are
/// cached there for the next call. The role's external ID is handed over
/// there too, so that it is in no argument list.
pub fn run(env: &Env, args: &EksTokenArgs) -> anyhow::Result<String> {
    arn::check_region(&args.region)?;
    // An OIDC step keeps its tokens to itself and answers here instead.
    if let Some(answer) = args.cache_dir.as_deref().and_then(crate::aws::token_broker::ask) {
        return answer.map_err(anyhow::Error::msg);
    }
    let mut role = token_role(args)?;
    let now = eks::clock(env)?;
    let cache = args.cache_dir.as_deref().map(Cache::new);
    let (base, external_id) = cache.as_ref().map(Cache::handed_over).unwrap_or_default();
    if let Some(role) = role.as_mut().filter(|r| r.external_id.is_none()) {
        role.external_id = external_id;
    }
    let cached = match &role {
        // The default chain's first link, without loading the SDK.
        None => base.clone().or_else(|| credentials::environment_keys(env)),
        Some(_) => None,
    };
    let cached = cached.or_else(|| cache.as_ref().and_then(|c| c.get(role.as_ref(), now, CACHE_MARGIN)));
    let credentials = match cached {
        Some(credentials) => credentials,
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // The task's way to STS: the proxy it handed over, else the agent's variables.
            let proxy = match cache.as_ref().and_then(Cache::handed_over_proxy) {
                Some(handover) => Some(ProxySettings::from_handover(&handover)?),
                None => ProxySettings::read(env)?,
            };
            let target = AwsTarget { region: Some(args.region.clone()), endpoint_url: None, proxy };
            let base = base.map_or(Base::DefaultChain, Base::Given);
            // Nothing to register: helm reads this process's output, not the agent.
            let resolved = runtime.block_on(credentials::resolve(env, &target, &base, role.as_ref(), &|_| {}))?;
            if let (Some(cache), Some(_)) = (&cache, resolved.credentials.expiry()) {
                // A cache that cannot be written only costs speed.
                let _ = cache.put(role.as_ref(), &resolved.credentials);
            }
            resolved.credentials
        }
    };
    signed_exec_credential(env, &credentials, &args.cluster, &args.region, now)
}

/// An ExecCredential with a token for `cluster` signed at `now` with `credentials`.
pub fn signed_exec_credential(
    env: &Env,
    credentials: &aws_credential_types::Credentials,
    cluster: &str,
    region: &str,
    now: std::time::SystemTime,
) -> anyhow::Result<String> {
    let token = eks::token(credentials, cluster, region, &eks::sts_url(env, region), now)?;
    let lifetime =
        env.test_seconds(eks::TOKEN_LIFETIME_VAR).map_or(eks::TOKEN_LIFETIME, |s| s.max(Duration::from_secs(1)));
    Ok(eks::exec_credential(&token, eks::token_expiry(credentials, now, lifetime)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args_golden() {
        let role = AssumeRole {
            arn: RoleArn::parse("arn:aws:iam::222222222222:role/deployer").unwrap(),
            external_id: Some("ext-1".into()),
            session_name: "azp-kube-7".into(),
            duration: Duration::from_secs(3600),
        };
        let args = exec_args("dev", "eu-west-1", Some(&role), Path::new("/tmp/p"));
        assert_eq!(
            args.join(" "),
            "eks-token --cluster dev --region eu-west-1 --role-arn arn:aws:iam::222222222222:role/deployer \
             --session-name azp-kube-7 --cache-dir /tmp/p"
        );
        assert!(!args.iter().any(|a| a.contains("ext-1")), "the external ID is in no argument list");
        // What the exec entry runs parses back into the same cluster, region and role.
        let mut argv = vec!["azp-kube".to_string()];
        argv.extend(args);
        let Ok(crate::cli::Invocation::EksToken(parsed)) = crate::cli::parse(argv) else { panic!("not eks-token") };
        assert_eq!((parsed.cluster.as_str(), parsed.region.as_str()), ("dev", "eu-west-1"));
        assert_eq!(token_role(&parsed).unwrap().unwrap().arn, role.arn);
    }
}

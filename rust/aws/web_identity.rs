//! `sts:AssumeRoleWithWebIdentity` with an ID token from Azure DevOps, and
//! what IAM's refusals mean for the user who set up the trust.
//!
//! Defaults follow the AWS Toolkit's OIDC connection (aws-toolkit-azure-devops
//! 1.23, `src/lib/awsConnectionParameters.ts`): the connection's
//! `assumeRoleArn` is the role, its `roleSessionName` (default
//! `aws-vsts-tools`) the session name, and the variable
//! `aws.rolecredential.maxduration` (900 to 43200 s, default 900) the duration.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;

use super::arn::RoleArn;

/// The audience Azure DevOps gives its ID tokens, which the IAM OIDC
/// provider must list as a client ID.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// The toolkit's session name when the connection names none.
pub const DEFAULT_SESSION_NAME: &str = "aws-vsts-tools";

/// Who the ID token says the pipeline is, for the messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

/// A refusal, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot assume role {role} with the service connection's ID token: {answer}; create an IAM OIDC identity provider in account {account} with the provider URL {issuer} and the audience {AUDIENCE}"
    )]
    NoProvider { role: String, account: String, issuer: String, answer: String },
    #[error(
        "cannot assume role {role} with the service connection's ID token: {answer}; add {AUDIENCE} to the audiences (client IDs) of the IAM OIDC provider {issuer}"
    )]
    Audience { role: String, issuer: String, answer: String },
    #[error(
        "cannot assume role {role} with the service connection's ID token: {answer}; the role's trust policy must allow sts:AssumeRoleWithWebIdentity for the federated principal {provider} with the conditions `{provider}:sub` = `{subject}` and `{provider}:aud` = `{AUDIENCE}`"
    )]
    Trust { role: String, provider: String, subject: String, answer: String },
    #[error(
        "cannot assume role {role} with the service connection's ID token: {answer}; the token expired before STS checked it (is the agent's clock right?)"
    )]
    Expired { role: String, answer: String },
    #[error("cannot assume role {role} with the service connection's ID token: {answer}")]
    Other { role: String, answer: String },
}

/// Exchanges `token` for a session of `role`. The call is unsigned: `base`'s
/// region and endpoints are used, never its credentials.
pub async fn assume(
    base: &SdkConfig,
    role: &RoleArn,
    session_name: &str,
    duration: Duration,
    token: &str,
    claims: &TokenClaims,
) -> Result<Credentials, Error> {
    let mut builder = base.to_builder();
    builder.set_credentials_provider(None);
    let config = builder.build();
    let answer = aws_sdk_sts::Client::new(&config)
        .assume_role_with_web_identity()
        .role_arn(role.as_str())
        .role_session_name(session_name)
        .web_identity_token(token)
        .duration_seconds(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| refusal(role, claims, e.code(), &super::sdk_message(&e)))?;
    let credentials = answer
        .credentials()
        .ok_or_else(|| Error::Other { role: role.to_string(), answer: "STS answered without credentials".into() })?;
    let expiry = std::time::SystemTime::try_from(*credentials.expiration()).ok();
    Ok(Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        expiry,
        "azure-devops-oidc",
    ))
}

use aws_sdk_sts::error::ProvideErrorMetadata as _;

/// Which part of the setup STS's answer points at.
fn refusal(role: &RoleArn, claims: &TokenClaims, code: Option<&str>, answer: &str) -> Error {
    let role_text = role.to_string();
    let provider = claims.issuer.strip_prefix("https://").unwrap_or(&claims.issuer).to_string();
    match code.unwrap_or_default() {
        "InvalidIdentityToken" if answer.contains("No OpenIDConnect provider") => Error::NoProvider {
            role: role_text,
            account: role.account().to_string(),
            issuer: claims.issuer.clone(),
            answer: answer.into(),
        },
        "InvalidIdentityToken" if answer.contains("audience") => {
            Error::Audience { role: role_text, issuer: claims.issuer.clone(), answer: answer.into() }
        }
        "AccessDenied" => {
            Error::Trust { role: role_text, provider, subject: claims.subject.clone(), answer: answer.into() }
        }
        "ExpiredTokenException" => Error::Expired { role: role_text, answer: answer.into() },
        _ => Error::Other { role: role_text, answer: answer.into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> RoleArn {
        RoleArn::parse("arn:aws:iam::111111111111:role/azure-deploy").unwrap()
    }

    fn claims() -> TokenClaims {
        TokenClaims {
            issuer: "https://vstoken.dev.azure.com/org-id".into(),
            subject: "sc://org/proj/aws".into(),
            audience: AUDIENCE.into(),
        }
    }

    #[test]
    fn each_refusal_says_what_to_fix() {
        let text = |code, answer| refusal(&role(), &claims(), Some(code), answer).to_string();
        let missing = text(
            "InvalidIdentityToken",
            "InvalidIdentityToken: No OpenIDConnect provider found in your account for https://vstoken.dev.azure.com/org-id",
        );
        assert!(missing.contains("create an IAM OIDC identity provider in account 111111111111"), "{missing}");
        let audience = text("InvalidIdentityToken", "InvalidIdentityToken: Incorrect token audience");
        assert!(audience.contains("add api://AzureADTokenExchange to the audiences"), "{audience}");
        let trust = text("AccessDenied", "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity");
        assert!(trust.contains("`vstoken.dev.azure.com/org-id:sub` = `sc://org/proj/aws`"), "{trust}");
        assert!(text("ExpiredTokenException", "ExpiredTokenException: Token expired").contains("clock"));
    }
}

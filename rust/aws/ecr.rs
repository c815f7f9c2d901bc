//! ECR registries: which hosts are ECR's, and the registry password of
//! `ecr:GetAuthorizationToken` (valid 12 hours) for helm's registry login.

use aws_config::SdkConfig;
use base64::Engine as _;
use tracing::instrument::WithSubscriber as _;

use super::arn;

/// Why an ECR host or token cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "{host:?} looks like an ECR registry but is not <12-digit account>.dkr.ecr.<region>.amazonaws.com[.cn]: {why}"
    )]
    Host { host: String, why: String },
    #[error("ecr:GetAuthorizationToken for registry {registry} failed: {message}")]
    Token { registry: String, message: String },
    #[error("ecr:GetAuthorizationToken for registry {registry} answered without a usable token ({why})")]
    Answer { registry: String, why: &'static str },
}

/// An ECR private registry: `<account>.dkr.ecr.<region>.amazonaws.com`
/// (`.amazonaws.com.cn` in the China regions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    account: String,
    region: String,
    host: String,
}

impl Registry {
    /// Reads a registry host (no scheme, no path). `Ok(None)` for a host
    /// that is not AWS's; an error for one that is, but malformed (a typo
    /// in the account or region would otherwise surface as a DNS failure).
    pub fn parse(host: &str) -> Result<Option<Self>, Error> {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(port)),
            _ => (host, None),
        };
        let lower = name.to_ascii_lowercase();
        let Some(rest) = lower.strip_suffix(".amazonaws.com.cn").or_else(|| lower.strip_suffix(".amazonaws.com"))
        else {
            return Ok(None);
        };
        if !rest.contains(".dkr.ecr") {
            return Ok(None);
        }
        let bad = |why: String| Err(Error::Host { host: host.into(), why });
        if port.is_some() {
            return bad("ECR registries are reached on port 443: leave the port out".into());
        }
        let china = lower.ends_with(".cn");
        let Some((account, region)) = rest.split_once(".dkr.ecr.") else {
            return bad("expected .dkr.ecr.<region> after the account".into());
        };
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return bad(format!("the account {account:?} is not 12 digits"));
        }
        if let Err(e) = arn::check_region(region) {
            return bad(e.to_string());
        }
        if china != (arn::partition_of_region(region) == "aws-cn") {
            return bad(format!("region {region} is not served under {}", if china { ".cn" } else { ".com" }));
        }
        if name != lower {
            return bad("write it in lower case, as AWS does".into());
        }
        Ok(Some(Self { account: account.into(), region: region.into(), host: lower }))
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The partition of the registry's region (`aws`, `aws-cn`, …).
    pub fn partition(&self) -> &'static str {
        arn::partition_of_region(&self.region)
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.host)
    }
}

/// A registry login from ECR: user name `AWS` and a password, both from the
/// decoded `authorizationToken` (`AWS:<password>`).
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Gets a registry login for `registry` with the identity of `config`
/// (whose region must be the registry's: tokens are regional). `secret` is told the token and
/// the password as soon as they exist, before anything could print them.
pub async fn login(config: &SdkConfig, registry: &Registry, secret: &dyn Fn(&str)) -> Result<Login, Error> {
    let answer = aws_sdk_ecr::Client::new(config)
        .get_authorization_token()
        // No registryIds (deprecated): the token opens every registry the
        // caller may pull from, another account's too.
        .send()
        // Untraced: the SDK's debug trace prints the answer, token and all
        // (ECR's model does not mark it sensitive), before `secret` has it.
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await
        .map_err(|e| Error::Token { registry: registry.to_string(), message: super::sdk_message(&e) })?;
    let answer_error = |why| Error::Answer { registry: registry.to_string(), why };
    let token = answer
        .authorization_data()
        .iter()
        .find_map(|data| data.authorization_token())
        .ok_or_else(|| answer_error("no authorizationToken"))?;
    secret(token);
    decode(token).inspect(|login| secret(&login.password)).map_err(answer_error)
}

/// `base64("AWS:<password>")` into its user and password.
fn decode(token: &str) -> Result<Login, &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| "not base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "not text")?;
    let (user, password) = text.split_once(':').ok_or("no user:password")?;
    if user.is_empty() || password.is_empty() {
        return Err("an empty user or password");
    }
    Ok(Login { user: user.into(), password: password.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts() {
        let ok = |host: &str, account: &str, region: &str, partition: &str| {
            let registry = Registry::parse(host).unwrap().unwrap_or_else(|| panic!("{host} is ECR"));
            assert_eq!((registry.account(), registry.region(), registry.partition()), (account, region, partition));
        };
        ok("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", "aws");
        ok("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012", "cn-north-1", "aws-cn");
        ok("123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", "123456789012", "us-gov-west-1", "aws-us-gov");
        for other in ["registry.example.com", "127.0.0.1:5000", "ghcr.io", "s3.amazonaws.com", "public.ecr.aws"] {
            assert_eq!(Registry::parse(other), Ok(None), "{other}");
        }
    }

    #[test]
    fn malformed_ecr_hosts_are_refused_with_the_reason() {
        let why = |host: &str| Registry::parse(host).unwrap_err().to_string();
        assert!(why("12345678901.dkr.ecr.eu-west-1.amazonaws.com").contains("not 12 digits"));
        assert!(why("12345678901a.dkr.ecr.eu-west-1.amazonaws.com").contains("not 12 digits"));
        assert!(why("123456789012.dkr.ecr.europe.amazonaws.com").contains("not an AWS region"));
        assert!(why("123456789012.dkr.ecr.eu-west-1.amazonaws.com.cn").contains("not served under .cn"));
        assert!(why("123456789012.dkr.ecr.cn-north-1.amazonaws.com").contains("not served under .com"));
        assert!(why("123456789012.dkr.ecr.eu-west-1.amazonaws.com:443").contains("leave the port out"));
        assert!(why("123456789012.dkr.ecr-eu-west-1.amazonaws.com").contains("expected .dkr.ecr.<region>"));
        assert!(why("123456789012.DKR.ecr.eu-west-1.amazonaws.com").contains("lower case"));
    }

    #[test]
    fn tokens_decode_to_user_and_password() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:eyJwYXlsb2FkIjoi");
        let login = decode(&token).unwrap();
        assert_eq!((login.user.as_str(), login.password.as_str()), ("AWS", "eyJwYXlsb2FkIjoi"));
        assert!(!format!("{login:?}").contains("eyJ"), "Debug shows no password");
        assert_eq!(decode("%%%").unwrap_err(), "not base64");
        let no_colon = base64::engine::general_purpose::STANDARD.encode("AWS");
        assert_eq!(decode(&no_colon).unwrap_err(), "no user:password");
    }
}

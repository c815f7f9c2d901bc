//! Syntax checks for IAM role ARNs and region names, done before any call to
//! AWS so that a typo is reported against its input, not as an STS error.

use std::fmt;

/// A role ARN that failed the syntax check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{0:?} is not a role ARN: expected arn:<partition>:iam::<12-digit account>:role/<name>")]
    Shape(String),
    #[error("{arn:?} has partition {partition:?}; expected aws, aws-cn, aws-us-gov or aws-iso*")]
    Partition { arn: String, partition: String },
    #[error("{arn:?} has account {account:?}; expected 12 digits")]
    Account { arn: String, account: String },
    #[error("{arn:?} has an empty or invalid role name {name:?}")]
    RoleName { arn: String, name: String },
    #[error("{0:?} is not an AWS region name (such as eu-west-1)")]
    Region(String),
}

/// A syntactically valid IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    partition: String,
    account: String,
    /// The role's name (the part after the last `/` of the resource).
    name: String,
}

impl RoleArn {
    /// Checks `arn:<partition>:iam::<account>:role/[<path>/]<name>`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let arn = text.trim().to_string();
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(Error::Shape(arn));
        };
        if prefix != "arn" || service != "iam" || !region.is_empty() || !resource.starts_with("role/") {
            return Err(Error::Shape(arn));
        }
        if !valid_partition(partition) {
            return Err(Error::Partition { partition: partition.into(), arn });
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Account { account: account.into(), arn });
        }
        let name = resource.rsplit('/').next().unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        let path_ok = resource.split('/').skip(1).all(|segment| segment.chars().all(allowed));
        if name.is_empty() || name.len() > 64 || !path_ok {
            return Err(Error::RoleName { name: name.into(), arn });
        }
        Ok(Self { partition: partition.into(), account: account.into(), name: name.into(), arn })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

fn valid_partition(partition: &str) -> bool {
    matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        || partition.strip_prefix("aws-iso").is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// Checks a region name: lower-case words and a number, such as `eu-west-1`,
/// `us-gov-west-1`, `cn-north-1` or `us-isob-east-1`.
/// The partition a region belongs to (`cn-north-1` → `aws-cn`).
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

pub fn check_region(region: &str) -> Result<(), Error> {
    let parts: Vec<&str> = region.split('-').collect();
    let words_ok = parts.len() >= 3
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()));
    let number_ok =
        parts.last().is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()));
    if words_ok && number_ok { Ok(()) } else { Err(Error::Region(region.into())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        let ok = |arn: &str, account: &str, name: &str| {
            let parsed = RoleArn::parse(arn).unwrap_or_else(|e| panic!("{arn}: {e}"));
            assert_eq!((parsed.account(), parsed.name()), (account, name), "{arn}");
        };
        ok("arn:aws:iam::222222222222:role/deployer", "222222222222", "deployer");
        ok("arn:aws-cn:iam::123456789012:role/ci/deploy-web", "123456789012", "deploy-web");
        ok("arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e@f_g-h", "123456789012", "a+b=c,d.e@f_g-h");
        ok("arn:aws-iso:iam::123456789012:role/x", "123456789012", "x");
        ok("arn:aws-iso-b:iam::123456789012:role/x", "123456789012", "x");
        ok("  arn:aws:iam::123456789012:role/x ", "123456789012", "x");
    }

    #[test]
    fn bad_role_arns() {
        let bad = |arn: &str| RoleArn::parse(arn).expect_err(arn);
        assert!(matches!(bad("deployer"), Error::Shape(_)));
        assert!(matches!(bad("arn:aws:iam::222222222222:user/bob"), Error::Shape(_)));
        assert!(matches!(bad("arn:aws:sts::222222222222:role/x"), Error::Shape(_)));
        assert!(matches!(bad("arn:aws:iam:eu-west-1:222222222222:role/x"), Error::Shape(_)));
        assert!(matches!(bad("arn:azure:iam::222222222222:role/x"), Error::Partition { .. }));
        assert!(matches!(bad("arn:aws-isolde:iam::222222222222:role/x"), Error::Partition { .. }));
        assert!(matches!(bad("arn:aws:iam::22222222222:role/x"), Error::Account { .. }));
        assert!(matches!(bad("arn:aws:iam::2222222222a2:role/x"), Error::Account { .. }));
        assert!(matches!(bad("arn:aws:iam::222222222222:role/"), Error::RoleName { .. }));
        assert!(matches!(bad("arn:aws:iam::222222222222:role/a b"), Error::RoleName { .. }));
        assert!(bad("arn:aws:iam::22:role/x").to_string().contains("12 digits"));
    }

    #[test]
    fn regions() {
        for ok in ["eu-west-1", "us-east-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1", "ap-southeast-10"] {
            assert_eq!(check_region(ok), Ok(()), "{ok}");
        }
        for bad in ["", "eu-west", "EU-WEST-1", "eu_west_1", "eu--1", "eu-west-one", "eu-west-123", "https://x"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }
}

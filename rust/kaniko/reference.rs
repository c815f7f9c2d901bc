//! Image references, with the grammar of the distribution project
//! (`[domain[:port]/]path[:tag][@digest]`), so that a bad destination is
//! refused before a pod starts rather than by kaniko after a build.

use std::fmt;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The registry host (and port), if the reference names one.
    pub domain: Option<String>,
    /// The repository path below the registry.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageReference {
    /// `domain/path`, without tag or digest.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// `repository@digest`.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository())
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses a reference; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<ImageReference, String> {
    if text.is_empty() {
        return Err("an image reference is empty".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("image reference {text:?} contains white space"));
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(check_digest(text, digest)?)),
        None => (text, None),
    };
    // A tag follows the last ':' that comes after the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(at) => (&rest[..last_slash + at], Some(&rest[last_slash + at + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(text, tag)?;
    }
    if name.len() > 255 {
        return Err(format!("image reference {text:?}: the repository name is longer than 255 characters"));
    }
    let (domain, path) = split_domain(name);
    if let Some(domain) = domain {
        check_domain(text, domain)?;
    }
    if path.is_empty() {
        return Err(format!("image reference {text:?} has no repository"));
    }
    for component in path.split('/') {
        check_path_component(text, component)?;
    }
    Ok(ImageReference {
        domain: domain.map(str::to_string),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// Parses a reference kaniko pushes to (a destination or the cache repository). kaniko reads
/// these with go-containerregistry's `name.NewTag` (pkg/name, v0.21.9), which is stricter
/// than the distribution grammar [`parse`] follows: the first component is a registry
/// only when it is `localhost` or has a `.` or `:` (an upper-case `Registry/app` is a
/// repository name, and upper case is not allowed in one), and the repository below the
/// registry has at least 2 characters.
pub fn parse_push_target(text: &str) -> Result<ImageReference, String> {
    let parsed = parse(text)?;
    if let Some(domain) = &parsed.domain
        && !(domain == "localhost" || domain.contains(['.', ':']))
    {
        return Err(format!(
            "image reference {text:?}: kaniko does not take {domain:?} for a registry (a registry host has a '.' or a \
             port, or is localhost), and as part of the repository name it is not lower case"
        ));
    }
    if parsed.path.len() < 2 {
        return Err(format!(
            "image reference {text:?}: the repository name {:?} is shorter than the 2 characters kaniko requires",
            parsed.path
        ));
    }
    Ok(parsed)
}

/// The repository kaniko caches layers in when it is given none: `<repository>/cache` of
/// the first destination, named as go-containerregistry names its repository (Docker
/// Hub's `index.docker.io`, with `library/` before a one-component name), as in
/// pkg/cache/cache.go `Destination` (kaniko v1.28.3).
pub fn default_cache_repository(destination: &ImageReference) -> String {
    let registry = match destination.domain.as_deref() {
        None | Some("docker.io") | Some("index.docker.io") => "index.docker.io",
        Some(domain) => domain,
    };
    let library = if registry == "index.docker.io" && !destination.path.contains('/') { "library/" } else { "" };
    format!("{registry}/{library}{}/cache", destination.path)
}

/// The first component is a registry when it looks like a host: it has a
/// dot or a port, or is `localhost` (as Docker decides).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') => {
            (Some(first), rest)
        }
        Some((first, rest)) if first.chars().any(|c| c.is_ascii_uppercase()) => (Some(first), rest),
        _ => (None, name),
    }
}

fn check_domain(text: &str, domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || domain.starts_with('[') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("image reference {text:?}: registry port {port:?} is not a number"));
    }
    if host.starts_with('[') && host.ends_with(']') {
        return Ok(());
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    if !host.split('.').all(component_ok) {
        return Err(format!("image reference {text:?}: {host:?} is not a valid registry host"));
    }
    Ok(())
}

fn check_path_component(text: &str, component: &str) -> Result<(), String> {
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("image reference {text:?}: repository names must be lower case ({component:?})"));
    }
    // [a-z0-9]+ separated by '.', '_', '__' or one or more '-'.
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = !bytes.is_empty() && alnum(bytes[0]) && alnum(bytes[bytes.len() - 1]) && {
        let mut ok = true;
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            ok &= sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        }
        ok
    };
    if !valid {
        return Err(format!(
            "image reference {text:?}: {component:?} is not a valid repository component (lower-case letters and digits, separated by '.', '_', '__' or '-')"
        ));
    }
    Ok(())
}

fn check_tag(text: &str, tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let valid = tag.len() <= 128
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-');
    if !valid {
        return Err(format!(
            "image reference {text:?}: tag {tag:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

fn check_digest(text: &str, digest: &str) -> Result<String, String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("image reference {text:?}: digest {digest:?} must be algorithm:hex"));
    };
    let expected = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("image reference {text:?}: unknown digest algorithm {algorithm:?}")),
    };
    if hex.len() != expected || !hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        return Err(format!("image reference {text:?}: a {algorithm} digest is {expected} lower-case hex digits"));
    }
    Ok(digest.to_string())
}

/// Whether a value is a digest as kaniko writes it: `sha256:` + 64 hex.
pub fn is_sha256_digest(value: &str) -> bool {
    value
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

/// A destination: a tag to push, not a digest.
pub fn parse_destination(text: &str) -> Result<ImageReference, String> {
    let parsed = parse_push_target(text)?;
    if parsed.digest.is_some() {
        return Err(format!("{text:?}: a destination names a tag to push, not a digest"));
    }
    Ok(parsed)
}

/// The `cacheRepo`: a repository, without tag or digest.
pub fn parse_cache_repository(text: &str) -> Result<ImageReference, String> {
    let parsed = parse_push_target(text)?;
    if parsed.tag.is_some() || parsed.digest.is_some() {
        return Err(format!("{text:?} must be a repository, without tag or digest"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn valid_references() {
        let r = parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:main_42").unwrap();
        assert_eq!(r.domain.as_deref(), Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com"));
        assert_eq!(r.path, "team/web");
        assert_eq!(r.tag.as_deref(), Some("main_42"));
        let r = parse("localhost:5000/app").unwrap();
        assert_eq!((r.domain.as_deref(), r.tag), (Some("localhost:5000"), None));
        let r = parse("127.0.0.1:5000/a/b-c__d.e:1.0").unwrap();
        assert_eq!(r.repository(), "127.0.0.1:5000/a/b-c__d.e");
        let r = parse(&format!("registry.local/app@{DIGEST}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(DIGEST));
        assert_eq!(parse("busybox").unwrap().domain, None);
        assert_eq!(parse("library/busybox:1").unwrap().path, "library/busybox");
        assert_eq!(
            parse("ghcr.io/osscontainertools/kaniko:v1.28.3").unwrap().to_string(),
            "ghcr.io/osscontainertools/kaniko:v1.28.3"
        );
    }

    #[test]
    fn invalid_references_say_why() {
        let cases = [
            ("registry.local/App:1", "lower case"),
            ("registry.local/app name:1", "white space"),
            ("registry.local/:1", "no repository"),
            ("registry.local/", "no repository"),
            ("registry.local/app:", "tag"),
            ("registry.local/app:-x", "tag"),
            ("registry.local/app@sha256:abc", "64 lower-case hex"),
            ("registry.local/app@md5:abc", "unknown digest algorithm"),
            ("registry.local:port/app", "port"),
            ("registry..local/app", "registry host"),
            ("a/-b", "not a valid repository component"),
            ("a/b--", "not a valid repository component"),
            ("a/b...c", "not a valid repository component"),
            ("", "empty"),
        ];
        for (text, why) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        assert!(parse(&format!("r.io/{}", "a".repeat(260))).unwrap_err().contains("255"));
        assert!(parse(&format!("r.io/a:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn push_targets_follow_go_containerregistry() {
        for ok in ["registry.local/app:1", "localhost/ab", "127.0.0.1:5000/a/b", "Registry.Example.com/app", "busybox"]
        {
            assert!(parse_push_target(ok).is_ok(), "{ok}");
        }
        let upper = parse_push_target("MyRegistry/app:1").unwrap_err();
        assert!(upper.contains("\"MyRegistry\"") && upper.contains("registry"), "{upper}");
        for short in ["registry.local/a:1", "a", "localhost/b"] {
            let err = parse_push_target(short).unwrap_err();
            assert!(err.contains("2 characters"), "{short}: {err}");
        }
        // The distribution grammar alone accepts both (a pod's image may be named so).
        assert!(parse("MyRegistry/app:1").is_ok() && parse("registry.local/a").is_ok());
    }

    #[test]
    fn default_cache_repositories_as_kaniko_derives_them() {
        let cache = |text: &str| default_cache_repository(&parse(text).unwrap());
        assert_eq!(cache("registry.local/team/app:1"), "registry.local/team/app/cache");
        assert_eq!(cache("127.0.0.1:5000/app"), "127.0.0.1:5000/app/cache");
        assert_eq!(cache("app:1"), "index.docker.io/library/app/cache");
        assert_eq!(cache("docker.io/team/app"), "index.docker.io/team/app/cache");
    }

    #[test]
    fn digests() {
        assert!(is_sha256_digest(DIGEST));
        assert!(!is_sha256_digest("sha256:ABC"));
        assert!(!is_sha256_digest(&DIGEST[..70]));
    }

    #[test]
    fn destinations_are_tags_and_cache_repositories_are_bare() {
        assert!(parse_destination("registry.local/app:1").is_ok());
        assert!(parse_destination(&format!("registry.local/app@sha256:{}", "a".repeat(64))).is_err());
        assert!(parse_cache_repository("registry.local/cache").is_ok());
        assert!(parse_cache_repository("registry.local/cache:1").unwrap_err().contains("without tag or digest"));
    }
}

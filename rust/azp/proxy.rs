//! The agent's web proxy, as it gives it to tasks: the `Agent.ProxyUrl`,
//! `Agent.ProxyUsername`, `Agent.ProxyPassword` (a secret variable) and
//! `Agent.ProxyBypassList` variables.
//!
//! Upstream (azure-pipelines-agent v5.278.0): `ExecutionContext.cs` sets the
//! variables when the agent has a proxy (the password with `isSecret: true`,
//! the bypass list as a JSON array); `Handler.cs` `AddVariablesToEnvironment`
//! hands a Node handler each public variable as its mangled name
//! (`AGENT_PROXYURL`) and each secret one as `SECRET_<NAME>`
//! (`SECRET_AGENT_PROXYPASSWORD`).
//!
//! What goes around the proxy follows what a Node task gets from
//! azure-pipelines-task-lib 5.2.10 `getHttpProxyConfiguration`: a bypass
//! entry — a regular expression, case-insensitive, not anchored
//! (`new RegExp(entry, 'i').test(url)`) — that matches; nothing else (unlike
//! the agent's own traffic, loopback is not special). A connection does not
//! know a request's path, so the text matched is the one the agent's
//! `Agent.Sdk/AgentWebProxy.cs` matches: `scheme://host`, with `:port` only
//! when not the scheme's default. Credentials are used only when both
//! username and password are set (AgentWebProxy). Regular expressions are
//! read by regex-lite: ECMAScript's look-arounds and back-references are
//! refused with an error naming the entry.

use base64::Engine as _;
use hyper::Uri;

use super::{Env, Secret};

/// The variables, as the agent's Node handler sets them.
pub const URL_VAR: &str = "AGENT_PROXYURL";
pub const USERNAME_VAR: &str = "AGENT_PROXYUSERNAME";
pub const PASSWORD_VAR: &str = "SECRET_AGENT_PROXYPASSWORD";
pub const BYPASS_VAR: &str = "AGENT_PROXYBYPASSLIST";

/// Proxy settings that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Agent.ProxyUrl {url:?} is not a proxy URL: {reason} (the agent's proxy is set with `config.sh --proxyurl http://HOST:PORT` or in its .proxy file)"
    )]
    Url { url: String, reason: String },
    #[error("Agent.ProxyBypassList is not a JSON array of regular expressions: {0}")]
    BypassList(String),
    #[error("Agent.ProxyBypassList entry {entry:?} is not a regular expression this task understands: {reason}")]
    BypassEntry { entry: String, reason: String },
}

/// The agent's proxy: where connections go, with which credentials, and
/// which destinations go around it.
#[derive(Clone)]
pub struct ProxySettings {
    /// `http://host:port`, without credentials.
    address: Uri,
    username: Option<String>,
    password: Option<Secret>,
    bypass: Vec<(String, regex_lite::Regex)>,
}

impl std::fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("address", &self.address.to_string())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("bypass", &self.bypass.iter().map(|(e, _)| e).collect::<Vec<_>>())
            .finish()
    }
}

/// What the kubeconfig's exec entry (`azp-kube eks-token`) needs to reach
/// STS the same way: written to the step's private folder only.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handover {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub bypass_list: Vec<String>,
}

impl ProxySettings {
    /// The agent's proxy, if it has one.
    pub fn read(env: &Env) -> Result<Option<Self>, Error> {
        let Some(url) = env.var(URL_VAR) else { return Ok(None) };
        let bypass_list: Vec<String> = match env.var(BYPASS_VAR) {
            Some(json) => serde_json::from_str(json).map_err(|e| Error::BypassList(e.to_string()))?,
            None => Vec::new(),
        };
        let handover = Handover {
            url: url.to_string(),
            username: env.var(USERNAME_VAR).map(str::to_string),
            password: env.var(PASSWORD_VAR).map(str::to_string),
            bypass_list,
        };
        Self::from_handover(&handover).map(Some)
    }

    /// Settings from their parts (the agent's variables, or a handover).
    pub fn from_handover(parts: &Handover) -> Result<Self, Error> {
        let url = parts.url.trim();
        let bad = |reason: &str| Error::Url { url: url.to_string(), reason: reason.to_string() };
        let parsed: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        if parsed.scheme_str() != Some("http") {
            return Err(bad(
                "only http:// proxies are supported (the connection to the proxy is plain HTTP, then a CONNECT tunnel)",
            ));
        }
        let authority = parsed.authority().ok_or_else(|| bad("it names no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials belong in Agent.ProxyUsername and Agent.ProxyPassword, not in the URL"));
        }
        if authority.host().is_empty() {
            return Err(bad("it names no host"));
        }
        let port = authority.port_u16().unwrap_or(80);
        let address: Uri =
            format!("http://{}:{port}", authority.host()).parse().map_err(|_| bad("it names no host"))?;
        let mut bypass = Vec::new();
        for entry in parts.bypass_list.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let regex = regex_lite::RegexBuilder::new(entry)
                .case_insensitive(true)
                .build()
                .map_err(|e| Error::BypassEntry { entry: entry.to_string(), reason: e.to_string() })?;
            bypass.push((entry.to_string(), regex));
        }
        let nonempty = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Self {
            address,
            username: nonempty(&parts.username),
            password: nonempty(&parts.password).map(Secret::new),
            bypass,
        })
    }

    /// The parts, for the exec entry's handover.
    pub fn handover(&self) -> Handover {
        Handover {
            url: self.address.to_string().trim_end_matches('/').to_string(),
            username: self.username.clone(),
            password: self.password.as_ref().map(|p| p.expose().to_string()),
            bypass_list: self.bypass.iter().map(|(e, _)| e.clone()).collect(),
        }
    }

    /// The bypass list's entries, as given.
    pub fn bypass_list(&self) -> impl Iterator<Item = &str> {
        self.bypass.iter().map(|(entry, _)| entry.as_str())
    }

    /// The password, to register as a secret.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The proxy's address, `http://host:port` (no credentials: for messages).
    pub fn address(&self) -> &Uri {
        &self.address
    }

    /// Whether a connection to `url` goes around the proxy: a bypass entry
    /// matches `scheme://host[:port]`.
    pub fn bypasses(&self, url: &Uri) -> bool {
        let host = url.host().unwrap_or_default();
        let scheme = url.scheme_str().unwrap_or("http");
        let default_port = if scheme == "https" { 443 } else { 80 };
        let target = match url.port_u16() {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        };
        self.bypass.iter().any(|(_, regex)| regex.is_match(&target))
    }

    /// `Basic base64(username:password)`, when both are set (AgentWebProxy).
    pub fn basic_auth(&self) -> Option<Secret> {
        let (user, password) = (self.username.as_ref()?, self.password.as_ref()?);
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
        Some(Secret::new(format!("Basic {encoded}")))
    }

    /// The proxy as a URL with its credentials (percent-encoded), the form
    /// `HTTPS_PROXY` and kube's `proxy_url` take: `http://user:pass@host:port`.
    pub fn url_with_credentials(&self) -> Secret {
        let host = self.address.authority().map(|a| a.as_str()).unwrap_or_default();
        match (&self.username, &self.password) {
            (Some(user), Some(password)) => {
                Secret::new(format!("http://{}:{}@{host}", percent_encode(user), percent_encode(password.expose())))
            }
            _ => Secret::new(format!("http://{host}")),
        }
    }

    /// The bypass list as `NO_PROXY` entries (Go's syntax: a host, a
    /// `.suffix`, a `host:port`), and the entries that have no such form.
    /// Only a regular expression that is a literal host, optionally with a
    /// scheme, a port, `^`/`$` anchors and a leading `.*`/`.*\.`
    /// (any subdomain), converts; anything else (alternations, classes,
    /// paths) cannot be said in `NO_PROXY`.
    pub fn no_proxy(&self) -> (String, Vec<String>) {
        let mut hosts = Vec::new();
        let mut unconverted = Vec::new();
        for (entry, _) in &self.bypass {
            match no_proxy_entry(entry) {
                Some(host) => hosts.push(host),
                None => unconverted.push(entry.clone()),
            }
        }
        (hosts.join(","), unconverted)
    }

    /// What helm's environment gets: `HTTPS_PROXY` and `HTTP_PROXY` (with the
    /// credentials: Go's proxy support takes them only from the URL) and
    /// `NO_PROXY`; the entries that could not be converted are returned too.
    pub fn child_env(&self) -> (Vec<(String, Secret)>, Vec<String>) {
        let url = self.url_with_credentials();
        let (no_proxy, unconverted) = self.no_proxy();
        let env = vec![
            ("HTTPS_PROXY".to_string(), url.clone()),
            ("HTTP_PROXY".to_string(), url),
            ("NO_PROXY".to_string(), Secret::new(no_proxy)),
        ];
        (env, unconverted)
    }
}

/// The proxy for a connection to `url`, or `None` to connect directly.
pub fn route<'a>(proxy: Option<&'a ProxySettings>, url: &Uri) -> Option<&'a ProxySettings> {
    proxy.filter(|p| !p.bypasses(url))
}

/// RFC 3986 userinfo: unreserved characters stay, everything else is %XX.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One bypass regular expression as a `NO_PROXY` entry, when it is a literal host.
fn no_proxy_entry(entry: &str) -> Option<String> {
    let mut rest = entry.trim_start_matches('^').trim_end_matches('$');
    for scheme in ["https?://", "https://", "http://", "https?:\\/\\/", "https:\\/\\/", "http:\\/\\/"] {
        rest = rest.strip_prefix(scheme).unwrap_or(rest);
    }
    let mut suffix = false;
    for any in ["(.*\\.)?", ".*\\.", ".*"] {
        if let Some(r) = rest.strip_prefix(any) {
            rest = r;
            suffix = true;
            break;
        }
    }
    let host = rest.replace("\\.", ".");
    let literal = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    literal.then(|| if suffix && !host.starts_with('.') { format!(".{host}") } else { host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<ProxySettings>, Error> {
        ProxySettings::read(&Env::from_vars(vars.iter().copied()))
    }

    fn proxy(bypass: &str) -> ProxySettings {
        settings(&[(URL_VAR, "http://proxy.corp:3128"), (BYPASS_VAR, bypass)]).unwrap().unwrap()
    }

    #[test]
    fn no_url_is_no_proxy() {
        assert!(settings(&[(USERNAME_VAR, "u")]).unwrap().is_none());
    }

    #[test]
    fn a_bad_url_names_the_variable() {
        for url in ["proxy.corp:3128", "https://proxy.corp", "http://u:p@proxy.corp", "http:// bad", "socks5://p:1"] {
            let error = settings(&[(URL_VAR, url)]).unwrap_err().to_string();
            assert!(error.starts_with("Agent.ProxyUrl"), "{url}: {error}");
        }
        let error = settings(&[(URL_VAR, "http://p:1"), (BYPASS_VAR, "x")]).unwrap_err().to_string();
        assert!(error.contains("Agent.ProxyBypassList"), "{error}");
        let error = settings(&[(URL_VAR, "http://p:1"), (BYPASS_VAR, r#"["(unclosed"]"#)]).unwrap_err().to_string();
        assert!(error.contains("(unclosed"), "{error}");
    }

    #[test]
    fn the_bypass_list_matches_as_the_agent_does() {
        let p = proxy(r#"["\\.internal\\.corp$", "^https://s3\\.eu-west-1", "EKS"]"#);
        let bypassed = |url: &str| p.bypasses(&url.parse().unwrap());
        assert!(bypassed("https://api.internal.corp/x"), "the path is not part of what is matched");
        assert!(!bypassed("https://api.internal.corp:8443"), "a port that is not the default is");
        assert!(bypassed("https://s3.eu-west-1.amazonaws.com"));
        assert!(!bypassed("http://s3.eu-west-1.amazonaws.com"));
        assert!(bypassed("https://abc.gr7.eu-west-1.eks.amazonaws.com"), "case-insensitive");
        assert!(!bypassed("https://sts.amazonaws.com"));
        assert!(!bypassed("https://127.0.0.1:6443") && !bypassed("http://localhost"), "loopback is not special");
        let loopback = proxy(r#"["^https://127\\.0\\.0\\.1:6443$"]"#);
        assert!(loopback.bypasses(&"https://127.0.0.1:6443/version".parse().unwrap()));
    }

    #[test]
    fn credentials_need_both_parts_and_are_encoded() {
        let both = settings(&[(URL_VAR, "http://p:8080"), (USERNAME_VAR, "me@corp"), (PASSWORD_VAR, "p:w/d")])
            .unwrap()
            .unwrap();
        assert_eq!(both.url_with_credentials().expose(), "http://me%40corp:p%3Aw%2Fd@p:8080");
        assert_eq!(both.basic_auth().unwrap().expose(), "Basic bWVAY29ycDpwOncvZA==");
        assert!(!format!("{both:?}").contains("p:w/d"));
        let user_only = settings(&[(URL_VAR, "http://p"), (USERNAME_VAR, "me")]).unwrap().unwrap();
        assert!(user_only.basic_auth().is_none());
        assert_eq!(user_only.url_with_credentials().expose(), "http://p:80");
        let back = ProxySettings::from_handover(&both.handover()).unwrap();
        assert_eq!(back.handover(), both.handover());
    }

    #[test]
    fn no_proxy_converts_literal_hosts_only() {
        let p = proxy(
            r#"["^registry\\.corp$", "https://git\\.corp", ".*\\.svc\\.local", "(.*\\.)?amazonaws\\.com", "host:8080", "a|b", "[0-9]+\\.corp"]"#,
        );
        let (hosts, unconverted) = p.no_proxy();
        assert_eq!(hosts, "registry.corp,git.corp,.svc.local,.amazonaws.com,host:8080");
        assert_eq!(unconverted, ["a|b", "[0-9]+\\.corp"]);
    }
}

//! Authentication and authorization hooks.
//!
//! Bearer tokens are resolved by a chain of [`Authenticator`]s (the admin token and minted
//! service-account tokens are built in; the EKS token authenticator plugs in later), and
//! every request is checked by one [`Authorizer`] (allow-all until RBAC plugs in).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name (`admin`, `system:serviceaccount:ns:name`).
    pub username: String,
    /// Groups, including `system:authenticated`.
    pub groups: Vec<String>,
}

/// What a request does, in the terms authorizers decide on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// API group; empty for core.
    pub group: String,
    /// Plural resource; empty for non-resource requests.
    pub resource: String,
    /// Subresource (`log`, `status`), or empty.
    pub subresource: String,
    /// Namespace, or empty.
    pub namespace: String,
    /// Object name, or empty.
    pub name: String,
    /// Path of a non-resource request (`/version`).
    pub path: String,
}

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied, with the reason an access review reports.
    Deny(String),
}

/// Resolves a bearer token to a user.
pub trait Authenticator: Send + Sync {
    /// The user the token belongs to, or None when this authenticator does not know it.
    fn authenticate(&self, token: &str) -> Option<UserInfo>;
}

/// Decides whether a user may do something.
pub trait Authorizer: Send + Sync {
    /// Allow or deny one request.
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision;

    /// The PolicyRules that apply to `user` in `namespace` (SelfSubjectRulesReview), if
    /// this authorizer can list them.
    fn rules(&self, _user: &UserInfo, _namespace: &str) -> Option<Vec<serde_json::Value>> {
        None
    }
}

/// Allows every authenticated request (the world before RBAC).
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &UserInfo, _: &Attributes) -> Decision {
        Decision::Allow
    }
}

/// The authentication and authorization state of the simulator.
pub struct Auth {
    tokens: RwLock<HashMap<String, UserInfo>>,
    authenticators: RwLock<Vec<Arc<dyn Authenticator>>>,
    authorizer: RwLock<Arc<dyn Authorizer>>,
}

impl Auth {
    /// Auth with one admin token (user `admin`, group `system:masters`).
    pub fn new(admin_token: &str) -> Self {
        let admin =
            UserInfo { username: "admin".into(), groups: vec!["system:masters".into(), "system:authenticated".into()] };
        Self {
            tokens: RwLock::new(HashMap::from([(admin_token.to_string(), admin)])),
            authenticators: RwLock::new(Vec::new()),
            authorizer: RwLock::new(Arc::new(AllowAll)),
        }
    }

    /// Mints a token for the service account `namespace/name`.
    pub fn mint_service_account_token(&self, namespace: &str, name: &str) -> String {
        let token = format!("sa.{}", random_token());
        let user = UserInfo {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        };
        self.tokens.write().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), user);
        token
    }

    /// Adds an authenticator, asked after the built-in tokens.
    pub fn add_authenticator(&self, authenticator: Arc<dyn Authenticator>) {
        self.authenticators.write().unwrap_or_else(|e| e.into_inner()).push(authenticator);
    }

    /// Replaces the authorizer.
    pub fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        *self.authorizer.write().unwrap_or_else(|e| e.into_inner()) = authorizer;
    }

    /// The user for an `Authorization` header value, if any authenticator knows it.
    pub fn authenticate(&self, header: Option<&str>) -> Option<UserInfo> {
        let token = header?.strip_prefix("Bearer ")?.trim();
        if let Some(user) = self.tokens.read().unwrap_or_else(|e| e.into_inner()).get(token) {
            return Some(user.clone());
        }
        let chain = self.authenticators.read().unwrap_or_else(|e| e.into_inner()).clone();
        chain.iter().find_map(|a| a.authenticate(token))
    }

    /// The rules the authorizer lists for a user, if it can.
    pub fn rules(&self, user: &UserInfo, namespace: &str) -> Option<Vec<serde_json::Value>> {
        let authorizer = self.authorizer.read().unwrap_or_else(|e| e.into_inner()).clone();
        authorizer.rules(user, namespace)
    }

    /// The authorizer's decision.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        let authorizer = self.authorizer.read().unwrap_or_else(|e| e.into_inner()).clone();
        authorizer.authorize(user, attrs)
    }
}

/// The message of a 403, worded like the real API server's.
pub fn forbidden_message(user: &UserInfo, attrs: &Attributes) -> String {
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let mut text = format!(
        "{}{} is forbidden: User \"{}\" cannot {} resource \"{}\" in API group \"{}\"",
        attrs.resource,
        if attrs.name.is_empty() { String::new() } else { format!(" \"{}\"", attrs.name) },
        user.username,
        attrs.verb,
        resource,
        attrs.group
    );
    if attrs.namespace.is_empty() {
        text.push_str(" at the cluster scope");
    } else {
        text.push_str(&format!(" in the namespace \"{}\"", attrs.namespace));
    }
    text
}

/// A random token of 32 hex characters.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resolve_to_users() {
        let auth = Auth::new("admin-token");
        assert_eq!(auth.authenticate(Some("Bearer admin-token")).map(|u| u.username), Some("admin".into()));
        let sa = auth.mint_service_account_token("ns", "builder");
        let user = auth.authenticate(Some(&format!("Bearer {sa}"))).expect("sa");
        assert_eq!(user.username, "system:serviceaccount:ns:builder");
        assert_eq!(auth.authenticate(Some("Bearer nope")), None);
        assert_eq!(auth.authenticate(None), None);
    }

    #[test]
    fn forbidden_reads_like_the_api() {
        let user = UserInfo { username: "u".into(), groups: vec![] };
        let attrs =
            Attributes { verb: "list".into(), resource: "pods".into(), namespace: "ns".into(), ..Default::default() };
        assert_eq!(
            forbidden_message(&user, &attrs),
            "pods is forbidden: User \"u\" cannot list resource \"pods\" in API group \"\" in the namespace \"ns\""
        );
    }
}

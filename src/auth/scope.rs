use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A permission a credential needs for one kind of call. Credentials hold patterns:
/// a scope itself, or a prefix ending in `*` (`tokens:read:*`, `tokens:*`, `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `GET /tokens`: list the credential's own tokens.
    TokensRead,
    /// `POST /tokens`.
    TokensCreate,
    /// `DELETE /tokens/{id}`.
    TokensDelete,
    /// `POST /tokens` with `use_host: true`: a token on the host identity, which holds the
    /// admin's devices and their traffic. Never in the default set.
    TokensUseHost,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::TokensRead, Scope::TokensCreate, Scope::TokensDelete, Scope::TokensUseHost];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TokensRead => "tokens:read:own",
            Scope::TokensCreate => "tokens:write:create",
            Scope::TokensDelete => "tokens:write:delete",
            Scope::TokensUseHost => "tokens:write:use_host",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The validated scope patterns of one credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
#[schema(value_type = Vec<ScopeName>, example = json!(["tokens:read:*", "tokens:write:create", "tokens:write:delete"]))]
pub struct Scopes(Vec<String>);

/// One scope in the spec: a scope, or a prefix of scopes ending in `*` (the spec names
/// the usual ones; any prefix works).
pub struct ScopeName;

impl utoipa::PartialSchema for ScopeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = r"^(tokens:read:own|tokens:write:create|tokens:write:delete|tokens:write:use_host|tokens:read:\*|tokens:write:\*|tokens:\*|\*)$";
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(pattern))
            .into()
    }
}

impl ToSchema for ScopeName {}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown scope `{0}`; known scopes are tokens:read:own, tokens:write:create, tokens:write:delete, tokens:write:use_host, or a prefix of them ending in `*`"
)]
pub struct UnknownScope(String);

impl Scopes {
    /// What a new credential gets when it names none: everything about its own tokens but
    /// tokens on the host identity, which the super admin grants by name.
    pub fn default_for_new_credential() -> Self {
        Self(["tokens:read:*", "tokens:write:create", "tokens:write:delete"].map(String::from).to_vec())
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.0.iter().any(|pattern| matches(pattern, scope))
    }

    /// The space-separated form kept in the store.
    pub fn to_stored(&self) -> String {
        self.0.join(" ")
    }

    pub fn from_stored(stored: &str) -> Self {
        Self(stored.split_whitespace().map(String::from).collect())
    }
}

fn matches(pattern: &str, scope: Scope) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => scope.as_str().starts_with(prefix),
        None => pattern == scope.as_str(),
    }
}

impl TryFrom<Vec<String>> for Scopes {
    type Error = UnknownScope;

    fn try_from(patterns: Vec<String>) -> Result<Self, Self::Error> {
        let mut valid = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let wildcard_ok = pattern.strip_suffix('*').is_some_and(|p| p.is_empty() || p.ends_with(':'));
            let known = Scope::ALL.iter().any(|&s| matches(&pattern, s));
            if !known || (pattern.contains('*') && !wildcard_ok) {
                return Err(UnknownScope(pattern));
            }
            if !valid.contains(&pattern) {
                valid.push(pattern);
            }
        }
        Ok(Self(valid))
    }
}

impl From<Scopes> for Vec<String> {
    fn from(scopes: Scopes) -> Self {
        scopes.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &[&str]) -> Result<Scopes, UnknownScope> {
        Scopes::try_from(list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn wildcards_cover_their_prefix_only() {
        let read_all = scopes(&["tokens:read:*"]).unwrap();
        assert!(read_all.allows(Scope::TokensRead));
        assert!(!read_all.allows(Scope::TokensCreate));
        let write = scopes(&["tokens:write:*"]).unwrap();
        assert!(write.allows(Scope::TokensCreate) && write.allows(Scope::TokensDelete));
        assert!(!write.allows(Scope::TokensRead));
        assert!(scopes(&["*"]).unwrap().allows(Scope::TokensDelete));
    }

    #[test]
    fn unknown_and_malformed_patterns_are_refused() {
        assert!(scopes(&["tokens:admin"]).is_err());
        assert!(scopes(&["tok*"]).is_err());
        assert!(scopes(&["webhooks:*"]).is_err());
        assert!(scopes(&["tokens:*:own"]).is_err());
    }

    #[test]
    fn defaults_allow_every_token_operation_but_the_host_identity() {
        let defaults = Scopes::default_for_new_credential();
        let allowed: Vec<Scope> = Scope::ALL.into_iter().filter(|&s| defaults.allows(s)).collect();
        assert_eq!(allowed, [Scope::TokensRead, Scope::TokensCreate, Scope::TokensDelete]);
        assert!(scopes(&["tokens:write:use_host"]).unwrap().allows(Scope::TokensUseHost));
    }
}

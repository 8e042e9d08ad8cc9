use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, CredentialRow};
use crate::auth::{ClientAuth, Scopes};
use crate::db::{self, Db, is_unique_violation};
use crate::error::{ApiError, ApiResult};
use crate::secret;
use crate::time::Timestamp;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// 3–64 characters: letters, digits, `_`, `-`, `.`.
    #[schema(example = "billing-app", pattern = "^[A-Za-z0-9_.-]{3,64}$")]
    pub client_id: String,
    #[serde(default)]
    #[schema(example = "The billing service", pattern = "^[^\\u0000]*$")]
    pub description: String,
    /// Defaults to `["tokens:read:*", "tokens:write:create", "tokens:write:delete"]`.
    pub scopes: Option<Scopes>,
}

/// At least one field; an absent one stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct CredentialChange {
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false, pattern = "^[^\\u0000]*$")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false)]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false)]
    pub scopes: Option<Scopes>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Credential {
    pub client_id: String,
    pub description: String,
    pub active: bool,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<CredentialRow> for Credential {
    fn from(row: CredentialRow) -> Self {
        Self {
            client_id: row.client_id,
            description: row.description,
            active: row.active,
            scopes: Scopes::from_stored(&row.scopes),
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        }
    }
}

const MAX_DESCRIPTION: usize = 512;

fn validate_client_id(client_id: &str) -> ApiResult<()> {
    let ok_chars = client_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !(3..=64).contains(&client_id.len()) || !ok_chars {
        return Err(ApiError::unprocessable("client_id must be 3-64 characters of letters, digits, `_`, `-` or `.`"));
    }
    Ok(())
}

fn validate_description(description: &str) -> ApiResult<()> {
    // PostgreSQL's text cannot hold NUL (SQLite's can): refused on both, the same way.
    if description.contains('\0') {
        return Err(ApiError::unprocessable("description must not contain NUL characters"));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::unprocessable(format!("description is longer than {MAX_DESCRIPTION} characters")));
    }
    Ok(())
}

fn protect_super_admin(auth: &ClientAuth, client_id: &str, verb: &str) -> ApiResult<()> {
    auth.require_super_admin()?;
    if secret::constant_time_eq(client_id, auth.super_admin_id()) {
        return Err(ApiError::Forbidden(format!("the super admin credential cannot be {verb}")));
    }
    Ok(())
}

/// Returns the new credential and its secret, which is never shown again.
pub async fn create(db: &Db, auth: &ClientAuth, new: NewCredential) -> ApiResult<(Credential, String)> {
    auth.require_super_admin()?;
    validate_client_id(&new.client_id)?;
    validate_description(&new.description)?;
    if new.client_id == auth.super_admin_id() {
        return Err(ApiError::Conflict(format!("client_id `{}` is already taken", new.client_id)));
    }
    let client_secret = secret::random_string(32);
    let secret_hash = {
        let client_secret = client_secret.clone();
        tokio::task::spawn_blocking(move || secret::hash_password(&client_secret))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
    };
    let now = db::now();
    let row = CredentialRow {
        client_id: new.client_id,
        description: new.description,
        secret_hash,
        active: true,
        scopes: new.scopes.unwrap_or_else(Scopes::default_for_new_credential).to_stored(),
        created_at: now,
        updated_at: now,
    };
    match store::insert(db, &row).await {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!("client_id `{}` is already taken", row.client_id)));
        }
        other => other?,
    }
    Ok((row.into(), client_secret))
}

pub async fn list(db: &Db, auth: &ClientAuth) -> ApiResult<Vec<Credential>> {
    auth.require_super_admin()?;
    Ok(store::list(db).await?.into_iter().map(Credential::from).collect())
}

pub async fn update(db: &Db, auth: &ClientAuth, client_id: &str, change: CredentialChange) -> ApiResult<Credential> {
    protect_super_admin(auth, client_id, "changed")?;
    if change.description.is_none() && change.active.is_none() && change.scopes.is_none() {
        return Err(ApiError::unprocessable("give at least one of description, active, scopes"));
    }
    let mut row = store::find(db, client_id).await?.ok_or(ApiError::NotFound("credential"))?;
    if let Some(description) = change.description {
        validate_description(&description)?;
        row.description = description;
    }
    if let Some(active) = change.active {
        row.active = active;
    }
    if let Some(scopes) = change.scopes {
        row.scopes = scopes.to_stored();
    }
    row.updated_at = db::now();
    if !store::update(db, &row).await? {
        return Err(ApiError::NotFound("credential"));
    }
    Ok(row.into())
}

pub async fn delete(db: &Db, auth: &ClientAuth, client_id: &str) -> ApiResult<()> {
    protect_super_admin(auth, client_id, "deleted")?;
    if !store::delete(db, client_id).await? {
        return Err(ApiError::NotFound("credential"));
    }
    Ok(())
}

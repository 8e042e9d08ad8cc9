//! The bridge's SQL. The API reads logins and portals through these functions too,
//! so the room → device → token mapping has one definition.

use crate::db::{Db, now};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRow {
    pub account_id: String,
    pub owner: String,
    pub state: String,
    pub created_at: i64,
}

pub const CONNECTED: &str = "connected";
/// Logged out from the network side (e.g. removed on the phone); still listed, so its
/// owner sees why it stopped.
pub const LOGGED_OUT: &str = "logged_out";
/// Logged out by its owner; no longer listed.
pub const REMOVED: &str = "removed";

pub async fn upsert_login(db: &Db, account_id: &str, owner: &str) -> Result<(), sqlx::Error> {
    let now = now();
    sqlx::query(
        "INSERT INTO bridge_logins (account_id, owner, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (account_id) DO UPDATE SET owner = $2, state = $3, updated_at = $4",
    )
    .bind(account_id)
    .bind(owner)
    .bind(CONNECTED)
    .bind(now)
    .execute(&db.pool)
    .await
    .map(drop)
}

pub async fn logins_of(db: &Db, owner: &str) -> Result<Vec<LoginRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, owner, state, created_at FROM bridge_logins WHERE owner = $1 AND state = $2 ORDER BY created_at, account_id",
    )
    .bind(owner)
    .bind(CONNECTED)
    .fetch_all(&db.pool)
    .await
}

/// The logins an owner sees: usable ones and those the network logged out.
pub async fn listed_logins_of(db: &Db, owner: &str) -> Result<Vec<LoginRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, owner, state, created_at FROM bridge_logins WHERE owner = $1 AND state IN ($2, $3) ORDER BY created_at, account_id",
    )
    .bind(owner)
    .bind(CONNECTED)
    .bind(LOGGED_OUT)
    .fetch_all(&db.pool)
    .await
}

pub async fn login(db: &Db, account_id: &str) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as("SELECT account_id, owner, state, created_at FROM bridge_logins WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn connected_logins(db: &Db) -> Result<Vec<LoginRow>, sqlx::Error> {
    sqlx::query_as("SELECT account_id, owner, state, created_at FROM bridge_logins WHERE state = $1")
        .bind(CONNECTED)
        .fetch_all(&db.pool)
        .await
}

pub async fn set_login_state(db: &Db, account_id: &str, state: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE bridge_logins SET state = $2, updated_at = $3 WHERE account_id = $1")
        .bind(account_id)
        .bind(state)
        .bind(now())
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PortalRow {
    pub account_id: String,
    pub chat_id: String,
    pub room_id: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub is_direct: bool,
    pub name: Option<String>,
}

pub async fn portal(db: &Db, account_id: &str, chat_id: &str) -> Result<Option<PortalRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, chat_id, room_id, is_direct, name FROM bridge_portals WHERE account_id = $1 AND chat_id = $2",
    )
    .bind(account_id)
    .bind(chat_id)
    .fetch_optional(&db.pool)
    .await
}

/// Every portal of one device.
pub async fn portals_of(db: &Db, account_id: &str) -> Result<Vec<PortalRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, chat_id, room_id, is_direct, name FROM bridge_portals WHERE account_id = $1 ORDER BY room_id",
    )
    .bind(account_id)
    .fetch_all(&db.pool)
    .await
}

pub async fn portal_by_room(db: &Db, room_id: &str) -> Result<Option<PortalRow>, sqlx::Error> {
    sqlx::query_as("SELECT account_id, chat_id, room_id, is_direct, name FROM bridge_portals WHERE room_id = $1")
        .bind(room_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn set_portal_name(db: &Db, room_id: &str, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE bridge_portals SET name = $2 WHERE room_id = $1")
        .bind(room_id)
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn insert_portal(db: &Db, portal: &PortalRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bridge_portals (account_id, chat_id, room_id, is_direct, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&portal.account_id)
    .bind(&portal.chat_id)
    .bind(&portal.room_id)
    .bind(portal.is_direct)
    .bind(&portal.name)
    .bind(now())
    .execute(&db.pool)
    .await
    .map(drop)
}

pub async fn puppet_name(db: &Db, phone: &str) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT displayname FROM bridge_puppets WHERE phone = $1")
        .bind(phone)
        .fetch_optional(&db.pool)
        .await
}

pub async fn upsert_puppet(db: &Db, phone: &str, user_id: &str, displayname: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bridge_puppets (phone, user_id, displayname) VALUES ($1, $2, $3)
         ON CONFLICT (phone) DO UPDATE SET displayname = $3",
    )
    .bind(phone)
    .bind(user_id)
    .bind(displayname)
    .execute(&db.pool)
    .await
    .map(drop)
}

/// Whether the bridge brought `user_id` into the portal `room_id` (see `portal::ensure_member`).
pub async fn is_member(db: &Db, room_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM bridge_members WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(found.is_some())
}

pub async fn add_member(db: &Db, room_id: &str, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bridge_members (room_id, user_id) VALUES ($1, $2) ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room_id)
    .bind(user_id)
    .execute(&db.pool)
    .await
    .map(drop)
}

/// `user_id` left the portal `room_id` (a kick), so bringing it back takes a join again.
pub async fn remove_member(db: &Db, room_id: &str, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM bridge_members WHERE room_id = $1 AND user_id = $2")
        .bind(room_id)
        .bind(user_id)
        .execute(&db.pool)
        .await
        .map(drop)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub event_id: String,
    pub room_id: String,
    pub account_id: String,
    pub chat_id: String,
    pub network_id: String,
    pub direction: String,
    /// Who wrote a received message (a phone number); `None` for sent ones.
    pub sender: Option<String>,
}

pub async fn insert_message(db: &Db, row: &MessageRow) -> Result<(), sqlx::Error> {
    insert_messages_in(&mut *db.pool.acquire().await?, std::slice::from_ref(row)).await
}

/// Several messages in one statement, on a connection of the caller's (e.g. inside its
/// transaction).
pub async fn insert_messages_in(conn: &mut sqlx::AnyConnection, rows: &[MessageRow]) -> Result<(), sqlx::Error> {
    let insert = sqlx::query(sqlx::AssertSqlSafe(messages_insert(rows.len(), 1)));
    bind_messages(insert, rows).execute(conn).await.map(drop)
}

/// `INSERT INTO bridge_messages` of `rows` messages, their values from parameter `$first`
/// on, for [`bind_messages`] to bind; a statement may begin with a query of its own.
pub fn messages_insert(rows: usize, first: usize) -> String {
    const COLUMNS: usize = 10;
    let values: Vec<String> =
        (0..rows).map(|n| format!("({})", crate::db::placeholders(first + n * COLUMNS, COLUMNS))).collect();
    format!(
        "INSERT INTO bridge_messages (event_id, room_id, account_id, chat_id, network_id, direction, sender,
                                      created_at, bridged_ms, read_at)
         VALUES {}",
        values.join(", ")
    )
}

/// Binds the values of [`messages_insert`], after whatever `query` bound before them.
pub fn bind_messages<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    rows: &'q [MessageRow],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let (now, now_ms) = (now(), crate::db::now_ms());
    for row in rows {
        query = query
            .bind(&row.event_id)
            .bind(&row.room_id)
            .bind(&row.account_id)
            .bind(&row.chat_id)
            .bind(&row.network_id)
            .bind(&row.direction)
            .bind(&row.sender)
            .bind(now)
            .bind(now_ms)
            // Only a received message waits to be read.
            .bind((row.direction != "in" || row.sender.is_none()).then_some(now));
    }
    query
}

/// When the message behind `event_id` was bridged, in unix milliseconds (none for a
/// message bridged before that was kept).
pub async fn message_bridged_ms(db: &Db, event_id: &str) -> Result<Option<i64>, sqlx::Error> {
    let bridged: Option<Option<i64>> = sqlx::query_scalar("SELECT bridged_ms FROM bridge_messages WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(bridged.flatten())
}

/// When the message behind `event_id` was bridged (unix seconds).
pub async fn message_created_at(db: &Db, event_id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT created_at FROM bridge_messages WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(&db.pool)
        .await
}

/// A message the bridge brought into Matrix from the network, and whose it is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BridgedMessage {
    pub event_id: String,
    pub room_id: String,
    pub owner: String,
    pub created_at: i64,
}

/// Up to `limit` messages bridged from the network after `after` (its time in unix
/// seconds and event id) and no later than `until`, of devices still linked to someone,
/// in that order.
pub async fn bridged_after(
    db: &Db,
    after: (i64, &str),
    until: i64,
    limit: i64,
) -> Result<Vec<BridgedMessage>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.event_id, m.room_id, l.owner, m.created_at FROM bridge_messages m
         JOIN bridge_logins l ON l.account_id = m.account_id
         WHERE m.direction = 'in' AND (m.created_at > $1 OR (m.created_at = $1 AND m.event_id > $2))
           AND m.created_at <= $3
         ORDER BY m.created_at, m.event_id LIMIT $4",
    )
    .bind(after.0)
    .bind(after.1)
    .bind(until)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// The received messages of a chat its device has not marked read (bridged no later than
/// `until`, unix milliseconds, when given), oldest first, at most `limit`: each WhatsApp
/// id with its sender.
pub async fn unread(
    db: &Db,
    account_id: &str,
    chat_id: &str,
    until: Option<i64>,
    limit: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT network_id, sender FROM bridge_messages
         WHERE account_id = $1 AND chat_id = $2 AND direction = 'in' AND read_at IS NULL AND sender IS NOT NULL
           AND bridged_ms <= COALESCE($3, bridged_ms)
         ORDER BY bridged_ms, event_id LIMIT $4",
    )
    .bind(account_id)
    .bind(chat_id)
    .bind(until)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// A portal and when its chat last saw a message (a reaction, an edit…) bridged either
/// way, in milliseconds; 0 when none was.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatRow {
    #[sqlx(flatten)]
    pub portal: PortalRow,
    pub last_ms: i64,
}

/// `account_id`'s chats, the latest active first, after the chat `after` (its `last_ms`
/// and chat id) when paging on.
pub async fn chats(
    db: &Db,
    account_id: &str,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<ChatRow>, sqlx::Error> {
    let (after_ms, after_chat) = after.unwrap_or((i64::MAX, ""));
    // Rows from before `bridged_ms` existed know their second only.
    sqlx::query_as(
        "SELECT account_id, chat_id, room_id, is_direct, name, last_ms FROM (
             SELECT p.account_id, p.chat_id, p.room_id, p.is_direct, p.name,
                    COALESCE(MAX(COALESCE(m.bridged_ms, m.created_at * 1000)), 0) AS last_ms
             FROM bridge_portals p
             LEFT JOIN bridge_messages m ON m.account_id = p.account_id AND m.chat_id = p.chat_id
             WHERE p.account_id = $1
             GROUP BY p.account_id, p.chat_id, p.room_id, p.is_direct, p.name
         ) AS chats
         WHERE last_ms < $2 OR (last_ms = $2 AND chat_id > $3)
         ORDER BY last_ms DESC, chat_id LIMIT $4",
    )
    .bind(account_id)
    .bind(after_ms)
    .bind(after_chat)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// A person one of the device's chats knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContact {
    pub phone: String,
    pub name: Option<String>,
    /// The device has a direct chat with them.
    pub direct: bool,
}

/// The contacts of the device's direct chats and the group members bridged into its
/// portals, by phone number.
pub async fn contacts_of(db: &Db, account_id: &str) -> Result<Vec<KnownContact>, sqlx::Error> {
    let members: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT pu.phone, pu.displayname FROM bridge_members m
         JOIN bridge_portals p ON p.room_id = m.room_id
         JOIN bridge_puppets pu ON pu.user_id = m.user_id
         WHERE p.account_id = $1",
    )
    .bind(account_id)
    .fetch_all(&db.pool)
    .await?;
    let mut known: std::collections::BTreeMap<String, KnownContact> =
        members.into_iter().map(|(phone, name)| (phone.clone(), KnownContact { phone, name, direct: false })).collect();
    for portal in portals_of(db, account_id).await?.into_iter().filter(|p| p.is_direct) {
        let Some(phone) = portal.chat_id.strip_suffix("@s.whatsapp.net") else { continue };
        let name = match known.get(phone) {
            Some(contact) => contact.name.clone(),
            None => puppet_name(db, phone).await?.flatten(),
        };
        known.insert(phone.to_owned(), KnownContact { phone: phone.to_owned(), name, direct: true });
    }
    Ok(known.into_values().collect())
}

/// How many received messages of a chat the device has not read.
pub async fn unread_count(db: &Db, account_id: &str, chat_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM bridge_messages
         WHERE account_id = $1 AND chat_id = $2 AND direction = 'in' AND read_at IS NULL AND sender IS NOT NULL",
    )
    .bind(account_id)
    .bind(chat_id)
    .fetch_one(&db.pool)
    .await
}

/// Records that the device read these messages of a chat.
pub async fn mark_read(db: &Db, account_id: &str, chat_id: &str, network_ids: &[String]) -> Result<(), sqlx::Error> {
    if network_ids.is_empty() {
        return Ok(());
    }
    // One statement for the batch (at most 256 ids, well within either database's
    // parameter limit).
    let listed: Vec<String> = (4..4 + network_ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "UPDATE bridge_messages SET read_at = $3
         WHERE account_id = $1 AND chat_id = $2 AND read_at IS NULL AND network_id IN ({})",
        listed.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id).bind(chat_id).bind(now());
    for network_id in network_ids {
        query = query.bind(network_id);
    }
    query.execute(&db.pool).await.map(drop)
}

pub async fn message_by_event(db: &Db, event_id: &str) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, room_id, account_id, chat_id, network_id, direction, sender FROM bridge_messages WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(&db.pool)
    .await
}

pub async fn message_by_network_id(
    db: &Db,
    account_id: &str,
    chat_id: &str,
    network_id: &str,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, room_id, account_id, chat_id, network_id, direction, sender FROM bridge_messages
         WHERE account_id = $1 AND chat_id = $2 AND network_id = $3",
    )
    .bind(account_id)
    .bind(chat_id)
    .bind(network_id)
    .fetch_optional(&db.pool)
    .await
}

/// Where a reaction lives: the message reacted to, and who reacted.
#[derive(Debug, Clone, Copy)]
pub struct ReactionKey<'a> {
    pub account_id: &'a str,
    pub chat_id: &'a str,
    pub target_id: &'a str,
    pub sender: &'a str,
}

/// The Matrix event of `key`'s current reaction.
pub async fn reaction(db: &Db, key: ReactionKey<'_>) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT event_id FROM bridge_reactions WHERE account_id = $1 AND chat_id = $2 AND target_id = $3 AND sender = $4",
    )
    .bind(key.account_id)
    .bind(key.chat_id)
    .bind(key.target_id)
    .bind(key.sender)
    .fetch_optional(&db.pool)
    .await
}

pub async fn set_reaction(db: &Db, key: ReactionKey<'_>, event_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bridge_reactions (account_id, chat_id, target_id, sender, event_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id, chat_id, target_id, sender) DO UPDATE SET event_id = $5, created_at = $6",
    )
    .bind(key.account_id)
    .bind(key.chat_id)
    .bind(key.target_id)
    .bind(key.sender)
    .bind(event_id)
    .bind(now())
    .execute(&db.pool)
    .await
    .map(drop)
}

pub async fn delete_reaction(db: &Db, key: ReactionKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM bridge_reactions WHERE account_id = $1 AND chat_id = $2 AND target_id = $3 AND sender = $4",
    )
    .bind(key.account_id)
    .bind(key.chat_id)
    .bind(key.target_id)
    .bind(key.sender)
    .execute(&db.pool)
    .await
    .map(drop)
}

/// Records a transaction as handled; `false` when it already was.
/// Transactions are recorded by `appservice::transaction_key`, not by their id alone.
pub async fn mark_transaction(db: &Db, appservice: &str, key: &str) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("INSERT INTO appservice_transactions (appservice, txn_id, created_at) VALUES ($1, $2, $3)")
            .bind(appservice)
            .bind(key)
            .bind(now())
            .execute(&db.pool)
            .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn transaction_seen(db: &Db, appservice: &str, key: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT txn_id FROM appservice_transactions WHERE appservice = $1 AND txn_id = $2")
            .bind(appservice)
            .bind(key)
            .fetch_optional(&db.pool)
            .await?;
    Ok(found.is_some())
}

pub async fn management_room(db: &Db, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT room_id FROM bridge_management_rooms WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn management_room_owner(db: &Db, room_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM bridge_management_rooms WHERE room_id = $1")
        .bind(room_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn set_management_room(db: &Db, user_id: &str, room_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bridge_management_rooms (user_id, room_id) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET room_id = $2",
    )
    .bind(user_id)
    .bind(room_id)
    .execute(&db.pool)
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("mxgate.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn a_membership_is_recorded_once() {
        let (db, _dir) = store().await;
        assert!(!is_member(&db, "!r:hs", "@p:hs").await.unwrap());
        add_member(&db, "!r:hs", "@p:hs").await.unwrap();
        add_member(&db, "!r:hs", "@p:hs").await.unwrap();
        assert!(is_member(&db, "!r:hs", "@p:hs").await.unwrap());
        assert!(!is_member(&db, "!other:hs", "@p:hs").await.unwrap());
    }
}

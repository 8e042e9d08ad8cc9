//! One set of storage scenarios, run against every WhatsApp store: mxgate's `SqlStore`
//! on SQLite and on PostgreSQL (when `MXGATE_TEST_POSTGRES` names a server), and
//! whatsapp-rust's own in-memory backend, the reference for what each method means.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};

use async_trait::async_trait;
use mxgate_bridge::db::{Db, Dialect};
use mxgate_bridge::network::whatsapp::store::{SqlStore, StoredPoll};
use whatsapp_rust::Jid;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, Backend, DeviceInfo, DeviceListRecord, DeviceStore, LidPnMappingEntry, MsgSecretEntry,
    PendingInboundKey, PendingInboundRow, TcTokenEntry,
};
use whatsapp_rust::wacore::store::{Device, InMemoryBackend};

/// Where the stores of a test's devices live.
#[async_trait]
trait Backends: Send + Sync {
    /// The store of `device`, as a process starting now would open it.
    async fn open(&self, device: &str) -> Arc<dyn Backend>;

    /// Forgets everything `device` stored, as a logout does.
    async fn forget(&self, device: &str);
}

#[derive(Default)]
struct InMemory {
    devices: Mutex<HashMap<String, Arc<InMemoryBackend>>>,
}

#[async_trait]
impl Backends for InMemory {
    async fn open(&self, device: &str) -> Arc<dyn Backend> {
        self.devices.lock().unwrap().entry(device.to_owned()).or_default().clone()
    }

    async fn forget(&self, device: &str) {
        self.devices.lock().unwrap().remove(device);
    }
}

struct Sql {
    db: Db,
    _dir: Option<tempfile::TempDir>,
}

impl Sql {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("mxgate.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        Self { db, _dir: Some(dir) }
    }

    /// A new database on `MXGATE_TEST_POSTGRES`, or `None` when it is not set.
    async fn postgres() -> Option<Self> {
        let Ok(server) = std::env::var("MXGATE_TEST_POSTGRES") else {
            static SKIPPED: Once = Once::new();
            SKIPPED.call_once(|| {
                // Straight to stderr: libtest captures only the print macros.
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "MXGATE_TEST_POSTGRES is not set: PostgreSQL scenarios skipped");
            });
            return None;
        };
        let name = format!("mxgate_test_wa_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let admin = Db::connect(&server).await.expect("connect to MXGATE_TEST_POSTGRES");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin.pool).await.unwrap();
        admin.pool.close().await;
        let (base, _) = server.rsplit_once('/').unwrap();
        let db = Db::connect(&format!("{base}/{name}")).await.unwrap();
        db.migrate().await.unwrap();
        Some(Self { db, _dir: None })
    }

    /// Every `wa_` table with how many rows `device` has in it.
    async fn rows_per_table(&self, device: &str) -> Vec<(String, i64)> {
        let tables_sql = match self.db.dialect {
            Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'wa\\_%' ESCAPE '\\'",
            Dialect::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'wa\\_%' ESCAPE '\\'"
            }
        };
        let tables: Vec<(String,)> = sqlx::query_as(tables_sql).fetch_all(&self.db.pool).await.unwrap();
        let mut counts = Vec::new();
        for (table,) in tables {
            let (count,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE device = $1")))
                    .bind(device)
                    .fetch_one(&self.db.pool)
                    .await
                    .unwrap();
            counts.push((table, count));
        }
        counts.sort();
        counts
    }
}

#[async_trait]
impl Backends for Sql {
    async fn open(&self, device: &str) -> Arc<dyn Backend> {
        Arc::new(SqlStore::new(self.db.clone(), device))
    }

    async fn forget(&self, device: &str) {
        SqlStore::new(self.db.clone(), device).delete_device().await.unwrap();
    }
}

fn addresses(list: &[&str]) -> Vec<Arc<str>> {
    list.iter().map(|address| Arc::from(*address)).collect()
}

fn lid_mapping(lid: &str, phone_number: &str, at: i64) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: lid.into(),
        phone_number: phone_number.into(),
        created_at: at,
        updated_at: at,
        learning_source: "usync".into(),
    }
}

fn device_list(user: &str, devices: &[u32], timestamp: i64) -> DeviceListRecord {
    DeviceListRecord {
        user: user.into(),
        devices: devices.iter().map(|id| DeviceInfo::new(*id, Some(id + 10)).with_hosting(*id == 99)).collect(),
        timestamp,
        phash: Some(format!("2:{user}")),
        raw_id: Some(7),
    }
}

fn msg_secret(msg_id: &str, secret: u8, expires_at: i64, message_ts: i64) -> MsgSecretEntry {
    MsgSecretEntry {
        chat: "120363000000000001@g.us".into(),
        sender: "237111@s.whatsapp.net".into(),
        msg_id: msg_id.into(),
        secret: [secret; 32],
        expires_at,
        message_ts,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn identities(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert_eq!(store.load_identity("237111:1@s.whatsapp.net").await.unwrap(), None);
    store.put_identity("237111:1@s.whatsapp.net", [1; 32]).await.unwrap();
    store.put_identity("237111:1@s.whatsapp.net", [2; 32]).await.unwrap();
    let batch = addresses(&["237222@s.whatsapp.net", "100000012345678@lid"]);
    store.put_identities_batch(&[(batch[0].clone(), [3; 32]), (batch[1].clone(), [4; 32])]).await.unwrap();
    assert_eq!(store.load_identity("237111:1@s.whatsapp.net").await.unwrap(), Some([2; 32]));
    assert_eq!(store.load_identity("237222@s.whatsapp.net").await.unwrap(), Some([3; 32]));
    assert_eq!(store.load_identity("100000012345678@lid").await.unwrap(), Some([4; 32]));
    store.delete_identity("237222@s.whatsapp.net").await.unwrap();
    assert_eq!(store.load_identity("237222@s.whatsapp.net").await.unwrap(), None);
    assert_eq!(store.load_identity("100000012345678@lid").await.unwrap(), Some([4; 32]));
}

async fn sessions(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let address = "237111:1@s.whatsapp.net";
    assert_eq!(store.get_session(address).await.unwrap(), None);
    assert!(!store.has_session(address).await.unwrap());
    store.put_session(address, b"first").await.unwrap();
    assert!(store.has_session(address).await.unwrap());
    let batch = addresses(&[address, "237222@s.whatsapp.net"]);
    store
        .put_sessions_batch(&[
            (batch[0].clone(), Bytes::from_static(b"updated")),
            (batch[1].clone(), Bytes::from_static(b"second")),
        ])
        .await
        .unwrap();
    store.put_sessions_batch(&[]).await.unwrap();
    assert_eq!(store.get_session(address).await.unwrap(), Some(Bytes::from_static(b"updated")));
    assert_eq!(store.get_session("237222@s.whatsapp.net").await.unwrap(), Some(Bytes::from_static(b"second")));
    store.delete_session(address).await.unwrap();
    assert!(!store.has_session(address).await.unwrap());
    assert!(store.has_session("237222@s.whatsapp.net").await.unwrap());
}

async fn signal_state_is_found_by_user(backends: &impl Backends) {
    let store = backends.open("alice").await;
    store.put_session("237111:3@s.whatsapp.net", b"session").await.unwrap();
    store.put_identity("100000012345678@lid", [9; 32]).await.unwrap();
    assert!(store.has_signal_state_for_user("237111").await.unwrap());
    assert!(store.has_signal_state_for_user("100000012345678").await.unwrap());
    for other in ["23711", "2371111", "237", "100000012345"] {
        assert!(!store.has_signal_state_for_user(other).await.unwrap(), "{other} has no state");
    }
}

async fn prekeys(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert_eq!(store.get_max_prekey_id().await.unwrap(), 0);
    assert_eq!(store.load_prekey(1).await.unwrap(), None);
    store.store_prekey(1, b"one", false).await.unwrap();
    store.store_prekey(1, b"one again", true).await.unwrap();
    let keys: Vec<(u32, Bytes)> = (2..=812).map(|id| (id, Bytes::from(format!("key {id}")))).collect();
    store.store_prekeys_batch(&keys, false).await.unwrap();
    assert_eq!(store.load_prekey(1).await.unwrap(), Some(Bytes::from_static(b"one again")));
    assert_eq!(store.get_max_prekey_id().await.unwrap(), 812);

    let wanted: Vec<u32> = (0..=900).step_by(3).collect();
    let mut loaded = store.load_prekeys_batch(&wanted).await.unwrap();
    loaded.sort();
    let expected: Vec<(u32, Bytes)> =
        wanted.iter().filter(|id| (1..=812).contains(*id)).map(|id| (*id, Bytes::from(format!("key {id}")))).collect();
    assert_eq!(loaded, expected);

    store.remove_prekey(812).await.unwrap();
    store.mark_prekeys_uploaded(&[811, 812]).await.unwrap();
    assert_eq!(store.load_prekey(812).await.unwrap(), None, "marking uploaded resurrects nothing");
    assert_eq!(store.load_prekey(811).await.unwrap(), Some(Bytes::from_static(b"key 811")));
    assert_eq!(store.get_max_prekey_id().await.unwrap(), 811);
}

async fn signed_prekeys(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert_eq!(store.load_signed_prekey(1).await.unwrap(), None);
    assert!(store.load_all_signed_prekeys().await.unwrap().is_empty());
    store.store_signed_prekey(2, b"two").await.unwrap();
    store.store_signed_prekey(1, b"one").await.unwrap();
    store.store_signed_prekey(1, b"one again").await.unwrap();
    assert_eq!(store.load_signed_prekey(1).await.unwrap(), Some(b"one again".to_vec()));
    let mut all = store.load_all_signed_prekeys().await.unwrap();
    all.sort();
    assert_eq!(all, vec![(1, b"one again".to_vec()), (2, b"two".to_vec())]);
    store.remove_signed_prekey(1).await.unwrap();
    assert_eq!(store.load_all_signed_prekeys().await.unwrap(), vec![(2, b"two".to_vec())]);
}

async fn sender_keys(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let address = "120363000000000001@g.us::237111::1";
    assert_eq!(store.get_sender_key(address).await.unwrap(), None);
    store.put_sender_key(address, b"first").await.unwrap();
    let batch = addresses(&[address, "120363000000000001@g.us::237222::0"]);
    store
        .put_sender_keys_batch(&[
            (batch[0].clone(), Bytes::from_static(b"rotated")),
            (batch[1].clone(), Bytes::from_static(b"other")),
        ])
        .await
        .unwrap();
    assert_eq!(store.get_sender_key(address).await.unwrap(), Some(b"rotated".to_vec()));
    store.delete_sender_key(address).await.unwrap();
    assert_eq!(store.get_sender_key(address).await.unwrap(), None);
    assert_eq!(store.get_sender_key(&batch[1]).await.unwrap(), Some(b"other".to_vec()));
}

async fn app_state_sync_keys(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert!(store.get_sync_key(b"\x00\x01").await.unwrap().is_none());
    assert_eq!(store.get_latest_sync_key_id().await.unwrap(), None);
    let key = |byte: u8| AppStateSyncKey { key_data: vec![byte; 32], fingerprint: vec![byte, 1, 2], timestamp: 1000 };
    store.set_sync_key(b"\x00\x09", key(9)).await.unwrap();
    store.set_sync_key(b"\x00\x01", key(1)).await.unwrap();
    assert_eq!(store.get_latest_sync_key_id().await.unwrap(), Some(b"\x00\x01".to_vec()), "the key set last");
    let stored = store.get_sync_key(b"\x00\x09").await.unwrap().unwrap();
    assert_eq!((stored.key_data, stored.fingerprint, stored.timestamp), (vec![9; 32], vec![9, 1, 2], 1000));
    store.set_sync_key(b"\x00\x09", key(8)).await.unwrap();
    assert_eq!(store.get_latest_sync_key_id().await.unwrap(), Some(b"\x00\x09".to_vec()));
    assert_eq!(store.get_sync_key(b"\x00\x09").await.unwrap().unwrap().key_data, vec![8; 32]);
}

async fn app_state_versions(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let fresh = store.get_version("regular").await.unwrap();
    assert_eq!((fresh.version, fresh.hash, fresh.index_value_map.len()), (0, [0; 128], 0));
    let mut state = HashState { version: 42, hash: [7; 128], mac_mismatch_fatal: true, ..HashState::default() };
    state.index_value_map.insert("aW5kZXg=".into(), vec![1, 2, 255]);
    store.set_version("regular", state).await.unwrap();
    let stored = store.get_version("regular").await.unwrap();
    assert_eq!((stored.version, stored.hash, stored.mac_mismatch_fatal), (42, [7; 128], true));
    assert_eq!(stored.index_value_map.get("aW5kZXg="), Some(&vec![1, 2, 255]));
    assert_eq!(store.get_version("critical_block").await.unwrap().version, 0);
    store.set_version("regular", HashState { version: 43, ..HashState::default() }).await.unwrap();
    let replaced = store.get_version("regular").await.unwrap();
    assert_eq!((replaced.version, replaced.index_value_map.len(), replaced.mac_mismatch_fatal), (43, 0, false));
}

async fn app_state_mutation_macs(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let mac = |index: u8, value: u8| AppStateMutationMAC { index_mac: vec![index; 32], value_mac: vec![value; 32] };
    store.put_mutation_macs("regular", 1, &[mac(1, 10), mac(2, 20), mac(3, 30)]).await.unwrap();
    store.put_mutation_macs("regular", 2, &[mac(2, 21)]).await.unwrap();
    store.put_mutation_macs("critical_block", 1, &[mac(1, 11)]).await.unwrap();
    assert_eq!(store.get_mutation_mac("regular", &[2; 32]).await.unwrap(), Some(vec![21; 32]));
    assert_eq!(store.get_mutation_mac("critical_block", &[1; 32]).await.unwrap(), Some(vec![11; 32]));
    assert_eq!(store.get_mutation_mac("regular", &[4; 32]).await.unwrap(), None);

    let found = store.get_mutation_macs("regular", &[[1; 32], [3; 32], [4; 32]]).await.unwrap();
    assert_eq!(found, HashMap::from([([1; 32], vec![10; 32]), ([3; 32], vec![30; 32])]));

    store.delete_mutation_macs("regular", &[vec![1; 32], vec![9; 32]]).await.unwrap();
    assert_eq!(store.get_mutation_mac("regular", &[1; 32]).await.unwrap(), None);
    assert_eq!(store.get_mutation_mac("critical_block", &[1; 32]).await.unwrap(), Some(vec![11; 32]));

    store.clear_mutation_macs("regular").await.unwrap();
    assert!(store.get_mutation_macs("regular", &[[2; 32], [3; 32]]).await.unwrap().is_empty());
    assert_eq!(store.get_mutation_mac("critical_block", &[1; 32]).await.unwrap(), Some(vec![11; 32]));
}

async fn sender_key_devices(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let (group, other) = ("120363000000000001@g.us", "120363000000000002@g.us");
    let sorted = |mut devices: Vec<(String, bool)>| {
        devices.sort();
        devices
    };
    assert!(store.get_sender_key_devices(group).await.unwrap().is_empty());
    store
        .set_sender_key_status(group, &[("237111:1@s.whatsapp.net", true), ("237222@s.whatsapp.net", true)])
        .await
        .unwrap();
    store.set_sender_key_status(group, &[("237222@s.whatsapp.net", false)]).await.unwrap();
    store.set_sender_key_status(other, &[("237111:1@s.whatsapp.net", true), ("237333@lid", true)]).await.unwrap();
    assert_eq!(
        sorted(store.get_sender_key_devices(group).await.unwrap()),
        vec![("237111:1@s.whatsapp.net".into(), true), ("237222@s.whatsapp.net".into(), false)]
    );

    store.delete_sender_key_device_rows(&["237111:1@s.whatsapp.net"]).await.unwrap();
    assert_eq!(store.get_sender_key_devices(group).await.unwrap(), vec![("237222@s.whatsapp.net".into(), false)]);
    assert_eq!(store.get_sender_key_devices(other).await.unwrap(), vec![("237333@lid".into(), true)]);

    store.clear_sender_key_devices(group).await.unwrap();
    assert!(store.get_sender_key_devices(group).await.unwrap().is_empty());
    assert_eq!(store.get_sender_key_devices(other).await.unwrap().len(), 1);
    store.clear_all_sender_key_devices().await.unwrap();
    assert!(store.get_sender_key_devices(other).await.unwrap().is_empty());
}

async fn lid_pn_mappings(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert!(store.get_lid_mapping("100000012345678").await.unwrap().is_none());
    store.put_lid_mapping(&lid_mapping("100000012345678", "237111", 1000)).await.unwrap();
    store
        .put_lid_mappings(&[
            lid_mapping("100000087654321", "237222", 1001),
            lid_mapping("100000011111111", "237333", 1002),
        ])
        .await
        .unwrap();
    let found = store.get_lid_mapping("100000012345678").await.unwrap().unwrap();
    assert_eq!(
        (
            found.lid.as_str(),
            found.phone_number.as_str(),
            found.created_at,
            found.updated_at,
            found.learning_source.as_str()
        ),
        ("100000012345678", "237111", 1000, 1000, "usync")
    );
    assert_eq!(store.get_pn_mapping("237222").await.unwrap().unwrap().lid, "100000087654321");
    assert!(store.get_pn_mapping("237999").await.unwrap().is_none());

    // The LID moves to another number: only the new number leads to it.
    store.put_lid_mapping(&lid_mapping("100000012345678", "237444", 2000)).await.unwrap();
    assert!(store.get_pn_mapping("237111").await.unwrap().is_none());
    let moved = store.get_pn_mapping("237444").await.unwrap().unwrap();
    assert_eq!((moved.lid.as_str(), moved.updated_at), ("100000012345678", 2000));

    let mut all: Vec<(String, String)> =
        store.get_all_lid_mappings().await.unwrap().into_iter().map(|entry| (entry.lid, entry.phone_number)).collect();
    all.sort();
    assert_eq!(
        all,
        vec![
            ("100000011111111".into(), "237333".into()),
            ("100000012345678".into(), "237444".into()),
            ("100000087654321".into(), "237222".into()),
        ]
    );
}

async fn base_keys(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let address = "237111:1@s.whatsapp.net";
    assert!(!store.has_same_base_key(address, "M1", b"key").await.unwrap());
    store.save_base_key(address, "M1", b"key").await.unwrap();
    assert!(store.has_same_base_key(address, "M1", b"key").await.unwrap());
    assert!(!store.has_same_base_key(address, "M1", b"other").await.unwrap());
    assert!(!store.has_same_base_key(address, "M2", b"key").await.unwrap());
    store.save_base_key(address, "M1", b"new").await.unwrap();
    assert!(store.has_same_base_key(address, "M1", b"new").await.unwrap());
    store.delete_base_key(address, "M1").await.unwrap();
    assert!(!store.has_same_base_key(address, "M1", b"new").await.unwrap());
}

async fn device_registry(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert!(store.get_devices("237111").await.unwrap().is_none());
    store.update_device_list(device_list("237111", &[0, 1], 1000)).await.unwrap();
    store
        .update_device_lists(vec![device_list("237111", &[0, 2, 99], 2000), device_list("237222", &[0], 2001)])
        .await
        .unwrap();
    let record = store.get_devices("237111").await.unwrap().unwrap();
    let devices: Vec<_> = record.devices.iter().map(|d| (d.device_id, d.key_index, d.is_hosted)).collect();
    assert_eq!(devices, vec![(0, Some(10), false), (2, Some(12), false), (99, Some(109), true)]);
    assert_eq!(
        (record.user.as_str(), record.timestamp, record.phash.as_deref(), record.raw_id),
        ("237111", 2000, Some("2:237111"), Some(7))
    );
    let bare = DeviceListRecord { user: "237333".into(), devices: vec![], timestamp: 5, phash: None, raw_id: None };
    store.update_device_list(bare).await.unwrap();
    let bare = store.get_devices("237333").await.unwrap().unwrap();
    assert_eq!((bare.devices.len(), bare.phash, bare.raw_id), (0, None, None));
    store.delete_devices("237111").await.unwrap();
    assert!(store.get_devices("237111").await.unwrap().is_none());
    assert!(store.get_devices("237222").await.unwrap().is_some());
}

async fn group_metadata(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let group = "120363000000000001@g.us";
    assert_eq!(store.get_group_metadata(group).await.unwrap(), None);
    store.put_group_metadata(group, b"v1").await.unwrap();
    store.put_group_metadata(group, b"v2").await.unwrap();
    assert_eq!(store.get_group_metadata(group).await.unwrap(), Some(b"v2".to_vec()));
    store.delete_group_metadata(group).await.unwrap();
    assert_eq!(store.get_group_metadata(group).await.unwrap(), None);
}

async fn tc_tokens(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let token = |store: Arc<dyn Backend>, jid: &'static str| async move {
        let entry = store.get_tc_token(jid).await.unwrap().unwrap();
        (entry.token, entry.token_timestamp, entry.sender_timestamp)
    };
    let jid = "100000012345678@lid";
    assert!(store.get_tc_token(jid).await.unwrap().is_none());
    store
        .put_tc_token(jid, &TcTokenEntry { token: b"t1".to_vec(), token_timestamp: 100, sender_timestamp: None })
        .await
        .unwrap();
    assert_eq!(token(store.clone(), jid).await, (b"t1".to_vec(), 100, None));

    // The sender side advances its own bucket and never touches the token.
    store.touch_tc_token_sender_timestamp(jid, 150).await.unwrap();
    store.touch_tc_token_sender_timestamp(jid, 120).await.unwrap();
    assert_eq!(token(store.clone(), jid).await, (b"t1".to_vec(), 100, Some(150)));

    // A received token: newer wins, the sender bucket stays.
    store.store_received_tc_token(jid, b"stale", 90).await.unwrap();
    assert_eq!(token(store.clone(), jid).await, (b"t1".to_vec(), 100, Some(150)));
    store.store_received_tc_token(jid, b"t2", 100).await.unwrap();
    assert_eq!(token(store.clone(), jid).await, (b"t2".to_vec(), 100, Some(150)));

    // Touching an unknown contact leaves a placeholder that any real token replaces.
    let placeholder = "100000087654321@lid";
    store.touch_tc_token_sender_timestamp(placeholder, 500).await.unwrap();
    assert_eq!(token(store.clone(), placeholder).await, (vec![], 500, Some(500)));
    store.store_received_tc_token(placeholder, b"real", 10).await.unwrap();
    assert_eq!(token(store.clone(), placeholder).await, (b"real".to_vec(), 10, Some(500)));
    let fresh = "100000011111111@lid";
    store.store_received_tc_token(fresh, b"first", 300).await.unwrap();
    assert_eq!(token(store.clone(), fresh).await, (b"first".to_vec(), 300, None));

    let mut jids = store.get_all_tc_token_jids().await.unwrap();
    jids.sort();
    assert_eq!(jids, vec![fresh, jid, placeholder]);
    store.delete_tc_token(fresh).await.unwrap();
    assert!(store.get_tc_token(fresh).await.unwrap().is_none());
    store.store_received_tc_token(fresh, b"first", 300).await.unwrap();

    // Pruning drops only rows whose token and sender bucket are both stale.
    let stale = "100000022222222@lid";
    store
        .put_tc_token(stale, &TcTokenEntry { token: vec![], token_timestamp: 1, sender_timestamp: Some(1) })
        .await
        .unwrap();
    assert_eq!(store.delete_expired_tc_tokens(50, 50).await.unwrap(), 1, "the bare placeholder");
    assert!(store.get_tc_token(stale).await.unwrap().is_none());
    assert_eq!(store.delete_expired_tc_tokens(200, 200).await.unwrap(), 1, "old token, old sender bucket");
    assert!(store.get_tc_token(jid).await.unwrap().is_none());
    assert_eq!(store.delete_expired_tc_tokens(1000, 400).await.unwrap(), 1, "old token, no sender bucket");
    assert!(store.get_tc_token(fresh).await.unwrap().is_none());
    assert_eq!(store.get_all_tc_token_jids().await.unwrap(), vec![placeholder], "its sender bucket is live");
    assert_eq!(store.delete_expired_tc_tokens(1000, 1000).await.unwrap(), 1);
    assert!(store.get_all_tc_token_jids().await.unwrap().is_empty());
}

async fn tc_tokens_converge_under_concurrent_writers(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let jid = "100000012345678@lid";
    let writers = (1..=24_i64).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            if n % 2 == 0 {
                store.touch_tc_token_sender_timestamp(jid, 1000 + n).await.unwrap();
            } else {
                store.store_received_tc_token(jid, format!("token {n}").as_bytes(), n).await.unwrap();
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let entry = store.get_tc_token(jid).await.unwrap().unwrap();
    assert_eq!((entry.token, entry.token_timestamp, entry.sender_timestamp), (b"token 23".to_vec(), 23, Some(1024)));
}

async fn sent_messages(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let chat = "237111@s.whatsapp.net";
    store.store_sent_message(chat, "M1", b"one").await.unwrap();
    store.store_sent_message(chat, "M2", b"two").await.unwrap();
    store.store_sent_message(chat, "M2", b"two again").await.unwrap();
    assert_eq!(store.take_sent_message(chat, "M2").await.unwrap(), Some(b"two again".to_vec()));
    assert_eq!(store.take_sent_message(chat, "M2").await.unwrap(), None, "taken once");
    assert_eq!(store.take_sent_message("237222@s.whatsapp.net", "M1").await.unwrap(), None);
    assert_eq!(store.delete_expired_sent_messages(now() - 60).await.unwrap(), 0);
    assert_eq!(store.delete_expired_sent_messages(now() + 60).await.unwrap(), 1);
    assert_eq!(store.take_sent_message(chat, "M1").await.unwrap(), None);
}

async fn pending_inbound(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let (chat, sender) = ("120363000000000001@g.us", "237111@s.whatsapp.net");
    assert_eq!(store.get_pending_inbound(chat, sender, "M1").await.unwrap(), None);
    store.store_pending_inbound(chat, sender, "M1", b"one").await.unwrap();
    store
        .store_pending_inbound_batch(&[
            PendingInboundRow { chat, sender, id: "M2", message: b"two" },
            PendingInboundRow { chat, sender: "237222@s.whatsapp.net", id: "M1", message: b"other sender" },
        ])
        .await
        .unwrap();
    assert_eq!(store.get_pending_inbound(chat, sender, "M1").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(
        store.get_pending_inbound(chat, "237222@s.whatsapp.net", "M1").await.unwrap(),
        Some(b"other sender".to_vec())
    );
    store.delete_pending_inbound(chat, sender, "M1").await.unwrap();
    assert_eq!(store.get_pending_inbound(chat, sender, "M1").await.unwrap(), None);
    store.delete_pending_inbound_batch(&[PendingInboundKey { chat, sender, id: "M2" }]).await.unwrap();
    assert_eq!(store.get_pending_inbound(chat, sender, "M2").await.unwrap(), None);
    assert_eq!(store.delete_expired_pending_inbound(now() - 60).await.unwrap(), 0);
    assert_eq!(store.delete_expired_pending_inbound(now() + 60).await.unwrap(), 1);
}

async fn msg_secrets(backends: &impl Backends) {
    let store = backends.open("alice").await;
    let (chat, sender) = ("120363000000000001@g.us", "237111@s.whatsapp.net");
    assert_eq!(store.get_msg_secret(chat, sender, "M1").await.unwrap(), None);
    store.put_msg_secret(chat, sender, "M1", &[1; 32]).await.unwrap();
    assert_eq!(store.get_msg_secret(chat, sender, "M1").await.unwrap(), Some(vec![1; 32]));
    assert_eq!(store.get_msg_secret_with_ts(chat, sender, "M1").await.unwrap(), Some((vec![1; 32], 0)));
    assert_eq!(store.get_msg_secret(chat, "237222@s.whatsapp.net", "M1").await.unwrap(), None, "keyed by sender too");

    let stored = store
        .put_msg_secrets(vec![
            msg_secret("M2", 2, 1000, 500),
            msg_secret("M3", 3, 1000, 0),
            msg_secret("M4", 4, 3000, 0),
        ])
        .await
        .unwrap();
    assert_eq!(stored, 3);
    // Re-persisting never shortens a window, and a known parent time survives a 0.
    store.put_msg_secrets(vec![msg_secret("M2", 22, 900, 0), msg_secret("M3", 33, 2000, 700)]).await.unwrap();
    assert_eq!(store.get_msg_secret_with_ts(chat, sender, "M2").await.unwrap(), Some((vec![22; 32], 500)));
    assert_eq!(store.get_msg_secret_with_ts(chat, sender, "M3").await.unwrap(), Some((vec![33; 32], 700)));
    store.put_msg_secrets(vec![msg_secret("M4", 4, 0, 0)]).await.unwrap();

    assert_eq!(store.delete_expired_msg_secrets(999).await.unwrap(), 0);
    assert_eq!(store.delete_expired_msg_secrets(1000).await.unwrap(), 1, "M2's deadline has come");
    assert_eq!(store.delete_expired_msg_secrets(5000).await.unwrap(), 1, "M3; M1 and M4 never expire");
    assert_eq!(store.get_msg_secret(chat, sender, "M1").await.unwrap(), Some(vec![1; 32]));
    assert_eq!(store.get_msg_secret(chat, sender, "M4").await.unwrap(), Some(vec![4; 32]));
    assert_eq!(store.get_msg_secret(chat, sender, "M2").await.unwrap(), None);
}

async fn device_record(backends: &impl Backends) {
    let store = backends.open("alice").await;
    assert!(!store.exists().await.unwrap());
    assert!(store.load().await.unwrap().is_none());
    store.create().await.unwrap();
    assert!(store.exists().await.unwrap());
    let created = store.load().await.unwrap().unwrap();
    assert!(created.pn.is_none());
    store.create().await.unwrap();
    let again = store.load().await.unwrap().unwrap();
    assert_eq!(again.registration_id, created.registration_id, "create keeps an existing device");

    let mut device = Device::new();
    device.pn = Some("237123456789:5@s.whatsapp.net".parse::<Jid>().unwrap());
    device.lid = Some("100000012345678:5@lid".parse::<Jid>().unwrap());
    device.push_name = "Ada".into();
    device.server_has_prekeys = true;
    device.nct_salt = Some(vec![1, 2, 3]);
    device.next_pre_key_id = 813;
    store.save(&device).await.unwrap();

    let loaded = backends.open("alice").await.load().await.unwrap().unwrap();
    assert_eq!(serde_json::to_value(&loaded).unwrap(), serde_json::to_value(&device).unwrap());
    assert_eq!(loaded.device_props, device.device_props);
}

/// Writes something through every method group.
async fn fill(store: &dyn Backend) {
    store.put_identity("237111@s.whatsapp.net", [1; 32]).await.unwrap();
    store.put_session("237111@s.whatsapp.net", b"session").await.unwrap();
    store.store_prekey(1, b"prekey", true).await.unwrap();
    store.store_signed_prekey(1, b"signed").await.unwrap();
    store.put_sender_key("group::237111::0", b"sender key").await.unwrap();
    store.set_sync_key(b"key", AppStateSyncKey::default()).await.unwrap();
    store.set_version("regular", HashState { version: 3, ..HashState::default() }).await.unwrap();
    let mac = AppStateMutationMAC { index_mac: vec![1; 32], value_mac: vec![2; 32] };
    store.put_mutation_macs("regular", 3, &[mac]).await.unwrap();
    store.set_sender_key_status("group", &[("237111@s.whatsapp.net", true)]).await.unwrap();
    store.put_lid_mapping(&lid_mapping("100000012345678", "237111", 1)).await.unwrap();
    store.save_base_key("237111@s.whatsapp.net", "M1", b"base").await.unwrap();
    store.update_device_list(device_list("237111", &[0], 1)).await.unwrap();
    store.put_group_metadata("group", b"metadata").await.unwrap();
    store.store_received_tc_token("100000012345678@lid", b"token", 1).await.unwrap();
    store.store_sent_message("237111@s.whatsapp.net", "M1", b"payload").await.unwrap();
    store.store_pending_inbound("237111@s.whatsapp.net", "237111@s.whatsapp.net", "M2", b"inbound").await.unwrap();
    store.put_msg_secret("237111@s.whatsapp.net", "237111@s.whatsapp.net", "M1", &[3; 32]).await.unwrap();
    store.save(&Device::new()).await.unwrap();
}

/// What `fill` wrote, as each method group reads it back: all `true` after `fill`,
/// all `false` in a store that never saw it.
async fn filled(store: &dyn Backend) -> Vec<(&'static str, bool)> {
    vec![
        ("identity", store.load_identity("237111@s.whatsapp.net").await.unwrap().is_some()),
        ("session", store.has_session("237111@s.whatsapp.net").await.unwrap()),
        ("signal state", store.has_signal_state_for_user("237111").await.unwrap()),
        ("prekey", store.load_prekey(1).await.unwrap().is_some()),
        ("max prekey id", store.get_max_prekey_id().await.unwrap() == 1),
        ("signed prekey", !store.load_all_signed_prekeys().await.unwrap().is_empty()),
        ("sender key", store.get_sender_key("group::237111::0").await.unwrap().is_some()),
        ("sync key", store.get_sync_key(b"key").await.unwrap().is_some()),
        ("latest sync key", store.get_latest_sync_key_id().await.unwrap().is_some()),
        ("version", store.get_version("regular").await.unwrap().version == 3),
        ("mutation mac", store.get_mutation_mac("regular", &[1; 32]).await.unwrap().is_some()),
        ("sender key devices", !store.get_sender_key_devices("group").await.unwrap().is_empty()),
        ("lid mapping", !store.get_all_lid_mappings().await.unwrap().is_empty()),
        ("pn mapping", store.get_pn_mapping("237111").await.unwrap().is_some()),
        ("base key", store.has_same_base_key("237111@s.whatsapp.net", "M1", b"base").await.unwrap()),
        ("device list", store.get_devices("237111").await.unwrap().is_some()),
        ("group metadata", store.get_group_metadata("group").await.unwrap().is_some()),
        ("tc token", !store.get_all_tc_token_jids().await.unwrap().is_empty()),
        (
            "pending inbound",
            store.get_pending_inbound("237111@s.whatsapp.net", "237111@s.whatsapp.net", "M2").await.unwrap().is_some(),
        ),
        (
            "msg secret",
            store.get_msg_secret("237111@s.whatsapp.net", "237111@s.whatsapp.net", "M1").await.unwrap().is_some(),
        ),
        ("device", store.exists().await.unwrap()),
    ]
}

fn all(filled: &[(&'static str, bool)], expected: bool) -> Vec<(&'static str, bool)> {
    filled.iter().map(|(what, _)| (*what, expected)).collect()
}

async fn devices_do_not_see_each_other(backends: &impl Backends) {
    let (alice, bob) = (backends.open("alice").await, backends.open("bob").await);
    fill(alice.as_ref()).await;
    let seen = filled(bob.as_ref()).await;
    assert_eq!(seen, all(&seen, false));
    // Taking a sent message is per device too; checked last since it consumes it.
    assert_eq!(bob.take_sent_message("237111@s.whatsapp.net", "M1").await.unwrap(), None);
    assert!(alice.take_sent_message("237111@s.whatsapp.net", "M1").await.unwrap().is_some());
}

async fn forgetting_a_device_removes_all_it_stored(backends: &impl Backends) {
    fill(backends.open("alice").await.as_ref()).await;
    fill(backends.open("bob").await.as_ref()).await;
    backends.forget("alice").await;

    let (alice, bob) = (backends.open("alice").await, backends.open("bob").await);
    let gone = filled(alice.as_ref()).await;
    assert_eq!(gone, all(&gone, false));
    assert_eq!(alice.take_sent_message("237111@s.whatsapp.net", "M1").await.unwrap(), None);
    let kept = filled(bob.as_ref()).await;
    assert_eq!(kept, all(&kept, true));
    assert!(bob.take_sent_message("237111@s.whatsapp.net", "M1").await.unwrap().is_some());
}

/// On SQL, checked table by table: no `wa_` table keeps a row of a deleted device.
async fn deleting_a_device_empties_every_table(sql: &Sql) {
    for device in ["alice", "bob"] {
        fill(sql.open(device).await.as_ref()).await;
        // The connector's own table, beside whatsapp-rust's.
        let options = vec!["Mon".to_owned(), "Tue".to_owned()];
        let poll = StoredPoll { creator: "237111@s.whatsapp.net".into(), secret: vec![7; 32], options };
        SqlStore::new(sql.db.clone(), device).remember_poll("3EB0POLL", &poll).await.unwrap();
    }
    let before = sql.rows_per_table("alice").await;
    assert_eq!(before.len(), 19);
    assert!(before.iter().all(|(_, rows)| *rows > 0), "fill reaches every table: {before:?}");

    sql.forget("alice").await;
    let after = sql.rows_per_table("alice").await;
    assert!(after.iter().all(|(_, rows)| *rows == 0), "{after:?}");
    assert_eq!(sql.rows_per_table("bob").await, before);
}

async fn a_device_is_linked_once_saved_with_its_phone_number(sql: &Sql) {
    let store = SqlStore::new(sql.db.clone(), "alice");
    assert!(!store.is_linked().await.unwrap());
    store.create().await.unwrap();
    assert!(!store.is_linked().await.unwrap(), "fresh keys are not a link");
    let mut device = store.load().await.unwrap().unwrap();
    device.pn = Some("237123456789:5@s.whatsapp.net".parse::<Jid>().unwrap());
    store.save(&device).await.unwrap();
    assert!(store.is_linked().await.unwrap());
    assert!(!SqlStore::new(sql.db.clone(), "bob").is_linked().await.unwrap());
    store.delete_device().await.unwrap();
    assert!(!store.is_linked().await.unwrap());
}

/// Each scenario becomes a test per backend: `in_memory::x`, `sqlite::x`, `postgres::x`;
/// the `sql` ones run only on the two SQL stores.
macro_rules! conformance {
    (all: [$($scenario:ident),* $(,)?], sql: [$($sql_scenario:ident),* $(,)?]) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(&super::InMemory::default()).await;
                }
            )*
        }

        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(&super::Sql::sqlite().await).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $sql_scenario() {
                    super::$sql_scenario(&super::Sql::sqlite().await).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(sql) = super::Sql::postgres().await {
                        super::$scenario(&sql).await;
                    }
                }
            )*
            $(
                #[tokio::test]
                async fn $sql_scenario() {
                    if let Some(sql) = super::Sql::postgres().await {
                        super::$sql_scenario(&sql).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    all: [
        identities,
        sessions,
        signal_state_is_found_by_user,
        prekeys,
        signed_prekeys,
        sender_keys,
        app_state_sync_keys,
        app_state_versions,
        app_state_mutation_macs,
        sender_key_devices,
        lid_pn_mappings,
        base_keys,
        device_registry,
        group_metadata,
        tc_tokens,
        tc_tokens_converge_under_concurrent_writers,
        sent_messages,
        pending_inbound,
        msg_secrets,
        device_record,
        devices_do_not_see_each_other,
        forgetting_a_device_removes_all_it_stored,
    ],
    sql: [deleting_a_device_empties_every_table, a_device_is_linked_once_saved_with_its_phone_number]
);

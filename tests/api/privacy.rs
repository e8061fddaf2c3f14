//! Personal data with real PostgreSQL: sealed at rest from the first write, erased by deleting
//! the subject's key (nothing readable is left, the ledger still balances, readers show `null`
//! with `erased: true`), exported across every domain, and reached by administrators only with
//! a reason, which is audited. The vault's keys: rotation, erasure seen by another replica, and
//! the sealing of data written before the module.

use std::{
    process::Command,
    sync::atomic::{AtomicU64, Ordering},
};

use beryl_core_api::domain::audit::{
    verify::{self, Check, Start},
    AuditKeys,
};
use beryl_core_api::{
    adapters::{
        ledger::sealing,
        migrate,
        postgres::{self, connect},
        privacy::{KeyStore, Vault},
    },
    config::{DatabaseSettings, PrivacySettings},
    domain::privacy::{ErasureRecord, Personal, Place},
};
use serde_json::{json, Value};

use crate::helpers::{audited, create_database, post_keyed, spawn_with, Audited, TestApp};

/// The key test applications seal their audit chain with.
const AUDIT_KEY: &str = "privacy-audit-chain-key-0123456789abcdef0123";

static KEYS: AtomicU64 = AtomicU64::new(0);

fn key() -> String {
    format!("privacy-{}-{}", std::process::id(), KEYS.fetch_add(1, Ordering::Relaxed))
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    post_keyed(app, token, path, body, &key()).await
}

async fn get(app: &TestApp, token: &str, path: &str, reason: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(app.url(path)).bearer_auth(token);
    if let Some(reason) = reason {
        req = req.header("X-Access-Reason", reason);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn user(app: &TestApp, subject: &str) -> String {
    app.token(subject, &["fintech:read", "fintech:write", "privacy:read", "privacy:write"])
}

/// A subject and a reference no other test uses, to search for byte for byte.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn open(app: &TestApp, token: &str) -> String {
    let (status, body) = post(app, token, "/api/v1/fintech/wallets", json!({"currency": "EUR"})).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn deposit(app: &TestApp, wallet: &str, amount: i64, reference: &str) {
    let settler = app.token("psp-bridge", &["fintech:settle"]);
    let path = format!("/api/v1/fintech/wallets/{wallet}/deposits");
    let (status, body) = post(app, &settler, &path, json!({"amount": amount, "reference": reference})).await;
    assert_eq!(status, 201, "{body}");
}

/// The whole database as `pg_dump` writes it (data of every table, bytea as hex).
fn dump(app: &TestApp) -> String {
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_owned();
    let out = Command::new("pg_dump").args(["--data-only", "--no-owner", &url]).output().expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `needle` appears in `dump`, as text or as the hex of its bytes (bytea columns).
fn holds(dump: &str, needle: &str) -> bool {
    dump.contains(needle) || dump.contains(&hex::encode(needle.as_bytes()))
}

async fn ledger_totals(app: &TestApp) -> (i64, i64) {
    let settings = DatabaseSettings { url: app.state.settings.database.url.clone(), ..DatabaseSettings::default() };
    let config = postgres::connect_config(&settings).unwrap().unwrap();
    let client = connect(&config).await.unwrap();
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(SUM(balance), 0) FROM wallets)::int8,
                    (SELECT COALESCE(SUM(CASE kind WHEN 'deposit' THEN amount WHEN 'withdrawal' THEN -amount ELSE 0 END), 0)
                     FROM ledger_transactions)::int8",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[actix_web::test]
async fn erasure_leaves_nothing_readable_keeps_the_ledger_balanced_and_readers_show_null() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let file = log.clone();
    let app = spawn_with(move |s| {
        s.audit.enabled = true;
        s.audit.log_file = file;
        s.audit.hmac_key = Some(AUDIT_KEY.into());
    })
    .await;
    let (alice, bob) = (unique("alice"), unique("bob"));
    let reference = unique("invoice");
    let alice_token = user(&app, &alice);
    let bob_token = user(&app, &bob);
    let (a, b) = (open(&app, &alice_token).await, open(&app, &bob_token).await);
    deposit(&app, &a, 1_000, &reference).await;
    let (status, body) = post(
        &app,
        &alice_token,
        "/api/v1/fintech/transfers",
        json!({"from": a, "to": b, "amount": 300, "currency": "EUR"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Sealed from the first write: neither the subject nor the reference is stored in the clear.
    let before = dump(&app);
    assert!(!holds(&before, &alice) && !holds(&before, &reference), "plaintext stored before erasure");
    assert!(before.contains("pd1."), "sealed fields are stored");
    assert!(holds(&before, &a) && holds(&before, &b), "the dump holds the wallets");
    let (status, mine) = get(&app, &alice_token, &format!("/api/v1/fintech/wallets/{a}"), None).await;
    assert_eq!((status, mine["owner"].as_str(), mine["erased"].as_bool()), (200, Some(alice.as_str()), Some(false)));

    let (status, record) = post(&app, &alice_token, "/api/v1/privacy/erasure-requests", json!({})).await;
    assert_eq!(status, 201, "{record}");
    let record: ErasureRecord = serde_json::from_value(record).unwrap();
    let keys = beryl_core_api::adapters::privacy::master_keys(&app.state.settings.privacy);
    assert!(record.verify(&keys), "the completion record is signed");
    assert!(record.key_id.is_some());
    assert_eq!(record.removed.get("fintech.wallets"), Some(&1));
    assert!(record.removed.get("fintech.idempotency_keys").is_some_and(|n| *n >= 2), "{:?}", record.removed);
    assert!(!serde_json::to_string(&record).unwrap().contains(&alice));

    let after = dump(&app);
    assert!(!holds(&after, &alice) && !holds(&after, &reference), "plaintext left after erasure");
    // A denial without a token: its address is sealed under the period's key.
    let denied = app.client.get(app.url("/api/v1/fintech/wallets/{a}")).send().await.unwrap();
    assert_eq!(denied.status(), 401);

    // The audit files: alice's requests are recorded, nothing of her is readable, not even the
    // address she called from, and the chain, which covers the ciphertext, still verifies.
    let audit = app.state.actors.audit.clone().unwrap();
    audit.writer.ask(beryl_core_api::actors::audit::messages::Flush).await.unwrap().unwrap();
    let trail = std::fs::read(&log).unwrap();
    let trail = String::from_utf8_lossy(&trail);
    assert!(trail.contains("POST /api/v1/privacy/erasure-requests"), "{trail}");
    for needle in [alice.as_str(), reference.as_str(), "127.0.0.1"] {
        assert!(!trail.contains(needle), "{needle} in the audit trail");
    }
    let keys = AuditKeys::from_secrets(Some(AUDIT_KEY), None);
    let summary = verify::verify(&log, &Check::new(Start::Genesis, keys)).expect("the chain verifies after erasure");
    assert!(summary.records >= 4, "{summary:?}");
    let index = app.state.actors.privacy.vault().subject_index(&alice).hex();
    let hers: Vec<Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["subject_index"] == json!(index))
        .collect();
    assert!(hers.len() >= 3, "her records are found by her blind index");
    for record in hers {
        let opened = crate::helpers::opened_audit_record(&app, record).await;
        assert_eq!((opened["subject"].clone(), opened["client_ip"].clone()), (Value::Null, Value::Null), "{opened}");
    }

    // Readers: the owner and the reference are null and marked erased; the money is all there.
    let admin = app.token("root", &["admin"]);
    let why = Some("erasure check, case 7");
    let (status, wallet) = get(&app, &admin, &format!("/api/v1/fintech/wallets/{a}"), why).await;
    assert_eq!(status, 200, "{wallet}");
    assert_eq!(
        (wallet["owner"].clone(), wallet["erased"].clone(), wallet["balance"].clone()),
        (Value::Null, json!(true), json!(700))
    );
    let (status, page) = get(&app, &admin, &format!("/api/v1/fintech/wallets/{a}/transactions"), why).await;
    assert_eq!(status, 200, "{page}");
    let deposit_entry = page["items"].as_array().unwrap().iter().find(|m| m["kind"] == "deposit").unwrap().clone();
    assert_eq!((deposit_entry["reference"].clone(), deposit_entry["erased"].clone()), (Value::Null, json!(true)));
    let graphql = app
        .graphql(&admin, &format!(r#"{{ wallet(id: "{a}", reason: "erasure check") {{ owner erased balance }} }}"#))
        .await;
    assert_eq!(graphql["data"]["wallet"], json!({"owner": null, "erased": true, "balance": 700}), "{graphql}");
    // The erased subject no longer owns the wallet; the other party is untouched.
    let (status, _) = get(&app, &alice_token, &format!("/api/v1/fintech/wallets/{a}"), None).await;
    assert_eq!(status, 403);
    let (status, theirs) = get(&app, &bob_token, &format!("/api/v1/fintech/wallets/{b}"), None).await;
    assert_eq!((status, theirs["owner"].as_str(), theirs["balance"].as_i64()), (200, Some(bob.as_str()), Some(300)));
    let (balances, net_external) = ledger_totals(&app).await;
    assert_eq!((balances, net_external), (1_000, 1_000), "conservation holds after erasure");

    // The record is kept and exported to the subject who comes back.
    let (status, archive) = get(&app, &alice_token, "/api/v1/privacy/export", None).await;
    assert_eq!(status, 200, "{archive}");
    assert_eq!(archive["domains"]["fintech"]["wallets"], json!([]));
    assert_eq!(archive["domains"]["privacy"]["erasures"][0]["id"], json!(record.id));
}

/// The audit file's records, once the writer flushed what it holds.
async fn flushed(app: &TestApp, log: &std::path::Path) -> Vec<Value> {
    let audit = app.state.actors.audit.clone().unwrap();
    audit.writer.ask(beryl_core_api::actors::audit::messages::Flush).await.unwrap().unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The audit record that gives `reason`.
fn with_reason(records: &[Value], reason: &str) -> Value {
    records
        .iter()
        .find(|r| r["reason"] == json!(reason))
        .cloned()
        .unwrap_or_else(|| panic!("an audit record with the reason {reason}"))
}

#[actix_web::test]
async fn the_export_holds_every_domains_data_and_admins_need_a_reason_which_is_audited() {
    let Audited { app, dir: _dir, log } = audited().await;
    let alice = unique("alice");
    let token = user(&app, &alice);
    let wallet = open(&app, &token).await;
    deposit(&app, &wallet, 250, "salary").await;

    // Audit records are written behind the answers (fail_open here): the export holds them once
    // the writer has flushed them.
    let archive =
        crate::helpers::eventually("her audit records in the export", std::time::Duration::from_secs(10), || async {
            let (status, archive) = get(&app, &token, "/api/v1/privacy/export", None).await;
            assert_eq!(status, 200, "{archive}");
            let records = archive["domains"]["audit"]["records"].as_array().map_or(0, Vec::len);
            (records > 0).then_some(archive)
        })
        .await;
    assert_eq!(archive["subject"], json!(alice));
    let domains = archive["domains"].as_object().unwrap();
    assert_eq!(
        domains.keys().collect::<Vec<_>>(),
        vec!["audit", "esg", "fintech", "mobility", "payments", "privacy", "social"]
    );
    // The audit trail's records of her requests, opened: hers only.
    let records = archive["domains"]["audit"]["records"].as_array().unwrap();
    assert!(!records.is_empty(), "{archive}");
    for record in records {
        assert_eq!(
            (record["subject"].as_str(), record["client_ip"].as_str()),
            (Some(alice.as_str()), Some("127.0.0.1"))
        );
    }
    let exported = &archive["domains"]["fintech"]["wallets"][0];
    assert_eq!((exported["id"].as_str(), exported["owner"].as_str()), (Some(wallet.as_str()), Some(alice.as_str())));
    assert_eq!(exported["balance"], json!(250));
    assert_eq!(exported["movements"][0]["reference"], json!("salary"), "{exported}");
    assert_eq!(archive["domains"]["privacy"]["erasures"], json!([]));

    let admin = app.token("root", &["admin"]);
    let path = format!("/api/v1/privacy/subjects/{alice}/export");
    let (status, refused) = get(&app, &admin, &path, None).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("reason_required")), "{refused}");
    let (status, refused) =
        get(&app, &token, &format!("/api/v1/privacy/subjects/{}/export", unique("bob")), Some("curious")).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("not_owner")), "{refused}");
    let reason = unique("case");
    let (status, read) = get(&app, &admin, &path, Some(&reason)).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["domains"]["fintech"], archive["domains"]["fintech"]);
    assert_eq!(read["domains"]["audit"]["records"][0], archive["domains"]["audit"]["records"][0]);

    // Erasing someone else's data: admin only, with a reason.
    let (status, refused) =
        post(&app, &token, "/api/v1/privacy/erasure-requests", json!({"subject": unique("bob")})).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("not_owner")), "{refused}");
    let (status, refused) = post(&app, &admin, "/api/v1/privacy/erasure-requests", json!({"subject": alice})).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("reason_required")), "{refused}");

    // An administrator reading someone's wallet gives a reason too.
    let wallet_path = format!("/api/v1/fintech/wallets/{wallet}");
    let (status, refused) = get(&app, &admin, &wallet_path, None).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("reason_required")), "{refused}");
    let (status, refused) = get(&app, &admin, &format!("{wallet_path}/transactions"), None).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("reason_required")), "{refused}");
    let wallet_reason = unique("wallet-case");
    let (status, read) = get(&app, &admin, &wallet_path, Some(&wallet_reason)).await;
    assert_eq!((status, read["owner"].as_str()), (200, Some(alice.as_str())), "{read}");
    let (status, _) = get(&app, &token, &wallet_path, None).await;
    assert_eq!(status, 200, "the owner reads without a reason");
    // A reason sent where none is needed is still checked, as the document describes it.
    for path in
        [wallet_path.clone(), format!("{wallet_path}/transactions"), format!("/api/v1/privacy/subjects/{alice}/export")]
    {
        for malformed in ["", "line\tbreak"] {
            let (status, refused) = get(&app, &token, &path, Some(malformed)).await;
            assert_eq!(
                (status, refused["code"].as_str()),
                (400, Some("invalid_parameter")),
                "{path} {malformed:?}: {refused}"
            );
        }
        let (status, _) = get(&app, &token, &path, Some("my own records")).await;
        assert_eq!(status, 200, "{path}");
    }

    // The audited reads carry the reason and who read.
    let lines = flushed(&app, &log).await;
    let record = crate::helpers::opened_audit_record(&app, with_reason(&lines, &reason)).await;
    assert_eq!(record["subject"], json!("root"));
    assert_eq!(record["action"], json!("GET /api/v1/privacy/subjects/{subject}/export"));
    let record = with_reason(&lines, &wallet_reason);
    assert_eq!(record["action"], json!("GET /api/v1/fintech/wallets/{id}"));
}

#[actix_web::test]
async fn graphql_admin_reads_of_someone_elses_wallet_need_a_reason_which_is_audited() {
    let Audited { app, dir: _dir, log } = audited().await;
    let alice = unique("alice");
    let token = user(&app, &alice);
    let wallet = open(&app, &token).await;
    deposit(&app, &wallet, 250, "salary").await;
    let admin = app.token("root", &["admin"]);
    let wallet_query = |reason: &str| format!(r#"{{ wallet(id: "{wallet}"{reason}) {{ owner balance }} }}"#);
    let movements_query =
        |reason: &str| format!(r#"{{ transactions(wallet: "{wallet}"{reason}) {{ items {{ reference }} }} }}"#);

    // Without a reason, nothing of hers is answered.
    for query in [wallet_query(""), movements_query("")] {
        let answer = app.graphql(&admin, &query).await;
        assert_eq!(answer["errors"][0]["extensions"]["code"], json!("reason_required"), "{answer}");
        assert_eq!(answer["data"], Value::Null, "{answer}");
    }
    let answer = app.graphql(&admin, &wallet_query(r#", reason: """#)).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], json!("reason_required"), "{answer}");
    let answer = app.graphql(&admin, &wallet_query(r#", reason: "a\u0007b""#)).await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], json!("invalid_parameter"), "{answer}");

    // The owner reads without one; the administrator with one, as an argument or in the header.
    let answer = app.graphql(&token, &wallet_query("")).await;
    assert_eq!(answer["data"]["wallet"]["owner"], json!(alice), "{answer}");
    let argument = unique("gql-case");
    let answer = app.graphql(&admin, &wallet_query(&format!(r#", reason: "{argument}""#))).await;
    assert_eq!(answer["data"]["wallet"], json!({"owner": alice, "balance": 250}), "{answer}");
    // A reason in the header may be any UTF-8 text.
    let header = unique("dossier n°");
    let answer: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .header("X-Access-Reason", reqwest::header::HeaderValue::from_bytes(header.as_bytes()).unwrap())
        .json(&json!({"query": movements_query("")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["transactions"]["items"][0]["reference"], json!("salary"), "{answer}");

    // Each read is on record with its reason and the administrator who read.
    let lines = flushed(&app, &log).await;
    for (reason, action) in [(argument, "graphql wallet"), (header, "graphql transactions")] {
        let record = crate::helpers::opened_audit_record(&app, with_reason(&lines, &reason)).await;
        assert_eq!((record["subject"].as_str(), record["action"].as_str()), (Some("root"), Some(action)));
        assert_eq!(record["resource"], json!(format!("/api/v1/fintech/wallets/{wallet}")));
    }
    // Refused reads are not counted as reads.
    let reads = crate::helpers::sample(&app.metrics().await, "beryl_privacy_admin_reads_total");
    assert_eq!(reads, Some(2.0));
}

/// A vault over a migrated database of its own.
async fn vault(url: &str, settings: &PrivacySettings) -> Vault {
    let db = DatabaseSettings { url: Some(url.into()), ..DatabaseSettings::default() };
    Vault::new(KeyStore::Postgres(postgres::build_pool(&db).unwrap().unwrap()), settings)
}

async fn migrated() -> (String, tokio_postgres::Client) {
    let url = create_database().await;
    let db = DatabaseSettings { url: Some(url.as_str().into()), ..DatabaseSettings::default() };
    let mut client = connect(&postgres::connect_config(&db).unwrap().unwrap()).await.unwrap();
    migrate::run(&mut client).await.unwrap();
    (url, client)
}

fn keys(master: &str, previous: Option<&str>, ttl_secs: u64) -> PrivacySettings {
    PrivacySettings {
        master_key: Some(master.into()),
        master_key_previous: previous.map(Into::into),
        key_cache_ttl_secs: ttl_secs,
        ..PrivacySettings::default()
    }
}

const OLD: &str = "privacy-master-old-0123456789abcdef0123";
const NEW: &str = "privacy-master-new-0123456789abcdef0123";

#[actix_web::test]
async fn master_key_rotation_rewraps_every_stored_key() {
    let (url, client) = migrated().await;
    let old = vault(&url, &keys(OLD, None, 5)).await;
    let place = Place::new("test.field", "row-1");
    let sealed = old.seal("alice", place, "alice's secret").await.unwrap();
    old.key_of("bob").await.unwrap();

    let rotating = vault(&url, &keys(NEW, Some(OLD), 5)).await;
    assert_eq!(rotating.open(&sealed, place).await.unwrap(), Personal::Value("alice's secret".into()));
    assert_eq!(rotating.rewrap_all(1).await.unwrap(), 2);
    let wrapped_under: Vec<String> = client
        .query("SELECT DISTINCT master_key_id FROM privacy_subject_keys", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(wrapped_under, vec![rotating.master_keys().current.id().to_owned()]);
    let rotated = vault(&url, &keys(NEW, None, 5)).await;
    assert_eq!(rotated.open(&sealed, place).await.unwrap(), Personal::Value("alice's secret".into()));
}

#[actix_web::test]
async fn an_erasure_on_one_replica_is_seen_by_another_once_its_cache_expires() {
    let (url, _client) = migrated().await;
    let (one, other) = (vault(&url, &keys(OLD, None, 0)).await, vault(&url, &keys(OLD, None, 0)).await);
    let place = Place::new("test.field", "row-1");
    let sealed = one.seal("alice", place, "secret").await.unwrap();
    assert_eq!(other.open(&sealed, place).await.unwrap(), Personal::Value("secret".into()));
    one.erase(&one.subject_index("alice")).await.unwrap();
    assert_eq!(other.open(&sealed, place).await.unwrap(), Personal::Erased);
}

#[actix_web::test]
async fn data_written_before_the_module_is_sealed_by_migrate() {
    let (url, client) = migrated().await;
    let (wallet, tx) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let (alice, reference) = (unique("alice"), unique("legacy-ref"));
    client
        .execute(
            "INSERT INTO wallets (id, owner, currency, balance, status, version, created_at, updated_at)
             VALUES ($1, $2, 'EUR', 50, 'active', 2, now(), now())",
            &[&wallet, &alice],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO wallet_journal (wallet_id, seq, transaction_id, kind, amount, balance_after, reference, created_at)
             VALUES ($1, 1, NULL, 'opened', 0, 0, NULL, now()), ($1, 2, $2, 'deposit', 50, 50, $3, now())",
            &[&wallet, &tx, &reference],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO ledger_transactions (id, kind, debit_account, credit_account, amount, currency, reference, created_at)
             VALUES ($1, 'deposit', 'external:EUR', $2, 50, 'EUR', $3, now())",
            &[&tx, &wallet.to_string(), &reference],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, request_body, receipt, created_at, expires_at)
             VALUES ($1, 'k-1', 'h', $2, $3, now(), now() + interval '1 day')",
            &[&alice, &json!({"owner": alice}), &json!({"opened": {"owner": alice}})],
        )
        .await
        .unwrap();
    let vault = vault(&url, &keys(OLD, None, 5)).await;
    let sealed = sealing::seal_existing(&client, &vault, 1).await.unwrap();
    assert_eq!((sealed.owners, sealed.references, sealed.kept), (1, 2, 1));
    assert_eq!(sealing::seal_existing(&client, &vault, 1).await.unwrap(), sealing::Sealing::default());
    let text: String = client
        .query("SELECT (w.*)::text FROM wallets w UNION ALL SELECT (j.*)::text FROM wallet_journal j
                UNION ALL SELECT (t.*)::text FROM ledger_transactions t UNION ALL SELECT (k.*)::text FROM idempotency_keys k", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!holds(&text, &alice) && !holds(&text, &reference), "{text}");

    // Read back through the ledger, as the service reads it.
    let db = DatabaseSettings { url: Some(url.as_str().into()), ..DatabaseSettings::default() };
    let ledger = beryl_core_api::adapters::ledger::PgLedger::new(
        postgres::build_pool(&db).unwrap().unwrap(),
        postgres::connect_config(&db).unwrap().unwrap(),
    )
    .with_vault(vault.clone());
    let read = ledger.wallet(beryl_core_api::domain::fintech::WalletId(wallet)).await.unwrap().unwrap();
    assert_eq!(read.owner, Personal::Value(alice.clone()));
    let page = ledger.movements(beryl_core_api::domain::fintech::WalletId(wallet), None, 10).await.unwrap();
    assert_eq!(page.items[0].reference.as_deref(), Some(reference.as_str()));
    let kept = ledger.kept(&alice, "k-1").await.unwrap().unwrap();
    assert_eq!(kept.request, json!({"owner": alice}));
}

#[actix_web::test]
async fn retention_removes_exactly_what_is_past_its_period() {
    use beryl_core_api::{
        actors::privacy::retention::{Periods, Rules},
        domain::privacy::Category,
    };
    use chrono::{Months, Utc};

    let app = spawn_with(|_| {}).await;
    // The supervised actor runs the same rules at start (and every hour) and counts its rounds;
    // its first round is over before this test makes anything to remove. Its series exist from
    // the start, at zero.
    let metrics = app.metrics().await;
    assert!(crate::helpers::sample(&metrics, "beryl_privacy_retention_removed_total{category=\"audit_ip\"}").is_some());
    crate::helpers::eventually("the retention actor's first round", std::time::Duration::from_secs(15), || async {
        let metrics = app.metrics().await;
        crate::helpers::sample(&metrics, "beryl_privacy_retention_rounds_total{outcome=\"ok\"}").filter(|n| *n >= 1.0)
    })
    .await;
    assert_eq!(
        crate::helpers::sample(&app.metrics().await, "beryl_privacy_retention_rounds_total{outcome=\"failed\"}"),
        Some(0.0)
    );

    let vault = app.state.actors.privacy.vault().clone();
    let now = Utc::now();
    let month = |back: u32| (now - Months::new(back)).format("%Y-%m").to_string();
    let place = Place::new("audit.client_ip", "");
    let mut sealed = Vec::new();
    for back in [0, 11, 13, 30] {
        let key = vault.period_key(&month(back)).await.unwrap();
        sealed.push((back, beryl_core_api::domain::privacy::Sealed::seal(&key, place, "198.51.100.7").unwrap()));
    }

    // Idempotency keys kept 25 h and 23 h ago, with a period of 24 h.
    let settings = DatabaseSettings { url: app.state.settings.database.url.clone(), ..DatabaseSettings::default() };
    let client = connect(&postgres::connect_config(&settings).unwrap().unwrap()).await.unwrap();
    for (key, hours) in [("old", 25), ("older", 26), ("new", 23)] {
        let at = now - chrono::Duration::hours(hours);
        client
            .execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, request_body, created_at, expires_at)
                 VALUES ('retention-test', $1, 'h', '{}', $2, $3)",
                &[&key, &at, &(at + chrono::Duration::hours(24))],
            )
            .await
            .unwrap();
    }

    let day = std::time::Duration::from_secs(86_400);
    let periods = Periods { audit_ip: day * 365, ride_coordinates: day * 90, idempotency_responses: day };
    let rules = Rules::new(vault.clone(), app.state.actors.privacy.holders().clone(), periods, 1);
    let removed = rules.apply(now).await.unwrap();
    assert_eq!(removed[&Category::IdempotencyResponses], 2, "{removed:?}");
    assert_eq!(removed[&Category::RideCoordinates], 0);
    // Months 13 and 30 back ended more than a year ago; 11 back and this month did not. Other
    // tests' months are not in this database.
    assert_eq!(removed[&Category::AuditIp], 2, "{removed:?}");
    for (back, text) in &sealed {
        let opened = vault.open(text, place).await.unwrap();
        assert_eq!(opened.is_erased(), *back > 12, "month {back} back: {opened:?}");
    }
    let left: Vec<String> = client
        .query("SELECT key FROM idempotency_keys WHERE scope = 'retention-test'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec!["new".to_owned()]);
    assert_eq!(rules.apply(now).await.unwrap().values().sum::<u64>(), 0, "nothing more is past its period");
}

#[actix_web::test]
async fn events_retained_on_the_broker_carry_nothing_readable_after_erasure() {
    use beryl_core_api::adapters::ledger::sealing::{entry_row, JOURNAL_REFERENCE};

    let (brokers, ns) = (crate::kafka::broker(), crate::kafka::unique("privacy"));
    let app = spawn_with(|s| crate::events::on_kafka(s, &brokers, &ns)).await;
    let alice = unique("alice");
    let reference = unique("payout");
    let token = user(&app, &alice);
    let wallet = open(&app, &token).await;
    deposit(&app, &wallet, 500, &reference).await;
    let (status, body) = post(&app, &token, "/api/v1/privacy/erasure-requests", json!({})).await;
    assert_eq!(status, 201, "{body}");

    let topic = format!("{ns}.fintech.events");
    let b = brokers.clone();
    let records = tokio::task::spawn_blocking(move || {
        crate::kafka::read_topic(&b, &topic, 2, std::time::Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert_eq!(records.len(), 2, "the opening and the deposit");
    for record in &records {
        let raw = record.value.to_string();
        assert!(!raw.contains(&alice) && !raw.contains(&reference), "plaintext on the broker: {raw}");
    }
    let deposit = records.iter().find(|r| r.value["type"] == "fintech.wallet.deposit").expect("the deposit event");
    let sealed = deposit.value["data"]["reference"].as_str().expect("a sealed reference");
    assert!(sealed.starts_with("pd1."), "{sealed}");
    let seq = deposit.value["seq"].as_i64().unwrap();
    let row = entry_row(beryl_core_api::domain::fintech::WalletId(wallet.parse().unwrap()), seq);
    let opened = app.state.actors.privacy.vault().open_text(sealed, Place::new(JOURNAL_REFERENCE, &row)).await.unwrap();
    assert_eq!(opened, Personal::Erased);
}

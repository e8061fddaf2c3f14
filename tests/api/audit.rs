//! The audit writer through the real application: concurrent appends, rotation, tampering seen
//! by `audit verify`, restarts and disk failures that lose nothing, and the flush at SIGTERM.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use beryl_core_api::{
    actors::{
        audit::{housekeeping::NAME as HOUSEKEEPING, Append, AuditWriter, Flush, FlushReport, NAME},
        runtime::{ActorRef, ActorState, FaultKind},
    },
    config::AuditFailurePolicy,
    domain::audit::{
        verify::{self, rotated_files, Check, Start, Summary, VerifyError},
        AuditError, AuditEvent, AuditKeys, AuditRecord,
    },
};
use chrono::Utc;
use nix::sys::signal::Signal;
use serde_json::json;

use crate::helpers::{eventually, run_cli, sample, spawn_with, test_token, Process, TestApp};

fn event(resource: String) -> AuditEvent {
    AuditEvent {
        time: Utc::now(),
        subject: Some("auditor".into()),
        action: "POST /api/v1/wallets/{id}/transfers".into(),
        resource,
        outcome: "success".into(),
        status: 201,
        request_id: Some(uuid::Uuid::now_v7().to_string()),
        client_ip: Some("203.0.113.9".into()),
        count: None,
        money: None,
        reason: None,
        subject_index: None,
    }
}

/// The key test applications seal their audit chain with.
const AUDIT_KEY: &str = "audit-chain-test-key-0123456789abcdef012345";

fn keys() -> AuditKeys {
    AuditKeys::from_secrets(Some(AUDIT_KEY), None)
}

/// Verify the set `live` belongs to from genesis, with the test key.
fn verify(live: &Path, start: Start) -> Result<Summary, VerifyError> {
    verify::verify(live, &Check::new(start, keys()))
}

/// An application writing its audit log to `file`, sealed with [`AUDIT_KEY`], after `adjust`.
async fn app_with_audit(file: &Path, adjust: impl FnOnce(&mut beryl_core_api::config::Settings)) -> TestApp {
    let file = file.to_path_buf();
    spawn_with(move |s| {
        s.audit.enabled = true;
        s.audit.log_file = file;
        s.audit.hmac_key = Some(AUDIT_KEY.into());
        adjust(s);
    })
    .await
}

/// The writer, once running: until its thread has set the mailbox up, the mailbox holds only
/// actix's default 16 messages.
async fn writer(app: &TestApp) -> ActorRef<AuditWriter> {
    let writer = app.state.actors.audit.clone().expect("the audit writer runs when auditing is enabled").writer;
    eventually("the audit writer to run", Duration::from_secs(10), || async {
        (writer.entry().state() == ActorState::Running).then_some(())
    })
    .await;
    writer
}

async fn flush(writer: &ActorRef<AuditWriter>) -> FlushReport {
    writer.ask(Flush).await.expect("the writer answers").expect("the records are durable")
}

fn append(writer: &ActorRef<AuditWriter>, resources: impl IntoIterator<Item = String>) {
    for resource in resources {
        assert!(writer.try_tell(Append(event(resource))), "the mailbox takes the record");
    }
}

/// Every record of the set `live` belongs to, in chain order.
fn records(live: &Path) -> Vec<AuditRecord> {
    let mut files: Vec<PathBuf> = rotated_files(live).unwrap().into_iter().map(|(_, p)| p).collect();
    files.push(live.to_path_buf());
    files
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .map(|line| AuditRecord::parse(line.as_bytes(), &keys()).unwrap())
        .collect()
}

fn resources(live: &Path) -> BTreeSet<String> {
    records(live).into_iter().map(|r| r.event.resource).collect()
}

#[actix_web::test]
async fn a_thousand_concurrent_appends_become_exactly_a_thousand_chained_records() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit/audit.log");
    let app = app_with_audit(&live, |_| {}).await;
    let writer = writer(&app).await;

    let accepted: usize = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..20)
            .map(|t| {
                let writer = writer.clone();
                scope.spawn(move || (0..50).filter(|i| writer.try_tell(Append(event(format!("r-{t}-{i}"))))).count())
            })
            .collect();
        senders.into_iter().map(|s| s.join().unwrap()).sum()
    });
    assert_eq!(accepted, 1000);
    let report = flush(&writer).await;
    assert_eq!(report.last_seq, 1000);

    let summary = verify(&live, Start::Genesis).expect("the chain verifies");
    assert_eq!((summary.records, summary.first_seq, summary.last_seq), (1000, Some(1), 1000));
    let expected: BTreeSet<String> = (0..20).flat_map(|t| (0..50).map(move |i| format!("r-{t}-{i}"))).collect();
    assert_eq!(resources(&live), expected, "every record once, none lost or duplicated");
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, "beryl_audit_records_written_total"), Some(1000.0));
    assert_eq!(sample(&metrics, "beryl_audit_last_seq"), Some(1000.0));
}

#[actix_web::test]
async fn rotation_keeps_the_chain_verifiable_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| {
        s.audit.max_file_bytes = 4096;
        s.audit.batch_max = 8;
    })
    .await;
    let writer = writer(&app).await;
    append(&writer, (0..200).map(|i| format!("rotating-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 200);

    let rotated = rotated_files(&live).unwrap();
    assert!(rotated.len() >= 2, "the log rotated: {rotated:?}");
    for (_, file) in &rotated {
        assert!(std::fs::metadata(file).unwrap().len() <= 4096, "{} is over the limit", file.display());
    }
    // Each file's first record continues the previous file's last.
    let (_, first_rotated) = &rotated[0];
    let first_file: Vec<_> = std::fs::read_to_string(first_rotated).unwrap().lines().map(str::to_string).collect();
    let last_of_first = AuditRecord::parse(first_file.last().unwrap().as_bytes(), &keys()).unwrap();
    let next_file = std::fs::read_to_string(&rotated[1].1).unwrap();
    let first_of_next = AuditRecord::parse(next_file.lines().next().unwrap().as_bytes(), &keys()).unwrap();
    assert_eq!(first_of_next.prev_hash, last_of_first.hash);
    assert_eq!(first_of_next.seq, last_of_first.seq + 1);

    // The CLI agrees, named by the live file or by a rotated member, and needs no service settings.
    for path in [live.clone(), rotated[1].1.clone()] {
        let (code, stdout, stderr) =
            run_cli(&["audit", "verify", path.to_str().unwrap()], &[("PORT", "eighty"), ("AUDIT_HMAC_KEY", AUDIT_KEY)]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("OK") && stdout.contains("records: 200"), "{stdout}");
        assert!(stdout.contains("seq: 1..=200"), "{stdout}");
    }
}

/// Copy `live` into a fresh directory with `change` applied to its lines; run the CLI on it.
fn verify_altered(live: &Path, change: impl FnOnce(&mut Vec<String>)) -> (i32, String, PathBuf, tempfile::TempDir) {
    let mut lines: Vec<String> = std::fs::read_to_string(live).unwrap().lines().map(|l| format!("{l}\n")).collect();
    change(&mut lines);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("audit.log");
    std::fs::write(&copy, lines.concat()).unwrap();
    let (code, stdout, stderr) =
        run_cli(&["audit", "verify", copy.to_str().unwrap()], &[("AUDIT_HMAC_KEY", AUDIT_KEY)]);
    (code, format!("{stdout}{stderr}"), copy, dir)
}

#[actix_web::test]
async fn tampering_makes_audit_verify_fail_and_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |_| {}).await;
    let writer = writer(&app).await;
    append(&writer, (1..=20).map(|i| format!("wallet-{i}")));
    flush(&writer).await;
    let (code, stdout, _) = run_cli(&["audit", "verify", live.to_str().unwrap()], &[("AUDIT_HMAC_KEY", AUDIT_KEY)]);
    assert_eq!(code, 0, "{stdout}");

    // One byte of line 7.
    let (code, out, copy, _keep) = verify_altered(&live, |lines| {
        lines[6] = lines[6].replacen("wallet-7", "wallet-8", 1);
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("file: {}", copy.display())) && out.contains("line: 7"), "{out}");
    assert!(out.contains("hash does not match") && out.contains("expected: ") && out.contains("found: "), "{out}");

    // Line 7 deleted.
    let (code, out, _, _keep) = verify_altered(&live, |lines| {
        lines.remove(6);
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line: 7") && out.contains("expected seq 7, found seq 8"), "{out}");

    // Lines 7 and 8 swapped.
    let (code, out, _, _keep) = verify_altered(&live, |lines| lines.swap(6, 7));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line: 7") && out.contains("expected seq 7, found seq 8"), "{out}");

    // The last write cut short.
    let (code, out, _, _keep) = verify_altered(&live, |lines| {
        let last = lines.pop().unwrap();
        lines.push(last[..last.len() / 2].to_string());
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line: 20") && out.contains("truncated"), "{out}");
}

#[actix_web::test]
async fn a_restarted_writer_continues_the_chain_without_a_gap_or_a_lost_record() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    // Nothing is written until asked, so records are still queued when the writer panics.
    let app = app_with_audit(&live, |s| {
        s.audit.flush_interval_ms = 10_000;
        s.audit.batch_max = 1000;
    })
    .await;
    let writer = writer(&app).await;
    append(&writer, (1..=10).map(|i| format!("before-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 10);
    append(&writer, (1..=5).map(|i| format!("queued-{i}")));

    let injected = app.state.supervision.inject_fault(NAME, FaultKind::Panic).await;
    assert!(matches!(injected, Some(Err(_))), "the panicking writer does not answer");
    eventually("the writer to run again", Duration::from_secs(10), || async {
        (writer.entry().state() == ActorState::Running && writer.entry().restarts() == 1).then_some(())
    })
    .await;

    append(&writer, (1..=5).map(|i| format!("after-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 20);
    let summary = verify(&live, Start::Genesis).expect("one unbroken chain");
    assert_eq!((summary.records, summary.last_seq), (20, 20));
    let expected: BTreeSet<String> = ["before", "queued", "after"]
        .iter()
        .flat_map(|p| (1..=if *p == "before" { 10 } else { 5 }).map(move |i| format!("{p}-{i}")))
        .collect();
    assert_eq!(resources(&live), expected);
}

#[actix_web::test]
async fn a_failing_disk_is_reported_and_queued_records_are_written_once_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the log's directory should be: nothing can be created under it.
    let blocker = dir.path().join("volume");
    std::fs::write(&blocker, "not a directory").unwrap();
    let live = blocker.join("audit.log");
    let app = app_with_audit(&live, |s| s.audit.failure_policy = Some(AuditFailurePolicy::FailClosed)).await;
    let writer = writer(&app).await;

    let dependency = |health: serde_json::Value| {
        health["dependencies"].as_array().unwrap().iter().find(|d| d["name"] == "audit-log").cloned()
    };
    let down = eventually("the audit log to be reported down", Duration::from_secs(10), || async {
        dependency(app.health().await).filter(|d| d["status"] == "down")
    })
    .await;
    assert_eq!(down["required"], true, "fail_closed makes the log required: {down}");
    assert_eq!(app.ready_status().await, 503);

    append(&writer, (1..=3).map(|i| format!("during-outage-{i}")));
    let refused = writer.ask(Flush).await.expect("the writer answers");
    assert!(matches!(refused, Err(AuditError::Unavailable(_))), "{refused:?}");
    let failures = sample(&app.metrics().await, "beryl_audit_write_failures_total{stage=\"open\"}");
    assert!(failures.is_some_and(|n| n >= 1.0), "{failures:?}");

    std::fs::remove_file(&blocker).unwrap();
    eventually("the audit log to be reported up", Duration::from_secs(30), || async {
        dependency(app.health().await).filter(|d| d["status"] == "up")
    })
    .await;
    assert_eq!(flush(&writer).await.last_seq, 3);
    assert_eq!(verify(&live, Start::Genesis).expect("intact").records, 3);
    assert_eq!(resources(&live).len(), 3, "the records queued during the outage were kept");
    eventually("ready again", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) })
        .await;
}

// Needs every state-changing request to be audited by the HTTP layer.
#[actix_web::test]
async fn sigterm_writes_every_queued_record_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let mut process = Process::serve(&[
        ("FAULT_INJECTION_ENABLED", "true"),
        ("AUDIT_ENABLED", "true"),
        ("AUDIT_LOG_FILE", live.to_str().unwrap()),
        // Records wait in the writer until shutdown flushes them.
        ("BERYL__AUDIT__FLUSH_INTERVAL_MS", "10000"),
        ("BERYL__AUDIT__BATCH_MAX", "1000"),
    ]);
    let address = process.address().await;
    let client = reqwest::Client::new();
    let admin = test_token("root", &["admin"]);
    for _ in 0..25 {
        let res = client
            .post(format!("{address}/internal/faults/adapter-pool"))
            .bearer_auth(&admin)
            .json(&json!({"kind": "delay", "millis": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    process.signal(Signal::SIGTERM);
    assert_eq!(process.exit_code(Duration::from_secs(20)).await, Some(0));

    let summary = verify(&live, Start::Genesis).expect("intact");
    assert_eq!(summary.records, 25, "one record per state-changing request, all written at shutdown");
    let closed = process.json_lines().into_iter().find(|l| l["message"] == "audit log closed");
    assert_eq!(closed.expect("the writer logs its chain head")["last_seq"], 25);
}

#[actix_web::test]
async fn a_thousand_concurrent_audited_requests_leave_every_record_verifiable_and_denials_aggregated() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| {
        s.rate_limit.api_read.per_ip = 10_000;
        s.rate_limit.api_write.per_ip = 10_000;
        s.rate_limit.api_write.per_subject = 10_000;
        s.audit.denial_window_secs = 1;
    })
    .await;
    let writer = writer(&app).await;
    let token = app.token("ops", &["system:read"]);
    let admin = app.token("root", &["admin"]);
    // 500 state-changing requests (each records success), 250 authorization failures (each
    // records a denial) and 250 requests without a valid token (aggregated), all at once.
    let changes = (0..500).map(|_| {
        let (client, url, admin) = (app.client.clone(), app.url("/internal/faults/adapter-pool"), admin.clone());
        actix_rt::spawn(async move {
            client.post(url).bearer_auth(admin).json(&json!({"kind": "delay", "millis": 0})).send().await
        })
    });
    let denials = (0..500).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/system/actors"));
        let token = if i % 2 == 0 { "garbage".to_string() } else { token.clone() };
        let path = if i % 2 == 0 { url } else { app.url("/api/v1/system/actors/adapter-pool/restart") };
        actix_rt::spawn(async move {
            if i % 2 == 0 {
                client.get(path).bearer_auth(token).send().await
            } else {
                client.post(path).bearer_auth(token).send().await
            }
        })
    });
    let all: Vec<_> = changes.chain(denials).collect();
    let mut statuses = std::collections::BTreeMap::new();
    for task in all {
        *statuses.entry(task.await.unwrap().unwrap().status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses, [(200, 500), (401, 250), (403, 250)].into_iter().collect(), "{statuses:?}");
    let written = eventually("the denial windows to close", Duration::from_secs(30), || async {
        flush(&writer).await;
        let written = records(&live);
        let unauthenticated: u64 =
            written.iter().filter(|r| r.event.status == 401).map(|r| r.event.count.unwrap_or(1)).sum();
        (unauthenticated == 250).then_some(written)
    })
    .await;
    let summary = verify(&live, Start::Genesis).expect("the chain verifies");
    assert_eq!(summary.records, written.len() as u64);
    let count = |status: u16| written.iter().filter(|r| r.event.status == status).count();
    assert_eq!((count(200), count(403)), (500, 250));
    assert!(count(401) < 250, "{} records for 250 denials of one client", count(401));
    // The address of a denial without a known subject is sealed under the period's key, the same
    // text for the same address (so that denials aggregate), and opens to the client's.
    let denied: std::collections::BTreeSet<_> =
        written.iter().filter(|r| r.event.status == 401).map(|r| r.event.client_ip.clone()).collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    let sealed = serde_json::json!({ "client_ip": denied.into_iter().next().flatten() });
    let opened = crate::helpers::opened_audit_record(&app, sealed).await;
    assert_eq!(opened["client_ip"], "127.0.0.1");
}

// --- What moved -------------------------------------------------------------------------------

async fn post_json(app: &TestApp, token: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[actix_web::test]
async fn money_movement_records_say_what_moved() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |_| {}).await;
    let writer = writer(&app).await;
    let token = app.token("alice", &["fintech:read", "fintech:write", "fintech:settle"]);
    let a = post_json(&app, &token, "/api/v1/fintech/wallets", json!({"currency": "EUR"})).await["id"].clone();
    let b = post_json(&app, &token, "/api/v1/fintech/wallets", json!({"currency": "EUR"})).await["id"].clone();
    let a = a.as_str().unwrap();
    let b = b.as_str().unwrap();
    let deposit = post_json(
        &app,
        &token,
        &format!("/api/v1/fintech/wallets/{a}/deposits"),
        json!({"amount": 9_000, "reference": "psp-1"}),
    )
    .await;
    let transfer = post_json(
        &app,
        &token,
        "/api/v1/fintech/transfers",
        json!({"from": a, "to": b, "amount": 2_500, "currency": "EUR"}),
    )
    .await;
    let key = uuid::Uuid::new_v4();
    let graphql = app
        .graphql(
            &token,
            &format!(
                r#"mutation {{ transfer(input: {{from: "{b}", to: "{a}", amount: 700, idempotencyKey: "{key}"}}) {{ id }} }}"#
            ),
        )
        .await;
    let graphql_id = graphql["data"]["transfer"]["id"].as_str().unwrap_or_else(|| panic!("{graphql}")).to_string();
    // A payout (through the provider's simulator) holds its money now and withdraws it once
    // paid: its record carries that withdrawal.
    let payout = post_json(
        &app,
        &token,
        &format!("/api/v1/fintech/wallets/{a}/payouts"),
        json!({"amount": 300, "destination": "ba_audit"}),
    )
    .await;
    assert_eq!(payout["status"], "in_transit", "{payout}");
    flush(&writer).await;

    let written = records(&live);
    let moved = |id: &str| {
        written
            .iter()
            .find_map(|r| r.event.money.clone().filter(|m| m.transaction_id == id))
            .unwrap_or_else(|| panic!("no record names transaction {id}: {written:?}"))
    };
    let d = moved(deposit["id"].as_str().unwrap());
    assert_eq!(
        (d.kind.as_str(), d.amount, d.currency.as_str(), d.from_wallet, d.to_wallet.as_deref()),
        ("deposit", 9_000, "EUR", None, Some(a))
    );
    let t = moved(transfer["id"].as_str().unwrap());
    assert_eq!(
        (t.kind.as_str(), t.amount, t.currency.as_str(), t.from_wallet.as_deref(), t.to_wallet.as_deref()),
        ("transfer", 2_500, "EUR", Some(a), Some(b))
    );
    let p = written
        .iter()
        .find(|r| r.event.action.ends_with("/payouts"))
        .and_then(|r| r.event.money.clone())
        .unwrap_or_else(|| panic!("no payout record with its money: {written:?}"));
    assert_eq!(
        (p.kind.as_str(), p.amount, p.currency.as_str(), p.from_wallet.as_deref(), p.to_wallet),
        ("withdrawal", 300, "EUR", Some(a), None)
    );
    let g = moved(&graphql_id);
    assert_eq!((g.amount, g.from_wallet.as_deref(), g.to_wallet.as_deref()), (700, Some(b), Some(a)));
    // Opening a wallet moves no money.
    let opened = written.iter().filter(|r| r.event.action == "POST /api/v1/fintech/wallets");
    assert!(opened.clone().count() == 2 && opened.into_iter().all(|r| r.event.money.is_none()));
}

// --- The key ----------------------------------------------------------------------------------

/// Rewrite every record from line `from` on as someone who can write the volume but does not
/// hold the key would: change the outcome and reseal each line with plain SHA-256 so the links
/// hold.
fn forge_from(live: &Path, from: usize) -> String {
    let mut records: Vec<AuditRecord> = std::fs::read_to_string(live)
        .unwrap()
        .lines()
        .map(|l| AuditRecord::parse(l.as_bytes(), &keys()).unwrap())
        .collect();
    records[from].event.outcome = "success".into();
    for i in from..records.len() {
        records[i].prev_hash = records[i - 1].hash.clone();
        records[i].key_id = None;
        records[i].hash = records[i].expected_hash(None).unwrap();
    }
    records.iter().map(|r| r.to_line().unwrap()).collect()
}

#[actix_web::test]
async fn a_chain_resealed_without_the_key_fails_verification_and_a_rotated_key_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |_| {}).await;
    let first = writer(&app).await;
    append(&first, (1..=10).map(|i| format!("first-key-{i}")));
    flush(&first).await;
    drop(app);

    let forged_dir = tempfile::tempdir().unwrap();
    let forged = forged_dir.path().join("audit.log");
    std::fs::write(&forged, forge_from(&live, 6)).unwrap();
    let (code, out, err) = run_cli(&["audit", "verify", forged.to_str().unwrap()], &[("AUDIT_HMAC_KEY", AUDIT_KEY)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("line: 7") && out.contains("unkeyed record after keyed ones"), "{out}");
    // Without the key the chain cannot be checked at all, which is said as such.
    let (code, out, err) = run_cli(&["audit", "verify", live.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("cannot verify") && err.contains("AUDIT_HMAC_KEY"), "{err}");

    // Rotation: a new current key, the old one kept as previous; the chain continues.
    const NEXT_KEY: &str = "audit-chain-next-key-0123456789abcdef0123456";
    let app = spawn_with({
        let live = live.clone();
        move |s| {
            s.audit.enabled = true;
            s.audit.log_file = live;
            s.audit.hmac_key = Some(NEXT_KEY.into());
            s.audit.hmac_key_previous = Some(AUDIT_KEY.into());
        }
    })
    .await;
    let writer = writer(&app).await;
    append(&writer, (1..=5).map(|i| format!("next-key-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 15);
    let both = [("AUDIT_HMAC_KEY", NEXT_KEY), ("AUDIT_HMAC_KEY_PREVIOUS", AUDIT_KEY)];
    let (code, out, err) = run_cli(&["audit", "verify", live.to_str().unwrap()], &both);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("records: 15") && !out.contains("unkeyed"), "{out}");
    let (code, _, err) = run_cli(&["audit", "verify", live.to_str().unwrap()], &[("AUDIT_HMAC_KEY", NEXT_KEY)]);
    assert_eq!(code, 2, "the first ten records need the previous key: {err}");
}

#[actix_web::test]
async fn a_log_written_before_keys_verifies_as_unkeyed_and_continues_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| s.audit.hmac_key = None).await;
    let first = writer(&app).await;
    append(&first, (1..=4).map(|i| format!("unkeyed-{i}")));
    flush(&first).await;
    drop(app);
    let (code, out, err) = run_cli(&["audit", "verify", live.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("unkeyed records: 4"), "{out}");

    let app = app_with_audit(&live, |_| {}).await;
    let writer = writer(&app).await;
    append(&writer, (1..=3).map(|i| format!("keyed-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 7);
    let (code, out, err) = run_cli(&["audit", "verify", live.to_str().unwrap()], &[("AUDIT_HMAC_KEY", AUDIT_KEY)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("records: 7") && out.contains("unkeyed records: 4"), "{out}");
}

// --- The head in PostgreSQL -------------------------------------------------------------------

async fn recorded_seq(app: &TestApp, log: &str) -> Option<i64> {
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    let row = client.query_opt("SELECT seq FROM audit_chain_heads WHERE log = $1", &[&log]).await.unwrap();
    row.map(|r| r.get(0))
}

#[actix_web::test]
async fn audit_verify_detects_records_cut_off_the_end_with_the_head_recorded_in_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| s.audit.head_interval_secs = 1).await;
    let writer = writer(&app).await;
    append(&writer, (1..=20).map(|i| format!("headed-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 20);
    let log = live.display().to_string();
    eventually("the head to be recorded", Duration::from_secs(30), || async {
        (recorded_seq(&app, &log).await == Some(20)).then_some(())
    })
    .await;
    let url = app.state.settings.database.url.as_ref().unwrap().expose().to_string();
    let env = [("AUDIT_HMAC_KEY", AUDIT_KEY), ("DATABASE_URL", url.as_str())];

    let (code, out, err) = run_cli(&["audit", "verify", live.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("recorded head: seq 20") && out.contains("matches"), "{out}");

    // The last three records cut off: still a valid chain, but shorter than recorded.
    let (code, out, _, _keep) = {
        let mut lines: Vec<String> =
            std::fs::read_to_string(&live).unwrap().lines().map(|l| format!("{l}\n")).collect();
        lines.truncate(17);
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = copy_dir.path().join("audit.log");
        std::fs::write(&copy, lines.concat()).unwrap();
        let (code, out, err) = run_cli(&["audit", "verify", "--log-name", &log, copy.to_str().unwrap()], &env);
        (code, format!("{out}{err}"), copy, copy_dir)
    };
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TRUNCATED") && out.contains("ends at seq 17") && out.contains("seq 20"), "{out}");
}

#[actix_web::test]
async fn housekeeping_is_a_supervised_actor_that_records_heads_again_after_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| {
        s.audit.head_interval_secs = 1;
        s.supervision.min_backoff_ms = 2000;
        s.supervision.jitter = 0.0;
    })
    .await;
    let writer = writer(&app).await;
    let log = live.display().to_string();
    append(&writer, (1..=5).map(|i| format!("before-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 5);
    eventually("the head to be recorded", Duration::from_secs(30), || async {
        (recorded_seq(&app, &log).await == Some(5)).then_some(())
    })
    .await;
    eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) }).await;
    let housekeeping = |health: serde_json::Value| {
        health["actors"].as_array().unwrap().iter().find(|a| a["name"] == HOUSEKEEPING).cloned()
    };
    let entry = housekeeping(app.health().await).expect("health lists the housekeeping actor");
    assert_eq!(
        (&entry["kind"], &entry["critical"], &entry["state"]),
        (&json!("audit"), &json!(false), &json!("running"))
    );

    let res = app.inject(HOUSEKEEPING, json!({"kind": "panic"})).await;
    assert_eq!(res.status(), 503, "the panicking actor does not answer");
    // It is not critical: readiness holds while it waits out its backoff.
    assert_eq!(app.ready_status().await, 200);
    let entry = housekeeping(app.health().await).unwrap();
    assert_eq!((&entry["state"], &entry["last_failure"]["reason"]), (&json!("restarting"), &json!("panic")), "{entry}");

    eventually("the housekeeping actor to run again", Duration::from_secs(10), || async {
        housekeeping(app.health().await).filter(|e| e["state"] == "running" && e["restarts"] == 1).map(|_| ())
    })
    .await;
    append(&writer, (1..=5).map(|i| format!("after-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 11, "five more, and the record of the injection itself");
    eventually("the new head to be recorded", Duration::from_secs(30), || async {
        (recorded_seq(&app, &log).await == Some(11)).then_some(())
    })
    .await;
    let metrics = app.metrics().await;
    assert_eq!(sample(&metrics, &format!("beryl_actor_restarts_total{{actor=\"{HOUSEKEEPING}\"}}")), Some(1.0));
}

// --- The volume -------------------------------------------------------------------------------

#[actix_web::test]
async fn rotated_files_past_their_retention_are_removed_and_free_space_is_exported() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| {
        s.audit.max_file_bytes = 4096;
        s.audit.batch_max = 8;
        s.audit.retention_days = 1;
    })
    .await;
    let writer = writer(&app).await;
    append(&writer, (0..100).map(|i| format!("old-{i}")));
    flush(&writer).await;
    let old = rotated_files(&live).unwrap();
    assert!(old.len() >= 3, "{old:?}");
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    for (_, path) in &old {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(two_days_ago).unwrap();
    }
    // The next rotation removes what is past the retention.
    append(&writer, (0..100).map(|i| format!("new-{i}")));
    assert_eq!(flush(&writer).await.last_seq, 200);
    let left = rotated_files(&live).unwrap();
    assert!(old.iter().all(|f| !left.contains(f)), "old files left: {left:?}");
    let removed = sample(&app.metrics().await, "beryl_audit_files_removed_total");
    assert_eq!(removed, Some(old.len() as f64));
    // What is left continues the chain from where the removed files ended.
    assert!(verify(&live, Start::Genesis).is_err());
    let summary = verify(&live, Start::Continuing).expect("the rest verifies");
    assert_eq!(summary.last_seq, 200);

    let metrics = eventually("the volume to be measured", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        sample(&m, "beryl_audit_volume_free_bytes").is_some().then_some(m)
    })
    .await;
    let free = sample(&metrics, "beryl_audit_volume_free_bytes").unwrap();
    let size = sample(&metrics, "beryl_audit_volume_size_bytes").unwrap();
    assert!(free > 0.0 && size >= free, "free {free}, size {size}");
}

// --- Crash between commit and record ----------------------------------------------------------

#[actix_web::test]
async fn under_fail_closed_a_change_is_answered_only_once_its_record_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let mut process = Process::serve(&[
        ("FAULT_INJECTION_ENABLED", "true"),
        ("AUDIT_ENABLED", "true"),
        ("AUDIT_LOG_FILE", live.to_str().unwrap()),
        ("AUDIT_HMAC_KEY", AUDIT_KEY),
        ("BERYL__AUDIT__FAILURE_POLICY", "fail_closed"),
        // A record would wait this long in the writer's queue if nothing waited for it.
        ("BERYL__AUDIT__FLUSH_INTERVAL_MS", "3000"),
        ("BERYL__AUDIT__BATCH_MAX", "1000"),
    ]);
    let address = process.address().await;
    let client = reqwest::Client::new();
    let admin = test_token("root", &["admin"]);
    // Until the writer has opened the log, fail_closed refuses writes (503) without changing anything.
    eventually("a change to be answered", Duration::from_secs(20), || async {
        let res = client
            .post(format!("{address}/internal/faults/adapter-pool"))
            .bearer_auth(&admin)
            .json(&json!({"kind": "delay", "millis": 1}))
            .send()
            .await
            .unwrap();
        (res.status() == 200).then_some(())
    })
    .await;
    // The process dies right after the answer, with no chance to flush.
    process.signal(Signal::SIGKILL);
    process.exit_code(Duration::from_secs(20)).await;

    let summary = verify(&live, Start::Genesis).expect("intact");
    assert_eq!(summary.records, 1, "the answered change has its record on disk");
    assert_eq!(records(&live)[0].event.resource, "/internal/faults/adapter-pool");
}

#[actix_web::test]
async fn under_fail_closed_a_waiting_change_is_written_at_once_not_at_the_end_of_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    // Nothing waits this long: a record nobody waits for would stay queued for the whole test,
    // and a change waits for its record at most 5 s before it is answered 503.
    let app = app_with_audit(&live, |s| {
        s.audit.failure_policy = Some(AuditFailurePolicy::FailClosed);
        s.audit.flush_interval_ms = 10_000;
        s.audit.batch_max = 1000;
    })
    .await;
    let sink = app.state.actors.audit.clone().unwrap();
    eventually("ready", Duration::from_secs(10), || async { (app.ready_status().await == 200).then_some(()) }).await;
    // Queued without a waiter: it goes out with the next batch someone waits for.
    assert!(sink.record(event("unawaited".into())).is_some());

    let admin = app.token("root", &["admin"]);
    let changes: Vec<_> = (0..20)
        .map(|_| {
            let (client, url, admin) = (app.client.clone(), app.url("/internal/faults/adapter-pool"), admin.clone());
            actix_rt::spawn(async move {
                client.post(url).bearer_auth(admin).json(&json!({"kind": "delay", "millis": 0})).send().await
            })
        })
        .collect();
    for change in changes {
        assert_eq!(change.await.unwrap().unwrap().status(), 200, "the change is answered once its record is durable");
    }
    // On disk already: nothing flushed the writer.
    let written = records(&live);
    let answered = written.iter().filter(|r| r.event.resource == "/internal/faults/adapter-pool").count();
    assert_eq!(answered, 20);
    assert!(written.iter().any(|r| r.event.resource == "unawaited"), "the record queued before went with them");
    assert_eq!(verify(&live, Start::Genesis).expect("intact").records, 21);
    assert_eq!(sink.backlog(), 0);
}

//! The audit writer through the real application: concurrent appends, rotation, tampering seen
//! by `audit verify`, restarts and disk failures that lose nothing, and the flush at SIGTERM.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use beryl_core_api::{
    actors::{
        audit::{Append, AuditWriter, Flush, FlushReport, NAME},
        runtime::{ActorRef, ActorState, FaultKind},
    },
    config::AuditFailurePolicy,
    domain::audit::{
        verify::{rotated_files, verify, Start},
        AuditError, AuditEvent, AuditRecord,
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
    }
}

/// An application writing its audit log to `file`, after `adjust`.
async fn app_with_audit(file: &Path, adjust: impl FnOnce(&mut beryl_core_api::config::Settings)) -> TestApp {
    let file = file.to_path_buf();
    spawn_with(move |s| {
        s.audit.enabled = true;
        s.audit.log_file = file;
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
        .map(|line| AuditRecord::parse(line.as_bytes()).unwrap())
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
    let last_of_first = AuditRecord::parse(first_file.last().unwrap().as_bytes()).unwrap();
    let next_file = std::fs::read_to_string(&rotated[1].1).unwrap();
    let first_of_next = AuditRecord::parse(next_file.lines().next().unwrap().as_bytes()).unwrap();
    assert_eq!(first_of_next.prev_hash, last_of_first.hash);
    assert_eq!(first_of_next.seq, last_of_first.seq + 1);

    // The CLI agrees, named by the live file or by a rotated member, and needs no service settings.
    for path in [live.clone(), rotated[1].1.clone()] {
        let (code, stdout, stderr) = run_cli(&["audit", "verify", path.to_str().unwrap()], &[("PORT", "eighty")]);
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
    let (code, stdout, stderr) = run_cli(&["audit", "verify", copy.to_str().unwrap()], &[]);
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
    let (code, stdout, _) = run_cli(&["audit", "verify", live.to_str().unwrap()], &[]);
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
async fn a_thousand_concurrent_audited_requests_leave_exactly_a_thousand_verifiable_records() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("audit.log");
    let app = app_with_audit(&live, |s| {
        s.rate_limit.api_read.per_ip = 10_000;
        s.rate_limit.api_write.per_ip = 10_000;
        s.rate_limit.api_write.per_subject = 10_000;
    })
    .await;
    let writer = writer(&app).await;
    let token = app.token("ops", &["system:read"]);
    let admin = app.token("root", &["admin"]);
    // 500 state-changing requests (each records success) and 500 authorization failures (each
    // records a denial), all at once.
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
    let report = flush(&writer).await;
    assert_eq!(report.last_seq, 1000);
    let summary = verify(&live, Start::Genesis).expect("the chain verifies");
    assert_eq!(summary.records, 1000);
    let outcomes: Vec<_> = records(&live).into_iter().map(|r| r.event.outcome).collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "success").count(), 500);
    assert_eq!(outcomes.iter().filter(|o| *o == "denied").count(), 500);
}

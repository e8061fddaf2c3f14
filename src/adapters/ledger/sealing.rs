//! The ledger's personal fields in PostgreSQL, sealed by the privacy vault: a wallet's owner
//! (found by its blind index), the references of its journal entries and transactions (under
//! the owner's key), and the requests and receipts idempotency keys keep (under the key of the
//! caller whose key it is, the scope being stored as the caller's blind index).
//!
//! What the ledger's rules read (balances, statuses, amounts, accounts) stays in the clear, so
//! that balances and conservation checks hold whatever was erased.

use serde_json::Value;
use tokio_postgres::Client;

use super::StoreError;
use crate::{
    adapters::{
        postgres::PostgresError,
        privacy::{Vault, VaultError},
    },
    domain::{
        fintech::WalletId,
        privacy::{Personal, Place, Sealed, SubjectKey},
    },
};

/// Field of a wallet's owner.
pub const OWNER: &str = "wallets.owner";
/// Field of a journal entry's reference (and of the wallet event made from the entry).
pub const JOURNAL_REFERENCE: &str = "wallet_journal.reference";
/// Field of a transaction's reference.
pub const TRANSACTION_REFERENCE: &str = "ledger_transactions.reference";
/// Field of what an idempotency key keeps.
pub const KEPT: &str = "idempotency_keys.kept";

impl From<VaultError> for StoreError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(e) => StoreError::Postgres(e),
            VaultError::Privacy(e) => StoreError::Corrupt(e.to_string()),
        }
    }
}

/// The row id of a journal entry.
pub fn entry_row(wallet: WalletId, seq: i64) -> String {
    format!("{wallet}:{seq}")
}

/// The row id of what an idempotency key keeps.
pub fn kept_row(scope: &str, key: &str, part: &str) -> String {
    format!("{scope}:{key}:{part}")
}

/// `plaintext` sealed under `key` at `place`, in its text form; `None` without a key (its subject
/// was erased: nothing personal is written in the clear).
pub fn seal(key: Option<&SubjectKey>, field: &str, row: &str, plaintext: &str) -> Result<Option<String>, StoreError> {
    let Some(key) = key else { return Ok(None) };
    Sealed::seal(key, Place::new(field, row), plaintext)
        .map(|s| Some(s.to_text()))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A stored text field: sealed (`pd1.…`) and opened, or in the clear (written before the fields
/// were sealed, until `migrate` seals it).
pub async fn open(
    vault: &Vault,
    stored: Option<String>,
    field: &str,
    row: &str,
) -> Result<Personal<Option<String>>, StoreError> {
    match stored {
        None => Ok(Personal::Value(None)),
        Some(text) => match Sealed::parse(&text) {
            Ok(sealed) => Ok(vault.open(&sealed, Place::new(field, row)).await?.map(Some)),
            Err(_) => Ok(Personal::Value(Some(text))),
        },
    }
}

/// The key that seals a stored field's subject, from the field (`None` once erased).
pub async fn key_of_field(vault: &Vault, stored: &str) -> Result<Option<SubjectKey>, StoreError> {
    match Sealed::parse(stored) {
        Ok(sealed) => Ok(vault.key(sealed.key_id()).await?),
        Err(_) => Ok(Some(vault.key_of(stored).await?)),
    }
}

/// A kept JSON value sealed as a JSON string.
pub fn seal_json(key: &SubjectKey, row: &str, value: &Value) -> Result<Value, StoreError> {
    Ok(seal(Some(key), KEPT, row, &value.to_string())?.map(Value::String).unwrap_or(Value::Null))
}

/// A kept JSON value opened; `None` once erased.
pub async fn open_json(vault: &Vault, stored: Value, row: &str) -> Result<Option<Value>, StoreError> {
    match stored {
        Value::String(text) => match open(vault, Some(text), KEPT, row).await? {
            Personal::Value(Some(json)) => {
                serde_json::from_str(&json).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
            _ => Ok(None),
        },
        Value::Null => Ok(Some(Value::Null)),
        // Kept before what keys keep was sealed.
        other => Ok(Some(other)),
    }
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(PostgresError::Query(e))
}

/// What [`seal_existing`] sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sealing {
    /// Wallet owners.
    pub owners: u64,
    /// Journal and transaction references.
    pub references: u64,
    /// Idempotency keys rescoped and sealed.
    pub kept: u64,
}

/// Seal the personal fields written before they were sealed, `batch` rows at a time: run by
/// `migrate` (and at start-up with `database.migrate_on_start`) after the SQL migrations, as it
/// needs the master key. Idempotent: sealed fields are left alone.
pub async fn seal_existing(client: &Client, vault: &Vault, batch: i64) -> Result<Sealing, StoreError> {
    let mut done = Sealing::default();
    loop {
        let rows = client
            .query("SELECT id, owner FROM wallets WHERE owner IS NOT NULL ORDER BY id LIMIT $1", &[&batch])
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let (id, owner): (uuid::Uuid, String) = (row.get(0), row.get(1));
            let key = vault.key_of(&owner).await?;
            let sealed = seal(Some(&key), OWNER, &id.to_string(), &owner)?;
            let index = vault.subject_index(&owner);
            client
                .execute(
                    "UPDATE wallets SET owner = NULL, owner_index = $2, owner_sealed = $3 WHERE id = $1",
                    &[&id, &index.as_bytes(), &sealed],
                )
                .await
                .map_err(pg)?;
            done.owners += 1;
        }
    }
    loop {
        let rows = client
            .query(
                "SELECT j.wallet_id, j.seq, j.reference, w.owner_sealed FROM wallet_journal j JOIN wallets w ON w.id = j.wallet_id
                 WHERE j.reference IS NOT NULL AND j.reference NOT LIKE 'pd1.%' LIMIT $1",
                &[&batch],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let (wallet, seq, reference, owner): (uuid::Uuid, i64, String, Option<String>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let key = match &owner {
                Some(owner) => key_of_field(vault, owner).await?,
                None => None,
            };
            let sealed = seal(key.as_ref(), JOURNAL_REFERENCE, &entry_row(WalletId(wallet), seq), &reference)?;
            client
                .execute(
                    "UPDATE wallet_journal SET reference = $3 WHERE wallet_id = $1 AND seq = $2",
                    &[&wallet, &seq, &sealed],
                )
                .await
                .map_err(pg)?;
            done.references += 1;
        }
    }
    loop {
        // A deposit credits its wallet, a withdrawal debits it: the wallet is the account that
        // is not `external:…`.
        let rows = client
            .query(
                "SELECT t.id, t.reference, w.owner_sealed FROM ledger_transactions t
                 LEFT JOIN wallets w ON w.id::text = CASE t.kind WHEN 'deposit' THEN t.credit_account ELSE t.debit_account END
                 WHERE t.reference IS NOT NULL AND t.reference NOT LIKE 'pd1.%' LIMIT $1",
                &[&batch],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let (id, reference, owner): (uuid::Uuid, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
            let key = match &owner {
                Some(owner) => key_of_field(vault, owner).await?,
                None => None,
            };
            let sealed = seal(key.as_ref(), TRANSACTION_REFERENCE, &id.to_string(), &reference)?;
            client
                .execute("UPDATE ledger_transactions SET reference = $2 WHERE id = $1", &[&id, &sealed])
                .await
                .map_err(pg)?;
            done.references += 1;
        }
    }
    loop {
        // Scopes written before are the subject itself; rescoped ones are 64 hex digits.
        let rows = client
            .query(
                "SELECT scope, key, request_body, receipt FROM idempotency_keys
                 WHERE scope !~ '^[0-9a-f]{64}$' LIMIT $1",
                &[&batch],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let (scope, key, body, receipt): (String, String, Value, Option<Value>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let subject_key = vault.key_of(&scope).await?;
            let index = vault.subject_index(&scope).hex();
            let body = seal_json(&subject_key, &kept_row(&index, &key, "request"), &body)?;
            let receipt =
                receipt.map(|r| seal_json(&subject_key, &kept_row(&index, &key, "receipt"), &r)).transpose()?;
            client
                .execute(
                    "UPDATE idempotency_keys SET scope = $3, request_body = $4, receipt = $5, response = NULL
                     WHERE scope = $1 AND key = $2",
                    &[&scope, &key, &index, &body, &receipt],
                )
                .await
                .map_err(pg)?;
            done.kept += 1;
        }
    }
    Ok(done)
}

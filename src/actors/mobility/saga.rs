//! The ride's payment, as a saga over the ledger: the fare is held on the rider's wallet when the
//! ride is requested; once the ride is over, the hold is captured (to the platform's wallet of
//! the currency) and the driver's share paid out from it, or released. Every step is idempotent:
//! the hold is named by the ride's id (placing, posting or releasing it again changes nothing or
//! is refused with the state it is in) and the payout by an id derived from the ride's, applied
//! once; so a step interrupted by a crash is simply run again from the ride as stored.

use std::{collections::HashMap, sync::Arc};

use chrono::Utc;
use parking_lot::Mutex;
use uuid::Uuid;

use super::messages::{Answer, MobilityFailure};
use crate::{
    actors::fintech::FintechClient,
    domain::{
        fintech::{Amount, Currency, FintechError, HoldStatus, LedgerCommand, LedgerOutcome, Wallet, WalletId},
        mobility::{fare_cap, split, PaymentState, Ride, RideState},
    },
};

/// The kind of a ride's hold.
pub const HOLD_KIND: &str = "ride";

/// Namespace of the ids derived from a ride's (its payout's ledger transaction, the platform's
/// wallets).
const NAMESPACE: Uuid = Uuid::from_u128(0x6d0b_1e7a_52c4_4b8e_9a3f_0c21_d5e4_7f10);

/// The ledger transaction id of `ride`'s payout to its driver.
pub fn payout_id(ride: Uuid) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("ride-payout:{ride}").as_bytes())
}

/// The id of the platform's wallet of `currency` (owned by `owner`): the same on every replica.
pub fn platform_wallet_id(owner: &str, currency: Currency) -> WalletId {
    WalletId(Uuid::new_v5(&NAMESPACE, format!("platform:{owner}:{currency}").as_bytes()))
}

/// The ledger side of the rides: the hold, the capture, the payout, the release.
#[derive(Clone)]
pub struct RidePayments {
    fintech: FintechClient,
    platform_owner: Arc<str>,
    commission_bps: u32,
    platform: Arc<Mutex<HashMap<Currency, WalletId>>>,
}

/// What a settlement step decided about the ride's money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The amount was captured (and the driver's share paid out).
    Captured,
    /// The hold was released.
    Released,
    /// A step was refused: the hold was released, and the reason is kept.
    Failed(String),
}

fn ledger_refusal(outcome: LedgerOutcome) -> Result<(), FintechError> {
    match outcome {
        LedgerOutcome::Refused(e) => Err(e),
        _ => Ok(()),
    }
}

impl RidePayments {
    /// The payments of rides through `fintech`; commissions go to wallets of `platform_owner`.
    pub fn new(fintech: FintechClient, platform_owner: &str, commission_bps: u32) -> Self {
        Self { fintech, platform_owner: platform_owner.into(), commission_bps, platform: Arc::default() }
    }

    /// The ledger's client.
    pub fn fintech(&self) -> &FintechClient {
        &self.fintech
    }

    /// Hold the most `ride` can cost (its quote plus `tolerance_pct`) on the rider's wallet until
    /// `hours` from now; the capture takes the final fare and releases the rest.
    pub async fn hold(&self, ride: &Ride, hours: u64, tolerance_pct: u32) -> Answer<()> {
        let amount = Amount::new(fare_cap(ride.quote.fare, tolerance_pct))?;
        let expires_at = Utc::now() + chrono::Duration::hours(i64::try_from(hours).unwrap_or(24));
        let command = LedgerCommand::PlaceHold {
            hold: ride.id,
            wallet: ride.rider_wallet,
            amount,
            kind: HOLD_KIND.to_owned(),
            expires_at,
        };
        ledger_refusal(self.fintech.apply(command, None).await?)?;
        Ok(())
    }

    /// Release `ride`'s hold (again, harmlessly: a hold already released is refused with its
    /// state, which is what was asked).
    pub async fn release(&self, ride: &Ride) -> Answer<()> {
        let command = LedgerCommand::VoidHold { hold: ride.id, wallet: ride.rider_wallet };
        match self.fintech.apply(command, None).await? {
            LedgerOutcome::Refused(FintechError::HoldNotPending(_, HoldStatus::Voided | HoldStatus::Expired))
            | LedgerOutcome::Refused(FintechError::HoldNotFound(_)) => Ok(()),
            outcome => Ok(ledger_refusal(outcome)?),
        }
    }

    /// The platform's wallet of `currency`, opened the first time it is needed (its id is derived
    /// from the currency, so every replica finds the same one).
    pub async fn platform_wallet(&self, currency: Currency) -> Answer<WalletId> {
        if let Some(id) = self.platform.lock().get(&currency) {
            return Ok(*id);
        }
        let id = platform_wallet_id(&self.platform_owner, currency);
        if self.fintech.wallet(id, false).await?.is_none() {
            let mut wallet = Wallet::open(&self.platform_owner, currency)?;
            wallet.id = id;
            let opened = self.fintech.apply(LedgerCommand::Open(Box::new(wallet)), None).await;
            // Another replica may have opened it meanwhile: what counts is that it exists now.
            if self.fintech.wallet(id, true).await?.is_none() {
                opened?;
                return Err(MobilityFailure::Contended);
            }
        }
        self.platform.lock().insert(currency, id);
        Ok(id)
    }

    /// Capture `amount` of `ride`'s hold to the platform's wallet, then pay the driver's share
    /// from it to `driver_wallet` (none: the platform keeps it all). Both steps may run again.
    pub async fn capture(&self, ride: &Ride, amount: i64, driver_wallet: Option<WalletId>) -> Answer<Settled> {
        let platform = self.platform_wallet(ride.quote.currency).await?;
        let command = LedgerCommand::PostHold {
            hold: ride.id,
            wallet: ride.rider_wallet,
            amount: Amount::new(amount)?,
            to: Some(platform),
            reference: format!("ride {}", ride.id),
        };
        match self.fintech.apply(command, None).await? {
            LedgerOutcome::Applied { .. }
            | LedgerOutcome::Refused(FintechError::HoldNotPending(_, HoldStatus::Posted)) => {}
            LedgerOutcome::Refused(e) => {
                self.release(ride).await?;
                return Ok(Settled::Failed(ledger_reason(&e)));
            }
            LedgerOutcome::DuplicateKey | LedgerOutcome::ConflictingDuplicate => {}
        }
        let (share, _) = split(amount, self.commission_bps);
        if let (Some(driver_wallet), true) = (driver_wallet, share > 0) {
            let payout = LedgerCommand::Transfer {
                from: platform,
                to: driver_wallet,
                amount: Amount::new(share)?,
                currency: Some(ride.quote.currency),
            };
            // The fare is captured by now: a payout the ledger refuses is tried again (by the
            // resumption of due payment steps) until it goes through, never given back.
            match self.fintech.apply_once(payout, payout_id(ride.id), None).await? {
                LedgerOutcome::Applied { .. } | LedgerOutcome::DuplicateKey => {}
                LedgerOutcome::Refused(e) => return Err(e.into()),
                LedgerOutcome::ConflictingDuplicate => return Err(MobilityFailure::Contended),
            }
        }
        Ok(Settled::Captured)
    }

    /// The step `ride` is due, if any: capture a completed ride's fare or a cancellation fee,
    /// release the hold of a ride given up or whose step failed.
    pub async fn settle(&self, ride: &Ride, driver_wallet: Option<WalletId>) -> Answer<Option<Settled>> {
        let fee = ride.cancellation.as_ref().map_or(0, |c| c.fee);
        Ok(Some(match (ride.state, ride.payment) {
            (_, PaymentState::Failed) => {
                self.release(ride).await?;
                Settled::Released
            }
            (RideState::Completed, PaymentState::Held) => {
                self.capture(ride, ride.fare.unwrap_or(ride.quote.fare), driver_wallet).await?
            }
            (RideState::Cancelled, PaymentState::Held) if fee > 0 => self.capture(ride, fee, driver_wallet).await?,
            (RideState::Cancelled | RideState::Expired, PaymentState::Held) => {
                self.release(ride).await?;
                Settled::Released
            }
            _ => return Ok(None),
        }))
    }
}

/// Why a step failed, as the ride keeps it: the ledger's code.
fn ledger_reason(e: &FintechError) -> String {
    use crate::error::code::Coded;
    format!("ledger.{}", e.code().as_str())
}

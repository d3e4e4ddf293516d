//! A cash-out paid through the shard that owns the bettor: one Postgres transaction (the
//! bet's parts, its `bet_cash_outs` row, the `bet_credit` row, the balance), then the same
//! credit on the shard's cached balance. One writer per user, like every balance change.
//!
//! The write does not hold the shard: its other users' stakes (and this user's) are served
//! while it runs. The user's cached account is kept meanwhile (`Account::crediting`), and
//! the credit is added when the write commits, unless the balance was read from the
//! database in between (a deposit's answer, a reload), which may or may not hold the
//! credit: then the balance is read again before the next stake (or, with stakes in
//! flight, at the next read). A credit only adds money, so until it lands the cache is
//! lower than the database, never higher.
use actix::{ActorFutureExt, Handler, Message, ResponseActFuture, WrapFuture};
use tokio::sync::oneshot;

use super::shard::WalletShard;
use crate::db::cashout::{self as cdb, CashOutWrite, CashOutWriteError};
use crate::domain::money::Money;

/// The outcome of a cash-out write: its sequence number and the balance after it.
pub type PaidCashOut = Result<(i32, Money), CashOutWriteError>;

#[derive(Message)]
#[rtype(result = "()")]
pub struct PayCashOut {
    pub write: CashOutWrite,
    pub reply: oneshot::Sender<PaidCashOut>,
}

impl Handler<PayCashOut> for WalletShard {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: PayCashOut, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let PayCashOut { write, reply } = msg;
        let user_id = write.user_id;
        let amount = match Money::from_decimal(write.amount) {
            Ok(amount) => amount,
            Err(e) => {
                // Nothing written: a cash-out pays money, never a finer amount.
                let _ = reply.send(Err(CashOutWriteError::Pool(format!(
                    "cash-out amount: {e}"
                ))));
                return Box::pin(actix::fut::ready(()));
            }
        };
        // The balance version the credit will be added to (a trusted cached balance only).
        let version = self
            .accounts
            .get_mut(&user_id)
            .filter(|a| !a.stale)
            .map(|a| {
                a.crediting += 1;
                a.balance_version
            });
        Box::pin(
            async move {
                let mut client = pool
                    .get()
                    .await
                    .map_err(|e| CashOutWriteError::Pool(e.to_string()))?;
                let (seq, balance) = cdb::write(&mut client, &write).await?;
                // A `NUMERIC(12,2)` balance is always money; a retry with the same key
                // would find the committed payment.
                let balance = Money::from_decimal(balance).map_err(|e| {
                    CashOutWriteError::Pool(format!("balance after the cash-out: {e}"))
                })?;
                Ok((seq, balance))
            }
            .into_actor(self)
            .map(move |out: PaidCashOut, act, _| {
                if let Some(a) = act.accounts.get_mut(&user_id) {
                    if version.is_some() {
                        a.crediting = a.crediting.saturating_sub(1);
                    }
                    if out.is_ok() {
                        match version {
                            Some(v) if v == a.balance_version => a.balance += amount,
                            // Read from the database meanwhile, maybe with the credit: read
                            // it again before the next stake. With stakes in flight a read
                            // could not tell their debits apart; the cache keeps the lower
                            // figure until its next read (never more than is there).
                            _ if !a.holds() => a.stale = true,
                            _ => {}
                        }
                    }
                }
                let _ = reply.send(out);
            }),
        )
    }
}

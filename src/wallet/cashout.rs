//! A cash-out paid through the shard that owns the bettor: one Postgres transaction (the
//! bet's parts, its `bet_cash_outs` row, the `bet_credit` row, the balance), then the same
//! credit on the shard's cached balance. One writer per user, like every balance change.
use actix::{ActorFutureExt, AtomicResponse, Handler, Message, WrapFuture};
use rust_decimal::Decimal;
use tokio::sync::oneshot;

use super::shard::WalletShard;
use crate::db::cashout::{self as cdb, CashOutWrite, CashOutWriteError};

/// The outcome of a cash-out write: its sequence number and the balance after it.
pub type PaidCashOut = Result<(i32, Decimal), CashOutWriteError>;

#[derive(Message)]
#[rtype(result = "()")]
pub struct PayCashOut {
    pub write: CashOutWrite,
    pub reply: oneshot::Sender<PaidCashOut>,
}

impl Handler<PayCashOut> for WalletShard {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: PayCashOut, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let PayCashOut { write, reply } = msg;
        let (user_id, amount) = (write.user_id, write.amount);
        AtomicResponse::new(Box::pin(
            async move {
                let mut client = pool
                    .get()
                    .await
                    .map_err(|e| CashOutWriteError::Pool(e.to_string()))?;
                cdb::write(&mut client, &write).await
            }
            .into_actor(self)
            .map(move |out: PaidCashOut, act, _| {
                if out.is_ok() {
                    if let Some(a) = act.accounts.get_mut(&user_id) {
                        a.balance += amount;
                    }
                }
                let _ = reply.send(out);
            }),
        ))
    }
}

//! The end of a referral, written through the shard that owns the bettor: one Postgres
//! transaction (`db::referrals::end`), then the refund, if any, on the shard's cached
//! balance. One writer per user, like every balance change.
use actix::{ActorFutureExt, AtomicResponse, Handler, Message, WrapFuture};
use tokio::sync::oneshot;

use super::shard::WalletShard;
use crate::db::referrals::{self as rdb, EndError, Ended, Ending};
use crate::domain::ids::{BetId, UserId};
use crate::domain::money::Money;

#[derive(Message)]
#[rtype(result = "()")]
pub struct EndReferral {
    pub bet_id: BetId,
    pub user_id: UserId,
    pub ending: Ending,
    pub by: Option<UserId>,
    /// A counter-offer's potential win is rounded at the bet's currency's scale.
    pub currencies: std::sync::Arc<crate::domain::currency::Currencies>,
    pub reply: oneshot::Sender<Result<Ended, EndError>>,
}

impl Handler<EndReferral> for WalletShard {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: EndReferral, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let EndReferral {
            bet_id,
            user_id,
            ending,
            by,
            currencies,
            reply,
        } = msg;
        AtomicResponse::new(Box::pin(
            async move {
                let mut client = pool
                    .get()
                    .await
                    .map_err(|e| EndError::Pool(e.to_string()))?;
                rdb::end(&mut client, bet_id, ending, by, &currencies).await
            }
            .into_actor(self)
            .map(move |out: Result<Ended, EndError>, act, _| {
                if let Ok(ended) = &out {
                    if let Some(a) = act.accounts.get_mut(&user_id) {
                        match Money::from_decimal(ended.refund) {
                            Ok(refund) => a.balance += refund,
                            // Not money (never from its column): read the balance again,
                            // as a cash-out does when it cannot add its credit.
                            Err(_) if !a.holds() => a.stale = true,
                            Err(_) => {}
                        }
                    }
                }
                let _ = reply.send(out);
            }),
        ))
    }
}

//! The one way HTTP and GraphQL handlers talk to actors: send with the runtime's timeout and
//! flatten both error layers into an [`AppError`] (mailbox closed: 503 with Retry-After;
//! timeout: 504; domain error: its own status).

use actix::Message;

use crate::{
    actors::runtime::{ActorRef, Handle},
    error::AppError,
};

/// Ask `actor` and flatten the answer.
pub async fn ask<A, M, T, E>(actor: &ActorRef<A>, msg: M) -> Result<T, AppError>
where
    A: Handle<M>,
    M: Message<Result = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Into<AppError> + Send + 'static,
{
    actor.ask(msg).await?.map_err(Into::into)
}

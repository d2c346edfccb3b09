//! The typed client of the `Review`, `Admin` and `Report` services: one
//! [`Api`] over the signed gRPC channel of [`Grpc`], whose methods take and
//! return domain types (the core's, or the small plain structs of this
//! module). Protobuf stays inside this module: requests are built and
//! replies decoded here, through `fieldsync_proto::convert`, and every
//! listing is read through the one paging helper, [`pages`].
//!
//! Refusals come back as [`Error::Status`] (the server's words and its
//! code), replies that make no sense as [`Error::Unreadable`].

mod admin;
mod report;
mod review;

use std::future::Future;

use fieldsync::DeviceId;

pub use admin::{
    Enrollment, Imported, IssuedToken, NewEnrollment, NewIndicator, TokenInfo, Tree, UserChange,
};
pub use report::{Backup, PlanFigure, Query, Rows};
pub use review::{
    ConflictFilter, Decided, Decision, HistoryEntry, HistoryFilter, Reports, Settle, Settled,
    SubmissionDetail, SubmissionFilter, SubmissionSummary,
};

use crate::error::{Error, Result};
use crate::remote::{Grpc, Remote, ServerStatus};

/// The review, admin and report calls of one signed-in caller.
#[derive(Clone)]
pub struct Api {
    grpc: Grpc,
    /// Items asked for per page of a listing (0: the server's page size).
    page_size: u32,
}

impl Api {
    /// The calls over an existing connection (and its token).
    pub fn new(grpc: Grpc) -> Api {
        Api { grpc, page_size: 0 }
    }

    /// The same calls, asking for at most `n` items per page of a listing
    /// (the server caps it; 0: the server's page size). Listings still
    /// return every item.
    pub fn with_page_size(self, n: u32) -> Api {
        Api { page_size: n, ..self }
    }

    /// Connects to `url` as the owner of `token` ([`Grpc::connect`]).
    pub async fn connect(url: &str, token: &str) -> Result<Api> {
        Ok(Api::new(Grpc::connect(url, token).await?))
    }

    /// The connection underneath, for the sync protocol's calls.
    pub fn grpc(&self) -> &Grpc {
        &self.grpc
    }

    /// Who the token belongs to and the org units they cover (the sync
    /// service's `Status`, for no device).
    pub async fn status(&self) -> Result<ServerStatus> {
        self.grpc.clone().status(DeviceId(uuid::Uuid::nil())).await
    }
}

/// One page of a listing, and where the next one starts (`None` after the
/// last page).
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// At most this many pages are read for one listing: a server that never
/// says "last page" cannot keep a caller reading for ever.
pub const MAX_PAGES: usize = 100_000;

/// Reads a listing page by page: `page(cursor, wanted)` fetches the page
/// after `cursor` (`None`: the first), asking for at most `wanted` items
/// when a `limit` is given. Stops after the last page, once `limit` items
/// are read (the rest are dropped), or with [`Error::Unreadable`] when the
/// server repeats a cursor or sends more than [`MAX_PAGES`] pages.
pub async fn pages<T, C, F, Fut>(limit: Option<usize>, mut page: F) -> Result<Vec<T>>
where
    C: PartialEq + Clone,
    F: FnMut(Option<C>, Option<usize>) -> Fut,
    Fut: Future<Output = Result<Page<T, C>>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<C> = None;
    for _ in 0..MAX_PAGES {
        let wanted = limit.map(|n| n.saturating_sub(items.len()));
        if wanted == Some(0) {
            return Ok(items);
        }
        let Page { items: more, next } = page(cursor.clone(), wanted).await?;
        items.extend(more);
        if let Some(n) = limit {
            items.truncate(n);
        }
        match next {
            None => return Ok(items),
            Some(next) if cursor.as_ref() == Some(&next) => {
                return Err(Error::Unreadable(
                    "the server sent the same page twice: its listing does not move on".into(),
                ))
            }
            Some(next) => cursor = Some(next),
        }
    }
    Err(Error::Unreadable(format!("the server's listing went on past {MAX_PAGES} pages")))
}

/// A string cursor as the services send it: empty after the last page.
fn next_of(next: String) -> Option<String> {
    Some(next).filter(|n| !n.is_empty())
}

/// A reply this client cannot read.
fn unreadable(e: fieldsync::Error) -> Error {
    Error::Unreadable(format!("the server sent something this client cannot read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(upto: u32, per_page: u32) -> impl FnMut(Option<u32>, Option<usize>) -> Fut {
        move |after, wanted| {
            let from = after.map_or(0, |a| a + 1);
            let size = wanted.map_or(per_page, |w| per_page.min(w as u32));
            let items: Vec<u32> = (from..upto.min(from + size)).collect();
            let next = items.last().copied().filter(|l| l + 1 < upto);
            std::future::ready(Ok(Page { items, next }))
        }
    }

    type Fut = std::future::Ready<Result<Page<u32, u32>>>;

    #[tokio::test]
    async fn pages_read_every_page_or_up_to_the_limit() {
        assert_eq!(pages(None, numbers(10, 3)).await.unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(pages(Some(4), numbers(10, 3)).await.unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(pages(Some(40), numbers(10, 3)).await.unwrap().len(), 10);
        assert!(pages(None, numbers(0, 3)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_cursor_that_does_not_move_ends_the_listing() {
        let stuck = |_, _| std::future::ready(Ok(Page { items: vec![1u32], next: Some(7u32) }));
        let e = pages(None, stuck).await.unwrap_err();
        assert!(matches!(e, Error::Unreadable(_)), "{e}");
    }
}

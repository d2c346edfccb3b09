//! The fieldsync tablet: a local store that works fully offline
//! ([`local::Tablet`]), the sync engine that reconciles it with the server
//! ([`sync::sync`]) over a [`remote::Remote`], the typed client of the
//! review, admin and report services ([`api::Api`]), and the `fieldsync` CLI
//! on top.

pub mod api;
pub mod error;
pub mod export;
pub mod local;
pub mod remote;
pub mod sync;
pub mod unsent;

pub use api::Api;
pub use error::{Error, Result};

pub use local::{Meta, Tablet};
pub use remote::{Grpc, Remote};

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sets up a new tablet as `fieldsync init` does: a fresh device id, the
/// name of the token's user as author, and the catalogue from bootstrap.
pub async fn init_tablet(
    engine: std::sync::Arc<dyn fieldsync_store::Engine>,
    server: &str,
    token: &str,
) -> Result<Tablet> {
    let mut remote = Grpc::connect(server, token).await?;
    let device = fieldsync::DeviceId(uuid::Uuid::new_v4());
    let me = remote.status(device).await?;
    let catalogue = remote.bootstrap().await?;
    let meta = Meta {
        device,
        server: server.to_owned(),
        token: token.to_owned(),
        author: me.user_name,
        cursor: 0,
        next_mutation_id: 1,
        acknowledged_through: 0,
        hlc: fieldsync::Hlc::default(),
        last_sync_ms: None,
    };
    let tablet = Tablet::init(engine, meta, catalogue)?;
    tablet.take_token(token, &me.user_id, &tablet.meta().author)?;
    Ok(tablet)
}

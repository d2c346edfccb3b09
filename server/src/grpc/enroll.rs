//! The `fieldsync.v1.Enroll` service: the one call answered without a
//! token. A new device of a surveyor trades a one-time code for a token and
//! a device id of its own.
//!
//! The peer's address is read here (IPv6 cut to its /64, which one
//! household or phone holds whole); the use case ([`App::redeem`]) holds
//! each address to its budget of wrong codes.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use fieldsync_proto::convert;
use fieldsync_proto::v1::enroll_server::Enroll;
use fieldsync_proto::v1::{RedeemReply, RedeemRequest};
use fieldsync_proto::SCHEMA_VERSION;
use tonic::transport::server::TlsConnectInfo;
use tonic::{Request, Response, Status};

use super::admin::token_to_wire;
use super::{blocking, Connection};
use crate::app::admin::Redeem;
use crate::app::{self, App};

pub struct EnrollService {
    app: Arc<App>,
}

impl EnrollService {
    pub fn new(app: Arc<App>) -> Self {
        EnrollService { app }
    }
}

/// The address a request came from, IPv6 cut to its /64; none when the
/// transport does not say (an in-process call that did not pass it on).
fn peer<T>(request: &Request<T>) -> Option<IpAddr> {
    let extensions = request.extensions();
    let address = extensions
        .get::<Connection>()
        .or_else(|| extensions.get::<TlsConnectInfo<Connection>>().map(|c| c.get_ref()))
        .and_then(|c| c.tcp.remote_addr)
        .or_else(|| request.remote_addr())?;
    Some(match address.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    })
}

/// Refuses a request from a device of a later schema (the use case
/// refuses codes and labels longer than any).
fn well_formed(req: &RedeemRequest) -> Result<(), app::Error> {
    if req.schema_version > SCHEMA_VERSION {
        return Err(app::Error::new(
            app::Kind::OutOfSequence,
            format!(
                "this server speaks schema version {SCHEMA_VERSION}, the device {}: update the \
                 server",
                req.schema_version
            ),
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Enroll for EnrollService {
    async fn redeem(
        &self,
        request: Request<RedeemRequest>,
    ) -> Result<Response<RedeemReply>, Status> {
        let peer = peer(&request);
        let req = request.into_inner();
        let refusal = well_formed(&req).err();
        let redeemed = blocking(&self.app, move |app| {
            let code = Redeem {
                peer,
                code: &req.code,
                label: &req.device_label,
                expected_user: &req.expected_user_id,
            };
            app.redeem(&code, refusal)
        })
        .await;
        match redeemed {
            Ok(r) => {
                tracing::info!(user = %r.user.id, token = %r.info.id, "enrolled a device");
                Ok(Response::new(RedeemReply {
                    token: r.token,
                    token_info: Some(token_to_wire(&r.info)),
                    device_id: r.device.0.to_string(),
                    user: Some(convert::user_to_wire(&r.user)),
                }))
            }
            Err(status) => Err(status),
        }
    }
}

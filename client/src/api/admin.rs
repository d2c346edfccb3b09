//! The `Admin` service: users, tokens, enrollment codes, the catalogue and
//! backups, in domain types.

use fieldsync::access::User;
use fieldsync::{Indicator, OrgUnit};
use fieldsync_proto::convert;
use fieldsync_proto::v1::{
    self, CreateEnrollmentRequest, CreateUserRequest, ImportCatalogueRequest, ImportUsersRequest,
    IssueTokenRequest, ListEnrollmentsRequest, ListTokensRequest, ListUsersRequest,
    RevokeEnrollmentRequest, RevokeTokenRequest, UpdateUserRequest,
};

use super::{next_of, pages, unreadable, Api, Backup, Page};
use crate::error::{Error, Result};

/// What an import added, and how many of the units and indicators it
/// was given the catalogue already held exactly so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub org_units: usize,
    pub indicators: usize,
    pub unchanged: usize,
}

/// The org tree of a day, as an admin reads it back.
#[derive(Clone, Debug)]
pub struct Tree {
    pub units: Vec<OrgUnit>,
    /// Units no longer in force: each as it last stood, the day it went
    /// and its successor (empty for none).
    pub retired: Vec<(OrgUnit, String, String)>,
    /// Every change so far: its day and what it did.
    pub changes: Vec<(String, String)>,
}

/// A change of one user; every part left out stays as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    /// Replaces the user's areas.
    pub areas: Option<Vec<String>>,
}

/// A token as lists show it (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub created_ms: u64,
    /// 0: never expires.
    pub expires_ms: u64,
    pub revoked: bool,
}

/// A token just issued: the token is in this answer once and never again.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub info: TokenInfo,
    pub token: String,
}

/// A one-time enrollment code as lists show it (never the code itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    /// Who made it.
    pub created_by: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub revoked: bool,
    /// Set once redeemed: the token it became.
    pub token_id: String,
}

/// A code just made: the code is in this answer once and never again.
#[derive(Clone, Debug)]
pub struct NewEnrollment {
    pub info: Enrollment,
    pub code: String,
    /// The surveyors' app's address (empty when the server serves no web
    /// pages); its QR code holds this address with `#enroll=<code>`.
    pub app_url: String,
}

/// A new indicator as an admin gives it: the server checks every part (its
/// `max_per_village` is the decimal as typed).
#[derive(Clone, Debug)]
pub struct NewIndicator {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub unit: String,
    /// Digits after the decimal point: `None` for an integer indicator.
    pub decimal_scale: Option<u32>,
    /// The indicator this one is an "of which" part of.
    pub parent: Option<String>,
    pub max_per_village: String,
}

fn token_info(t: v1::TokenInfo) -> TokenInfo {
    TokenInfo {
        id: t.id,
        user_id: t.user_id,
        label: t.label,
        created_ms: t.created_ms,
        expires_ms: t.expires_ms,
        revoked: t.revoked,
    }
}

fn enrollment(e: v1::EnrollmentInfo) -> Enrollment {
    Enrollment {
        id: e.id,
        user_id: e.user_id,
        user_name: e.user_name,
        created_by: e.created_by,
        created_ms: e.created_ms,
        expires_ms: e.expires_ms,
        revoked: e.revoked,
        token_id: e.token_id,
    }
}

fn user_of(user: v1::User) -> Result<User> {
    convert::user_from_wire(user).map_err(|e| {
        Error::Unreadable(format!("the server sent a user this client cannot read: {e}"))
    })
}

impl Api {
    /// Adds a user.
    pub async fn create_user(&self, user: &User) -> Result<User> {
        let request = CreateUserRequest { user: Some(convert::user_to_wire(user)) };
        user_of(self.grpc.admin().create_user(request).await.map_err(Error::status)?.into_inner())
    }

    /// Every user, in id order.
    pub async fn users(&self) -> Result<Vec<User>> {
        let client = self.grpc.admin();
        pages(None, |after: Option<String>, _| {
            let mut client = client.clone();
            let request =
                ListUsersRequest { limit: self.page_size, after: after.unwrap_or_default() };
            async move {
                let reply = client.list_users(request).await.map_err(Error::status)?.into_inner();
                let items = reply.users.into_iter().map(user_of).collect::<Result<_>>()?;
                Ok(Page { items, next: next_of(reply.next) })
            }
        })
        .await
    }

    /// Changes one user; the answer is the user as it is now.
    pub async fn update_user(&self, id: &str, change: &UserChange) -> Result<User> {
        let request = UpdateUserRequest {
            id: id.to_owned(),
            name: change.name.clone(),
            disabled: change.disabled,
            areas: change.areas.clone().unwrap_or_default(),
            set_areas: change.areas.is_some(),
        };
        user_of(self.grpc.admin().update_user(request).await.map_err(Error::status)?.into_inner())
    }

    /// Issues a token for `user_id`, expiring after `expires_in_s` seconds
    /// (0: never).
    pub async fn issue_token(
        &self,
        user_id: &str,
        expires_in_s: u64,
        label: &str,
    ) -> Result<IssuedToken> {
        let request = IssueTokenRequest {
            user_id: user_id.to_owned(),
            expires_in_s,
            label: label.to_owned(),
        };
        let reply =
            self.grpc.admin().issue_token(request).await.map_err(Error::status)?.into_inner();
        let info = reply.info.ok_or_else(|| {
            Error::Unreadable("the server sent a token without its details".into())
        })?;
        Ok(IssuedToken { info: token_info(info), token: reply.token })
    }

    /// The tokens of one user (`""`: of everyone), in id order.
    pub async fn tokens(&self, user_id: &str) -> Result<Vec<TokenInfo>> {
        let client = self.grpc.admin();
        pages(None, |after: Option<String>, _| {
            let mut client = client.clone();
            let request = ListTokensRequest {
                user_id: user_id.to_owned(),
                limit: self.page_size,
                after: after.unwrap_or_default(),
            };
            async move {
                let reply = client.list_tokens(request).await.map_err(Error::status)?.into_inner();
                let items = reply.tokens.into_iter().map(token_info).collect();
                Ok(Page { items, next: next_of(reply.next) })
            }
        })
        .await
    }

    /// Revokes a token by its id: it signs nobody in from now on.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo> {
        let request = RevokeTokenRequest { id: id.to_owned() };
        let info = self.grpc.admin().revoke_token(request).await.map_err(Error::status)?;
        Ok(token_info(info.into_inner()))
    }

    /// A one-time code enrolling one device of `user_id`, working for
    /// `expires_in_s` seconds (0: the server's default).
    pub async fn create_enrollment(
        &self,
        user_id: &str,
        expires_in_s: u64,
    ) -> Result<NewEnrollment> {
        let request = CreateEnrollmentRequest { user_id: user_id.to_owned(), expires_in_s };
        let reply =
            self.grpc.admin().create_enrollment(request).await.map_err(Error::status)?.into_inner();
        let info = reply.info.ok_or_else(|| {
            Error::Unreadable("the server sent a code without its details".into())
        })?;
        Ok(NewEnrollment { info: enrollment(info), code: reply.code, app_url: reply.app_url })
    }

    /// The codes not used yet of one user (`""`: of every user the caller
    /// may enroll), newest first.
    pub async fn enrollments(&self, user_id: &str) -> Result<Vec<Enrollment>> {
        let request = ListEnrollmentsRequest { user_id: user_id.to_owned() };
        let reply =
            self.grpc.admin().list_enrollments(request).await.map_err(Error::status)?.into_inner();
        Ok(reply.enrollments.into_iter().map(enrollment).collect())
    }

    /// Revokes an enrollment code by its id.
    pub async fn revoke_enrollment(&self, id: &str) -> Result<Enrollment> {
        let request = RevokeEnrollmentRequest { id: id.to_owned() };
        let info = self.grpc.admin().revoke_enrollment(request).await.map_err(Error::status)?;
        Ok(enrollment(info.into_inner()))
    }

    /// Adds an org unit; the answer is the unit as stored.
    pub async fn add_org_unit(&self, unit: &OrgUnit) -> Result<OrgUnit> {
        let mut client = self.grpc.admin();
        let reply = client.add_org_unit(convert::org_unit_to_wire(unit)).await;
        let reply = reply.map_err(Error::status)?.into_inner();
        convert::org_unit_from_wire(reply).map_err(unreadable)
    }

    /// Adds many org units and indicators in one request, all or none: the
    /// server names each bad one as "org unit N: …" or "indicator N: …"
    /// (numbered from 1 in the order given).
    pub async fn import_catalogue(
        &self,
        units: &[(OrgUnit, Option<fieldsync::Date>)],
        indicators: &[Indicator],
    ) -> Result<Imported> {
        let dated = units.iter().any(|(_, from)| from.is_some());
        let request = ImportCatalogueRequest {
            org_units: units.iter().map(|(u, _)| convert::org_unit_to_wire(u)).collect(),
            indicators: indicators.iter().map(convert::indicator_to_wire).collect(),
            valid_from: match dated {
                true => units
                    .iter()
                    .map(|(_, from)| from.map(|d| d.to_string()).unwrap_or_default())
                    .collect(),
                false => Vec::new(),
            },
        };
        let reply = self.grpc.admin().import_catalogue(request).await.map_err(Error::status)?;
        let reply = reply.into_inner();
        Ok(Imported {
            org_units: reply.org_units_added as usize,
            indicators: reply.indicators_added as usize,
            unchanged: reply.unchanged as usize,
        })
    }

    /// Creates many users in one request, all or none: the server names
    /// each bad one as "user N: …". The ids created, in order, and how many
    /// were there already exactly as given.
    pub async fn import_users(&self, users: &[User]) -> Result<(Vec<String>, usize)> {
        let request =
            ImportUsersRequest { users: users.iter().map(convert::user_to_wire).collect() };
        let reply = self.grpc.admin().import_users(request).await.map_err(Error::status)?;
        let reply = reply.into_inner();
        Ok((reply.added, reply.unchanged as usize))
    }

    /// Applies a dated change of the org tree; what it did, and the users
    /// whose areas followed it (id, areas before, areas now).
    pub async fn change_tree(
        &self,
        date: &str,
        change: &fieldsync::TreeChange,
    ) -> Result<(String, Vec<(String, Vec<String>, Vec<String>)>)> {
        use fieldsync::TreeChange;
        use v1::change_tree_request::Change;
        let change = match change.clone() {
            TreeChange::Rename { unit, name } => {
                Change::Rename(v1::RenameUnit { unit_id: unit, name })
            }
            TreeChange::Move { unit, parent } => {
                Change::Move(v1::MoveUnit { unit_id: unit, parent_id: parent })
            }
            TreeChange::Merge { units, into, new } => Change::Merge(v1::MergeUnits {
                unit_ids: units,
                into_id: into,
                new_name: new.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
                new_parent_id: new.and_then(|n| n.parent).unwrap_or_default(),
            }),
            TreeChange::Retire { unit } => Change::Retire(v1::RetireUnit { unit_id: unit }),
            TreeChange::Add { .. } => {
                return Err(Error::Refused(
                    "units are added by `fieldsync admin org-unit import FILE`".into(),
                ))
            }
        };
        let request = v1::ChangeTreeRequest { date: date.to_owned(), change: Some(change) };
        let reply = self.grpc.admin().change_tree(request).await.map_err(Error::status)?;
        let reply = reply.into_inner();
        let moved =
            reply.users_moved.into_iter().map(|u| (u.user_id, u.areas_before, u.areas)).collect();
        Ok((reply.description, moved))
    }

    /// The org tree in force on `date` (empty: today), with what is no
    /// longer in force and every change.
    pub async fn tree(&self, date: &str) -> Result<Tree> {
        let request = v1::GetTreeRequest { date: date.to_owned() };
        let reply = self.grpc.admin().get_tree(request).await.map_err(Error::status)?.into_inner();
        let units = reply
            .org_units
            .into_iter()
            .map(convert::org_unit_from_wire)
            .collect::<fieldsync::Result<Vec<_>>>()
            .map_err(unreadable)?;
        let mut retired = Vec::new();
        for r in reply.retired {
            let unit = r
                .unit
                .ok_or_else(|| Error::Unreadable("a retired unit without its unit".into()))?;
            retired.push((
                convert::org_unit_from_wire(unit).map_err(unreadable)?,
                r.retired_on,
                r.successor_id,
            ));
        }
        let changes = reply.changes.into_iter().map(|c| (c.date, c.description)).collect();
        Ok(Tree { units, retired, changes })
    }

    /// Sets who approves and who accepts every village's reports (`None`:
    /// each village's tree says again); the chain now in force, in words.
    pub async fn set_review_chain(
        &self,
        chain: Option<(fieldsync::Level, fieldsync::Level)>,
    ) -> Result<String> {
        let (approves, accepts) = match chain {
            Some((a, b)) => (convert::level_to_wire(a) as i32, convert::level_to_wire(b) as i32),
            None => (0, 0),
        };
        let request = v1::SetReviewChainRequest { approves, accepts };
        let reply = self.grpc.admin().set_review_chain(request).await.map_err(Error::status)?;
        Ok(reply.into_inner().description)
    }

    /// Stops indicator `code` being recorded from period `from` on.
    pub async fn retire_indicator(&self, code: &str, from: &str) -> Result<Indicator> {
        let request =
            v1::RetireIndicatorRequest { code: code.to_owned(), from_period: from.to_owned() };
        let reply = self.grpc.admin().retire_indicator(request).await.map_err(Error::status)?;
        convert::indicator_from_wire(reply.into_inner()).map_err(unreadable)
    }

    /// Adds an indicator; the answer is the indicator as stored.
    pub async fn add_indicator(&self, new: &NewIndicator) -> Result<Indicator> {
        let (kind, scale) = match new.decimal_scale {
            None => (v1::ValueKind::Integer, 0),
            Some(scale) => (v1::ValueKind::Decimal, scale),
        };
        let indicator = v1::Indicator {
            code: new.code.clone(),
            name_vi: new.name_vi.clone(),
            name_en: new.name_en.clone(),
            unit: new.unit.clone(),
            kind: kind as i32,
            scale,
            parent_code: new.parent.clone().unwrap_or_default(),
            max_per_village: new.max_per_village.clone(),
            retired_from: String::new(),
        };
        let reply = self.grpc.admin().add_indicator(indicator).await.map_err(Error::status)?;
        convert::indicator_from_wire(reply.into_inner()).map_err(unreadable)
    }

    /// A consistent snapshot of the running server's store, read a chunk at
    /// a time.
    pub async fn backup(&self) -> Result<Backup> {
        let reply = self.grpc.admin().backup(v1::BackupRequest {}).await;
        Ok(Backup { chunks: reply.map_err(Error::status)?.into_inner() })
    }
}

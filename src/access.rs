//! Who may do what, where. Users have one role and a set of areas (org
//! units); an area covers itself and everything below it. The rules are plain
//! functions so the gRPC layer, the tablet and tests all read the same ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Catalogue, Level, OrgUnit};

/// What a user is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Records counts for the villages of their areas.
    Surveyor,
    /// Reviews submissions and settles conflicts in their areas.
    Supervisor,
    /// Reads and exports everything in their areas; closes periods.
    Province,
    /// Manages users, tokens, the catalogue and the org tree.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Surveyor => "surveyor",
            Role::Supervisor => "supervisor",
            Role::Province => "province",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "surveyor" => Ok(Role::Surveyor),
            "supervisor" => Ok(Role::Supervisor),
            "province" => Ok(Role::Province),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::Invalid(format!(
                "unknown role {s:?}: surveyor, supervisor, province or admin"
            ))),
        }
    }
}

/// A person who signs in with a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// A short login name, e.g. "an.nguyen".
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Org unit ids; each covers itself and everything below it.
    pub areas: Vec<String>,
    pub disabled: bool,
}

/// Something a caller wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read submissions, conflicts, history, totals.
    Read,
    /// Record values (push).
    Record,
    /// Approve, accept, reject, return, reopen; settle conflicts.
    Review,
    /// Close or reopen a period for an area.
    ClosePeriod,
    /// Set plan (KH) figures for an area.
    Plan,
    /// Users, tokens, catalogue, org tree.
    Administer,
}

impl Catalogue {
    /// `unit` and its ancestors, nearest first.
    pub fn lineage<'a>(&'a self, unit: &str) -> impl Iterator<Item = &'a OrgUnit> + 'a {
        let mut next = self.org_units.get(unit);
        std::iter::from_fn(move || {
            let current = next?;
            next = current.parent.as_deref().and_then(|p| self.org_units.get(p));
            Some(current)
        })
    }

    /// Who reviews the reports of `village`: the deployment's chain if it
    /// set one, else the one the village's lineage gives ([`Chain::of`]).
    ///
    /// [`Chain::of`]: crate::review::Chain::of
    pub fn chain(&self, village: &str) -> crate::review::Chain {
        self.history()
            .review_chain
            .unwrap_or_else(|| crate::review::Chain::of(self.lineage(village)))
    }

    /// The units `user` works with: their areas, everything below them and
    /// the units above them (for context), in id order; every unit for admins.
    pub fn visible_to(&self, user: &User) -> Vec<&OrgUnit> {
        if user.role == Role::Admin {
            return self.org_units.values().collect();
        }
        let mut units: BTreeMap<&str, &OrgUnit> = BTreeMap::new();
        for area in &user.areas {
            for u in self.lineage(area).chain(self.subtree(area)) {
                units.insert(&u.id, u);
            }
        }
        units.into_values().collect()
    }

    /// Whether `unit` is `area` or lies below it.
    pub fn within(&self, unit: &str, area: &str) -> bool {
        self.lineage(unit).any(|u| u.id == area)
    }
}

impl User {
    /// The area of this user that covers `unit` most closely, if any.
    pub fn covering_area<'a>(&self, catalogue: &'a Catalogue, unit: &str) -> Option<&'a OrgUnit> {
        catalogue.lineage(unit).find(|u| self.areas.contains(&u.id))
    }

    /// Whether `unit` lies in one of this user's areas. Admins see everything.
    pub fn covers(&self, catalogue: &Catalogue, unit: &str) -> bool {
        self.role == Role::Admin || self.covering_area(catalogue, unit).is_some()
    }

    /// Whether the role allows the action at all, wherever.
    pub fn may(&self, action: Action) -> bool {
        use Action::*;
        use Role::*;
        matches!(
            (self.role, action),
            (_, Read)
                | (Surveyor | Supervisor | Admin, Record)
                | (Supervisor | Admin, Review)
                | (Province | Admin, ClosePeriod | Plan)
                | (Admin, Administer)
        )
    }

    /// Checks the role and the area; the error says which one fails.
    pub fn check(&self, catalogue: &Catalogue, action: Action, unit: &str) -> Result<(), Denied> {
        if !self.may(action) {
            return Err(Denied(format!(
                "a {} may not {}",
                self.role.as_str(),
                action_words(action)
            )));
        }
        if !self.covers(catalogue, unit) {
            let name = catalogue.org_unit(unit).map_or(unit, |u| u.name.as_str());
            return Err(Denied(format!(
                "{name} ({unit}) is outside {}'s areas ({})",
                self.id,
                self.areas.join(", ")
            )));
        }
        Ok(())
    }

    /// The level at which this user reviews `unit`: the level of their
    /// highest area that covers it (admins review at province level). A
    /// village-level area reviews nothing.
    pub fn review_level(&self, catalogue: &Catalogue, unit: &str) -> Option<Level> {
        match self.role {
            Role::Admin => Some(Level::Province),
            Role::Supervisor => catalogue
                .lineage(unit)
                .filter(|u| self.areas.contains(&u.id))
                .map(|u| u.level)
                .min()
                .filter(|level| *level != Level::Village),
            _ => None,
        }
    }
}

impl User {
    /// Checks that this user may review (decide on or settle the conflicts
    /// of) `unit`, and returns the level at which they do. Settling a
    /// conflict needs the same power as deciding on the report: a
    /// village-level area reviews nothing.
    pub fn reviewer(&self, catalogue: &Catalogue, unit: &str) -> Result<Level, Denied> {
        self.check(catalogue, Action::Review, unit)?;
        self.review_level(catalogue, unit).ok_or_else(|| {
            let name = catalogue.org_unit(unit).map_or(unit, |u| u.name.as_str());
            Denied(format!(
                "{} reviews nothing in {name} ({unit}): reviews and settlements are made by \
                 commune, district and province supervisors, and a village-level area reviews \
                 nothing",
                self.id
            ))
        })
    }
}

impl User {
    /// Checks that this user may give `target` a one-time enrollment code
    /// (a new device of theirs): admins for anyone but another admin;
    /// supervisors and the province office for a surveyor whose every area
    /// lies within one of their own. Codes never sign in an admin, and a
    /// surveyor enrolls nobody.
    pub fn may_enroll(&self, catalogue: &Catalogue, target: &User) -> Result<(), Denied> {
        if target.role == Role::Admin {
            return Err(Denied(format!(
                "{} is an admin: an admin's devices are not enrolled by code (issue a token with \
                 `fieldsync admin token issue`)",
                target.id
            )));
        }
        match self.role {
            Role::Admin => return Ok(()),
            Role::Supervisor | Role::Province => {}
            Role::Surveyor => {
                return Err(Denied(format!(
                    "{} is a surveyor: enrollment codes are made by supervisors, the province \
                     office and admins",
                    self.id
                )))
            }
        }
        if target.role != Role::Surveyor {
            return Err(Denied(format!(
                "{} is a {}: supervisors and the province office make codes for surveyors only \
                 (an admin issues other users' tokens)",
                target.id,
                target.role.as_str()
            )));
        }
        let inside = |area: &String| self.areas.iter().any(|mine| catalogue.within(area, mine));
        if target.areas.is_empty() || !target.areas.iter().all(inside) {
            return Err(Denied(format!(
                "{}'s areas ({}) are not all within {}'s areas ({})",
                target.id,
                target.areas.join(", "),
                self.id,
                self.areas.join(", ")
            )));
        }
        Ok(())
    }
}

fn action_words(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Record => "record values",
        Action::Review => "review submissions",
        Action::ClosePeriod => "close periods",
        Action::Plan => "set plan figures",
        Action::Administer => "manage users, tokens or the catalogue",
    }
}

/// A refusal on grounds of role or area.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: {0}")]
pub struct Denied(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    fn user(role: Role, areas: &[&str]) -> User {
        User {
            id: "u".into(),
            name: "U".into(),
            role,
            areas: areas.iter().map(|a| a.to_string()).collect(),
            disabled: false,
        }
    }

    #[test]
    fn an_area_covers_what_lies_below_it() {
        let cat = demo::catalogue();
        let u = user(Role::Surveyor, &["ha-tinh.huong-khe.phuc-dong"]);
        assert!(u.covers(&cat, demo::SAMPLE_VILLAGE));
        assert!(!u.covers(&cat, "ha-tinh.can-loc.gia-hanh.thon-1"));
        assert!(!u.covers(&cat, "ha-tinh.huong-khe"), "not above the area");
        assert!(user(Role::Admin, &[]).covers(&cat, "ha-tinh.can-loc.gia-hanh.thon-1"));
    }

    #[test]
    fn a_user_sees_their_areas_what_lies_below_and_what_lies_above() {
        let cat = demo::catalogue();
        let u = user(Role::Surveyor, &[demo::SAMPLE_COMMUNE, "ha-tinh.can-loc.gia-hanh.thon-1"]);
        let seen: Vec<&str> = cat.visible_to(&u).iter().map(|u| u.id.as_str()).collect();
        let expected: Vec<&str> = cat
            .org_units
            .keys()
            .map(String::as_str)
            .filter(|id| u.covers(&cat, id) || u.areas.iter().any(|a| cat.within(a, id)))
            .collect();
        assert_eq!(seen, expected);
        assert!(seen.contains(&"ha-tinh") && seen.contains(&demo::SAMPLE_VILLAGE), "{seen:?}");
        assert!(seen.contains(&"ha-tinh.can-loc.gia-hanh"), "{seen:?}");
        assert!(!seen.contains(&"ha-tinh.can-loc.gia-hanh.thon-2"), "{seen:?}");
        assert_eq!(cat.visible_to(&user(Role::Admin, &[])).len(), cat.org_units.len());
    }

    #[test]
    fn supervisors_enroll_the_surveyors_of_their_areas_only() {
        let cat = demo::catalogue();
        let commune = demo::SAMPLE_COMMUNE;
        let surveyor = user(Role::Surveyor, &[commune]);
        assert_eq!(user(Role::Supervisor, &[commune]).may_enroll(&cat, &surveyor), Ok(()));
        assert_eq!(
            user(Role::Supervisor, &["ha-tinh.huong-khe"]).may_enroll(&cat, &surveyor),
            Ok(())
        );
        assert_eq!(user(Role::Province, &[demo::PROVINCE]).may_enroll(&cat, &surveyor), Ok(()));
        assert_eq!(user(Role::Admin, &[]).may_enroll(&cat, &surveyor), Ok(()));
        let elsewhere = user(Role::Supervisor, &["ha-tinh.can-loc.gia-hanh"]);
        let err = elsewhere.may_enroll(&cat, &surveyor).unwrap_err();
        assert!(err.to_string().contains("not all within"), "{err}");
        // One area outside is enough to refuse.
        let wide = user(Role::Surveyor, &[commune, "ha-tinh.can-loc.gia-hanh"]);
        assert!(user(Role::Supervisor, &[commune]).may_enroll(&cat, &wide).is_err());
        let sup = user(Role::Supervisor, &[commune]);
        let err = sup.may_enroll(&cat, &user(Role::Supervisor, &[commune])).unwrap_err();
        assert!(err.to_string().contains("surveyors only"), "{err}");
        let err = surveyor.may_enroll(&cat, &surveyor).unwrap_err();
        assert!(err.to_string().contains("is a surveyor"), "{err}");
        let admin = user(Role::Admin, &[]);
        assert!(admin.may_enroll(&cat, &user(Role::Admin, &[])).is_err());
        assert_eq!(admin.may_enroll(&cat, &sup), Ok(()));
    }

    #[test]
    fn roles_limit_actions() {
        let cat = demo::catalogue();
        let v = demo::SAMPLE_VILLAGE;
        let province = user(Role::Province, &[demo::PROVINCE]);
        assert!(province.check(&cat, Action::Read, v).is_ok());
        assert!(province.check(&cat, Action::Record, v).is_err());
        assert!(province.check(&cat, Action::ClosePeriod, v).is_ok());
        let surveyor = user(Role::Surveyor, &[demo::SAMPLE_COMMUNE]);
        let err = surveyor.check(&cat, Action::Review, v).unwrap_err();
        assert!(err.to_string().contains("surveyor may not review"), "{err}");
        let sup = user(Role::Supervisor, &["ha-tinh.huong-khe"]);
        assert_eq!(sup.review_level(&cat, v), Some(Level::District));
        let sup = user(Role::Supervisor, &[demo::SAMPLE_COMMUNE]);
        assert_eq!(sup.review_level(&cat, v), Some(Level::Commune));
        // A village of one's own adds no power: the highest covering area counts.
        let sup = user(Role::Supervisor, &[demo::SAMPLE_COMMUNE, v]);
        assert_eq!(sup.review_level(&cat, v), Some(Level::Commune));
        assert_eq!(user(Role::Supervisor, &[v]).review_level(&cat, v), None);
        let err = user(Role::Supervisor, &[v]).reviewer(&cat, v).unwrap_err();
        assert!(err.to_string().contains("a village-level area reviews nothing"), "{err}");
        assert_eq!(
            user(Role::Supervisor, &[demo::SAMPLE_COMMUNE]).reviewer(&cat, v),
            Ok(Level::Commune)
        );
    }
}

//! The review queue, a submission's page, and the decisions on it; each a
//! call of the review use cases ([`crate::app::review`]) as the caller.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, RawQuery};
use axum::response::Response;
use fieldsync::review::{transition, ReviewState, Verdict};
use fieldsync::sync::{AuditEntry, FieldState, SubmissionReview};
use fieldsync::Catalogue;

use super::html::{time, url, Lang};
use super::pages::queue::{self, STATES};
use super::pages::{submission, Section};
use super::said::said;
use super::{area_options, place, see_other, short_device, value_text, Ctx, Form, Posted};
use crate::app::review::{SubmissionDetail, SubmissionList};
use crate::app::{Decision, Error, HistoryFilter, SubmissionQuery};

/// Submissions per page of the queue.
pub const PAGE_SIZE: u32 = 100;
/// Submissions counted per state (the counts say "at least" beyond).
const COUNT_LIMIT: u32 = 1_000;
/// History entries shown on a submission's page, newest first; a link
/// pages on to older ones.
const HISTORY_LIMIT: u32 = 500;

/// The queue's filter, from the query string.
pub(super) struct Filter {
    pub(super) period: String,
    pub(super) area: String,
    pub(super) state: Option<ReviewState>,
}

impl Filter {
    pub(super) fn of(form: &Form) -> Result<Filter, Error> {
        let state = match form.text("state") {
            "" => None,
            s => Some(ReviewState::parse(s).map_err(Error::from_core)?),
        };
        Ok(Filter { period: form.text("period").into(), area: form.text("area").into(), state })
    }

    /// The listing for this filter's area and period.
    pub(super) fn request(
        &self,
        state: Option<ReviewState>,
        limit: u32,
        after: &str,
    ) -> SubmissionQuery {
        SubmissionQuery {
            area: self.area.clone(),
            period: self.period.clone(),
            state,
            limit,
            after: after.to_owned(),
        }
    }

    pub(super) fn query(&self) -> String {
        format!(
            "period={}&area={}&state={}",
            url(&self.period),
            url(&self.area),
            self.state.map_or("", |s| s.as_str())
        )
    }
}

pub async fn queue(ctx: Ctx, RawQuery(query): RawQuery) -> Response {
    let form = Form::query(query.as_deref());
    let filter = match Filter::of(&form) {
        Ok(f) => f,
        Err(e) => return ctx.fail(&e),
    };
    let counted = filter.request(None, COUNT_LIMIT, "");
    let listed = filter.request(filter.state, PAGE_SIZE, form.text("after"));
    let lists = ctx
        .run(move |app, user| {
            Ok((app.list_submissions(user, &counted)?, app.list_submissions(user, &listed)?))
        })
        .await;
    let (all, page) = match lists {
        Ok(lists) => lists,
        Err(e) => return ctx.fail(&e),
    };
    let view = queue_view(&ctx, &form, filter, &all, page);
    let lang = ctx.lang;
    ctx.page(lang.pick("Duyệt báo cáo", "Review queue"), Section::Queue, queue::render(&view, lang))
}

/// The queue's view: counts over `all`, the rows of `page`.
fn queue_view(
    ctx: &Ctx,
    form: &Form,
    filter: Filter,
    all: &SubmissionList,
    page: SubmissionList,
) -> queue::View {
    let catalogue = ctx.catalogue();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &all.rows {
        *counts.entry(s.review.state.as_str()).or_default() += 1;
    }
    let counts =
        STATES.iter().map(|s| (*s, counts.get(s.as_str()).copied().unwrap_or(0))).collect();
    // Bulk approval (or, at the accepting level, acceptance) of what is
    // listed and has no open conflict: what this caller may pass on now.
    let passable = |verdict: Verdict| -> Vec<(String, String)> {
        page.rows
            .iter()
            .filter(|s| s.open_conflicts == 0)
            .map(|s| &s.review)
            .filter(|r| {
                let Some(level) = ctx.user.review_level(&catalogue, &r.village_id) else {
                    return false;
                };
                let chain = catalogue.chain(&r.village_id);
                matches!(transition(r.state, verdict, level, chain, ""), Ok(Some(_)))
            })
            .map(|r| (r.village_id.clone(), r.period.to_string()))
            .collect()
    };
    let (bulk_verdict, approvable) = match passable(Verdict::Approve) {
        none if none.is_empty() => (Verdict::Accept, passable(Verdict::Accept)),
        some => (Verdict::Approve, some),
    };
    let rows = page
        .rows
        .iter()
        .map(|s| {
            let (village, above) = place(&catalogue, &s.review.village_id);
            queue::Row {
                village_id: s.review.village_id.clone(),
                village,
                above,
                period: s.review.period.to_string(),
                state: s.review.state,
                fields: s.fields,
                open_conflicts: s.open_conflicts,
                decision: decided(&s.review),
            }
        })
        .collect();
    queue::View {
        approved: form.get("approved").map(str::to_owned),
        accepted: form.get("accepted").map(str::to_owned),
        bulk_verdict,
        query: filter.query(),
        areas: area_options(&catalogue, &ctx.user, &filter.area),
        period: filter.period,
        area: filter.area,
        state: filter.state,
        counts,
        more: all.next.is_some(),
        approvable,
        csrf: ctx.csrf.clone(),
        rows,
        next: page.next,
    }
}

const VERDICTS: [Verdict; 5] =
    [Verdict::Approve, Verdict::Accept, Verdict::Return, Verdict::Reject, Verdict::Reopen];

/// The last decision on a report, if there was one.
fn decided(r: &SubmissionReview) -> Option<queue::Decided> {
    if r.user_id.is_empty() {
        return None;
    }
    let name = if r.user_name.is_empty() { &r.user_id } else { &r.user_name };
    Some(queue::Decided { name: name.clone(), at: time(r.at_ms), reason: r.reason.clone() })
}

/// A decision on the named reports.
fn decision_on(verdict: Verdict, submissions: Vec<(String, String)>, reason: &str) -> Decision {
    Decision {
        verdict,
        submissions,
        area: String::new(),
        period: String::new(),
        only: None,
        reason: reason.to_owned(),
    }
}

pub async fn bulk_approve(Posted(ctx, form): Posted) -> Response {
    let filter = match Filter::of(&form) {
        Ok(f) => f,
        Err(e) => return ctx.fail(&e),
    };
    let mut submissions = Vec::new();
    for key in form.all("sub").take(PAGE_SIZE as usize) {
        let Some((village, period)) = key.split_once('|') else {
            return ctx.fail(&Error::invalid(format!("{key:?} names no submission")));
        };
        submissions.push((village.to_owned(), period.to_owned()));
    }
    if submissions.is_empty() {
        return ctx.fail(&Error::invalid(
            "no submission was listed for approval: filter the queue and try again",
        ));
    }
    let verdict = match form.text("verdict") {
        "" | "approve" => Verdict::Approve,
        "accept" => Verdict::Accept,
        other => return ctx.fail(&Error::invalid(format!("{other:?}: approve or accept all"))),
    };
    let decision = decision_on(verdict, submissions, "");
    match ctx.run(move |app, user| app.decide(user, &decision)).await {
        Ok(decided) => {
            let n = decided.changed.len();
            let done = if verdict == Verdict::Accept { "accepted" } else { "approved" };
            see_other(&format!("/queue?{}&{done}={n}", filter.query()))
        }
        Err(e) => ctx.fail(&e),
    }
}

pub async fn submission(
    Path((village, period)): Path<(String, String)>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    let query = Form::query(query.as_deref());
    let decided = VERDICTS.into_iter().find(|v| v.as_str() == query.text("decided"));
    let before = match query.text("before") {
        "" => 0,
        b => match b.parse::<u64>() {
            Ok(b) => b,
            Err(_) => {
                return ctx.fail(&Error::invalid(format!(
                    "`before` {b:?} is not an entry number of the history"
                )))
            }
        },
    };
    let filter = HistoryFilter {
        village: village.clone(),
        period: period.clone(),
        limit: HISTORY_LIMIT,
        newest_first: true,
        before,
        ..Default::default()
    };
    let read = ctx
        .run(move |app, user| {
            let detail = app.submission(user, &filter.village, &filter.period)?;
            let history = app.history(user, &filter)?;
            // People by name (the audit trail keeps user ids).
            let names = app.user_names(history.iter().map(|e| e.user_id.clone()).collect());
            Ok((detail, history, names))
        })
        .await;
    let (detail, history, names) = match read {
        Ok(read) => read,
        Err(e) => return ctx.fail(&e),
    };
    let mut view = submission_view(&ctx, village, period, &detail, &history, &names);
    view.decided = decided;
    let title = format!("{} {}", view.name, view.period);
    ctx.page(&title, Section::Queue, submission::render(&view, ctx.lang))
}

/// A submission's view: its values sorted as the catalogue lists them, the
/// decisions the caller may make, the history with people by name.
fn submission_view(
    ctx: &Ctx,
    village: String,
    period: String,
    detail: &SubmissionDetail,
    history: &[AuditEntry],
    names: &HashMap<String, String>,
) -> submission::View {
    let lang = ctx.lang;
    let catalogue = ctx.catalogue();
    let (name, above) = place(&catalogue, &village);
    let state = detail.review.state;
    let order: Vec<&str> = catalogue.indicators_in_order().map(|i| i.code.as_str()).collect();
    let mut fields: Vec<&FieldState> = detail.fields.iter().collect();
    fields.sort_by_key(|f| {
        order.iter().position(|c| *c == f.at.field.as_str()).unwrap_or(usize::MAX)
    });
    let open: Vec<&str> =
        detail.conflicts.iter().filter(|c| c.open).map(|c| c.at.field.as_str()).collect();
    let fields = fields
        .into_iter()
        .map(|f| {
            let field = f.at.field.as_str();
            submission::Field {
                key: field.to_owned(),
                name: lang.field(&catalogue, field),
                value: value_text(lang, &f.value),
                unit: lang.unit(&catalogue, field).to_owned(),
                author: f.stamp.author.clone(),
                device: short_device(&f.stamp.device.to_string()),
                received: time(f.stamp.received_at_ms),
                conflict: open.contains(&field),
            }
        })
        .collect();
    let chain = catalogue.chain(&village);
    let mut verdicts: Vec<Verdict> = match ctx.user.review_level(&catalogue, &village) {
        Some(level) => VERDICTS
            .into_iter()
            .filter(|v| matches!(transition(state, *v, level, chain, "-"), Ok(Some(_))))
            .collect(),
        None => Vec::new(),
    };
    // Approving or accepting waits for the conflicts: say so, with links.
    let passing = verdicts.iter().find(|v| matches!(v, Verdict::Approve | Verdict::Accept));
    let blocked = match (passing, open.is_empty()) {
        (Some(passing), false) => {
            let reason = fieldsync::Reason::OpenConflicts {
                village: village.clone(),
                period: period.clone(),
                fields: open.iter().map(|f| (*f).to_owned()).collect(),
                accept: *passing == Verdict::Accept,
            };
            verdicts.retain(|v| !matches!(v, Verdict::Approve | Verdict::Accept));
            Some(said(lang, &catalogue, &Error::refused(reason)))
        }
        _ => None,
    };
    let entries = history.iter().map(|e| entry(lang, &catalogue, names, e)).collect();
    let older = history.last().filter(|_| history.len() == HISTORY_LIMIT as usize);
    submission::View {
        village_id: village,
        period,
        name,
        above,
        state,
        decision: decided(&detail.review),
        fields,
        verdicts,
        blocked,
        decided: None,
        csrf: ctx.csrf.clone(),
        history: entries,
        older: older.map(|e| e.seq),
    }
}

/// An audit entry in words.
fn entry(
    lang: Lang,
    catalogue: &Catalogue,
    names: &HashMap<String, String>,
    e: &AuditEntry,
) -> submission::Entry {
    let old = e.old.as_ref().map(|v| value_text(lang, v));
    let new = e.new.as_ref().map(|v| value_text(lang, v));
    let change = match (old, new) {
        (Some(o), Some(n)) => format!("{o} → {n}"),
        (None, Some(v)) | (Some(v), None) => v,
        (None, None) => String::new(),
    };
    submission::Entry {
        at: time(e.at_ms),
        who: names.get(e.user_id.as_str()).unwrap_or(&e.user_id).clone(),
        device: short_device(&e.device.map(|d| d.to_string()).unwrap_or_default()),
        what: lang.audit_kind(e.kind.as_str()).to_owned(),
        field: match e.field.as_str() {
            "" => String::new(),
            f => lang.field(catalogue, f),
        },
        change,
        detail: detail_words(lang, e),
    }
}

/// An entry's detail in the reader's language: a decision's states by
/// name, a conflict said as the app says it. The store keeps English; what
/// cannot be put in Vietnamese here (a refusal's reason) is shown as kept.
fn detail_words(lang: Lang, e: &AuditEntry) -> String {
    if lang == Lang::En {
        return e.detail.clone();
    }
    match e.kind.as_str() {
        "review" => {
            // "submitted → approved: the reason"
            let (states, why) = e.detail.split_once(':').unwrap_or((&e.detail, ""));
            let Some((from, to)) = states.split_once(" → ") else { return e.detail.clone() };
            match (ReviewState::parse(from.trim()), ReviewState::parse(to.trim())) {
                (Ok(from), Ok(to)) => {
                    let why = match why.trim() {
                        "" => String::new(),
                        why => format!(": {why}"),
                    };
                    format!("{} → {}{why}", lang.state(from), lang.state(to))
                }
                _ => e.detail.clone(),
            }
        }
        "conflict" => "Giá trị này cũng được sửa trên máy khác; mọi giá trị được giữ trong một \
                       xung đột để người duyệt giải quyết."
            .into(),
        _ => e.detail.clone(),
    }
}

pub async fn decide(
    Path((village, period)): Path<(String, String)>,
    Posted(ctx, form): Posted,
) -> Response {
    let verdict = match VERDICTS.into_iter().find(|v| v.as_str() == form.text("verdict")) {
        Some(v) => v,
        None => {
            return ctx.fail(&Error::invalid(
                "choose a decision: approve, accept, return, reject or reopen",
            ))
        }
    };
    let named = vec![(village.clone(), period.clone())];
    let decision = decision_on(verdict, named, form.text("reason"));
    match ctx.run(move |app, user| app.decide(user, &decision)).await {
        Ok(_) => see_other(&format!(
            "/submissions/{}/{}?decided={}",
            url(&village),
            url(&period),
            verdict.as_str()
        )),
        Err(e) => ctx.fail(&e),
    }
}

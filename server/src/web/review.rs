//! The review queue, a submission's page, and the decisions on it; each a
//! call of the review use cases ([`crate::app::review`]) as the caller.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Path, RawQuery};
use axum::response::Response;
use fieldsync::review::{transition, ReviewState, Verdict};
use fieldsync::sync::SubmissionReview;

use super::html::{time, url, Lang, Section, E};
use super::{area_options, place, see_other, short_device, value_text, Ctx, Form, Posted};
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
    let lang = ctx.lang;
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
    let catalogue = ctx.catalogue();
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1>", lang.pick("Duyệt báo cáo", "Review queue"));
    if let Some(n) = form.get("approved") {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">{} {}</p>",
            lang.pick("Đã duyệt:", "Approved:"),
            E(n)
        );
    }
    // The filter.
    let _ = write!(
        body,
        "<form class=\"filter\" method=\"get\" action=\"/queue\">\
         <label>{} <input name=\"period\" value=\"{}\" placeholder=\"2022\" size=\"8\"></label>\
         <label>{} <select name=\"area\">{}</select></label>\
         <label>{} <select name=\"state\"><option value=\"\">{}</option>",
        lang.pick("Kỳ báo cáo", "Period"),
        E(&filter.period),
        lang.pick("Địa bàn", "Area"),
        area_options(&catalogue, &ctx.user, &filter.area, lang, true),
        lang.pick("Trạng thái", "State"),
        lang.pick("Tất cả", "All"),
    );
    for s in STATES {
        let selected = if filter.state == Some(s) { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{s}\"{selected}>{}</option>", lang.state(s));
    }
    let _ = write!(
        body,
        "</select></label><button type=\"submit\">{}</button></form>",
        lang.pick("Lọc", "Filter")
    );
    // Counts per state.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &all.rows {
        *counts.entry(s.review.state.as_str()).or_default() += 1;
    }
    let more = if all.next.is_none() { "" } else { "+" };
    body.push_str("<ul class=\"counts\" id=\"counts\">");
    for s in STATES {
        let n = counts.get(s.as_str()).copied().unwrap_or(0);
        let _ = write!(
            body,
            "<li class=\"state-{s}\"><a href=\"/queue?period={}&amp;area={}&amp;state={s}\">{}: \
             <b data-count=\"{s}\">{n}{more}</b></a></li>",
            url(&filter.period),
            url(&filter.area),
            lang.state(s),
        );
    }
    body.push_str("</ul>");
    let _ = write!(
        body,
        "<p class=\"downloads\"><a id=\"queue-csv\" href=\"/queue.csv?{}\">{}</a></p>",
        E(&filter.query()),
        lang.pick("Tải danh sách (CSV)", "Download the list (CSV)")
    );
    // Bulk approval of what is listed: submitted, no open conflict.
    let approvable: Vec<&SubmissionReview> = page
        .rows
        .iter()
        .filter(|s| s.open_conflicts == 0)
        .map(|s| &s.review)
        .filter(|r| r.state == ReviewState::Submitted)
        .collect();
    if !approvable.is_empty() && ctx.user.may(fieldsync::access::Action::Review) {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/queue/approve\" class=\"bulk\">{}\
             <input type=\"hidden\" name=\"period\" value=\"{}\">\
             <input type=\"hidden\" name=\"area\" value=\"{}\">\
             <input type=\"hidden\" name=\"state\" value=\"{}\">",
            ctx.csrf_field(),
            E(&filter.period),
            E(&filter.area),
            filter.state.map_or("", |s| s.as_str()),
        );
        for r in &approvable {
            let _ = write!(
                body,
                "<input type=\"hidden\" name=\"sub\" value=\"{}|{}\">",
                E(&r.village_id),
                E(&r.period.to_string())
            );
        }
        let _ = write!(
            body,
            "<button id=\"bulk-approve\" type=\"submit\">{} ({})</button></form>",
            lang.pick(
                "Duyệt tất cả báo cáo chờ duyệt trong danh sách",
                "Approve every submitted report listed"
            ),
            approvable.len()
        );
    }
    // The list.
    if page.rows.is_empty() {
        let _ = write!(
            body,
            "<p class=\"empty\">{}</p>",
            lang.pick("Không có báo cáo nào khớp bộ lọc.", "No submission matches the filter.")
        );
    } else {
        let _ = write!(
            body,
            "<table class=\"list\" id=\"queue\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
             <th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th>{}</th></tr></thead><tbody>",
            lang.pick("Thôn", "Village"),
            lang.pick("Xã / huyện", "Commune / district"),
            lang.pick("Kỳ", "Period"),
            lang.pick("Trạng thái", "State"),
            lang.pick("Số trường", "Fields"),
            lang.pick("Xung đột", "Conflicts"),
            lang.pick("Quyết định gần nhất", "Last decision"),
        );
        for s in &page.rows {
            let r = &s.review;
            let state = Some(r.state);
            let period = r.period.to_string();
            let (village, above) = place(&catalogue, &r.village_id);
            let _ = write!(
                body,
                "<tr data-village=\"{v}\"><td><a href=\"/submissions/{vu}/{pu}\">{}</a></td>\
                 <td>{}</td><td>{}</td><td><span class=\"state state-{st}\">{}</span></td>\
                 <td class=\"num\">{}</td><td class=\"num{c}\">{}</td><td>{}</td></tr>",
                E(&village),
                E(&above),
                E(&period),
                state.map_or("", |s| lang.state(s)),
                s.fields,
                s.open_conflicts,
                decision(lang, r),
                v = E(&r.village_id),
                vu = url(&r.village_id),
                pu = url(&period),
                st = state.map_or("", |s| s.as_str()),
                c = if s.open_conflicts > 0 { " warn" } else { "" },
            );
        }
        body.push_str("</tbody></table>");
        if let Some(next) = page.next {
            let _ = write!(
                body,
                "<p><a id=\"next\" href=\"/queue?{}&amp;after={}\">{} →</a></p>",
                E(&filter.query()),
                url(&next.to_string()),
                lang.pick("Trang sau", "Next page")
            );
        }
    }
    ctx.page(lang.pick("Duyệt báo cáo", "Review queue"), Section::Queue, &body)
}

const VERDICTS: [Verdict; 5] =
    [Verdict::Approve, Verdict::Accept, Verdict::Return, Verdict::Reject, Verdict::Reopen];

const STATES: [ReviewState; 5] = [
    ReviewState::Submitted,
    ReviewState::Approved,
    ReviewState::Accepted,
    ReviewState::Returned,
    ReviewState::Rejected,
];

/// "Trần Văn Giám, 29/11/2026 16:32: reason", escaped.
fn decision(lang: Lang, r: &SubmissionReview) -> String {
    if r.user_id.is_empty() {
        return String::new();
    }
    let name = if r.user_name.is_empty() { &r.user_id } else { &r.user_name };
    let mut out = format!("{}, {}", E(name), time(r.at_ms));
    if !r.reason.is_empty() {
        let _ = write!(out, ": <q>{}</q>", E(&r.reason));
    }
    let _ = lang;
    out
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
    let decision = decision_on(Verdict::Approve, submissions, "");
    match ctx.run(move |app, user| app.decide(user, &decision)).await {
        Ok(decided) => {
            let n = decided.changed.len();
            see_other(&format!("/queue?{}&approved={n}", filter.query()))
        }
        Err(e) => ctx.fail(&e),
    }
}

pub async fn submission(
    Path((village, period)): Path<(String, String)>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    let lang = ctx.lang;
    let before = match Form::query(query.as_deref()).text("before") {
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
    let catalogue = ctx.catalogue();
    let (name, above) = place(&catalogue, &village);
    let state = Some(detail.review.state);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"crumbs\"><a href=\"/queue\">{}</a> › {}</p>\
         <h1>{} <small>{}</small></h1><p class=\"meta\">{} · {} {} · \
         <span class=\"state state-{}\" id=\"state\">{}</span></p>",
        lang.pick("Duyệt báo cáo", "Review queue"),
        E(&above),
        E(&name),
        E(&period),
        E(&above),
        lang.pick("Kỳ", "Period"),
        E(&period),
        state.map_or("", |s| s.as_str()),
        state.map_or("", |s| lang.state(s)),
    );
    let r = &detail.review;
    if !r.user_id.is_empty() {
        let _ = write!(
            body,
            "<p class=\"meta\">{} {}</p>",
            lang.pick("Quyết định gần nhất:", "Last decision:"),
            decision(lang, r)
        );
    }
    // Values.
    let _ = write!(
        body,
        "<h2>{}</h2><table class=\"list\" id=\"fields\"><thead><tr><th>{}</th><th class=\"num\">{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        lang.pick("Số liệu", "Values"),
        lang.pick("Chỉ tiêu", "Indicator"),
        lang.pick("Giá trị", "Value"),
        lang.pick("Đơn vị", "Unit"),
        lang.pick("Người nhập", "Recorded by"),
        lang.pick("Máy tính bảng", "Tablet"),
        lang.pick("Nhận lúc", "Received"),
    );
    let order: Vec<&str> = catalogue.indicators_in_order().map(|i| i.code.as_str()).collect();
    let mut fields = detail.fields.clone();
    fields.sort_by_key(|f| {
        order.iter().position(|c| *c == f.at.field.as_str()).unwrap_or(usize::MAX)
    });
    let open: Vec<&str> =
        detail.conflicts.iter().filter(|c| c.open).map(|c| c.at.field.as_str()).collect();
    for f in &fields {
        let field = f.at.field.as_str();
        let conflict = match open.contains(&field) {
            true => format!(
                " <a class=\"warn\" href=\"/conflicts/{}/{}/{}\">{}</a>",
                url(&village),
                url(&period),
                url(field),
                lang.pick("xung đột", "in conflict")
            ),
            false => String::new(),
        };
        let _ = write!(
            body,
            "<tr data-field=\"{}\"><td>{}</td><td class=\"num value\">{}{}</td><td>{}</td>\
             <td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            E(field),
            E(&lang.field(&catalogue, field)),
            E(&value_text(lang, &f.value)),
            conflict,
            E(lang.unit(&catalogue, field)),
            E(&f.stamp.author),
            E(&short_device(&f.stamp.device.to_string())),
            time(f.stamp.received_at_ms),
        );
    }
    body.push_str("</tbody></table>");
    // Decisions this reviewer can make now.
    let level = ctx.user.review_level(&catalogue, &village);
    let verdicts: Vec<Verdict> = match (state, level) {
        (Some(state), Some(level)) => VERDICTS
            .into_iter()
            .filter(|v| matches!(transition(state, *v, level, "-"), Ok(Some(_))))
            .collect(),
        _ => Vec::new(),
    };
    if !verdicts.is_empty() {
        let _ =
            write!(body, "<h2>{}</h2><div class=\"decide\">", lang.pick("Quyết định", "Decision"));
        for v in verdicts {
            let reason = match v.needs_reason() {
                true => format!(
                    "<label>{} <textarea name=\"reason\" required maxlength=\"2000\" rows=\"2\"></textarea></label>",
                    lang.pick("Lý do (người nhập sẽ thấy)", "Reason (the surveyor sees it)")
                ),
                false => String::new(),
            };
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/submissions/{}/{}/decide\" class=\"verdict-{v}\">{}\
                 <input type=\"hidden\" name=\"verdict\" value=\"{v}\">{reason}\
                 <button id=\"{v}\" type=\"submit\">{}</button></form>",
                url(&village),
                url(&period),
                ctx.csrf_field(),
                lang.verdict(v),
                v = v.as_str(),
            );
        }
        body.push_str("</div>");
    }
    // History.
    let _ = write!(
        body,
        "<h2>{}</h2><table class=\"list\" id=\"history\"><thead><tr><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        lang.pick("Lịch sử", "History"),
        lang.pick("Lúc", "When"),
        lang.pick("Ai", "Who"),
        lang.pick("Máy", "Tablet"),
        lang.pick("Việc", "What"),
        lang.pick("Trường", "Field"),
        lang.pick("Thay đổi", "Change"),
    );
    for e in &history {
        let old = e.old.as_ref().map(|v| value_text(lang, v));
        let new = e.new.as_ref().map(|v| value_text(lang, v));
        let change = match (old, new) {
            (Some(o), Some(n)) => format!("{} → {}", E(&o), E(&n)),
            (None, Some(n)) => E(&n).to_string(),
            (Some(o), None) => E(&o).to_string(),
            (None, None) => String::new(),
        };
        let field = match e.field.as_str() {
            "" => String::new(),
            f => lang.field(&catalogue, f),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{} <span class=\"detail\">{}</span></td></tr>",
            time(e.at_ms),
            E(names.get(e.user_id.as_str()).unwrap_or(&e.user_id)),
            E(&short_device(&e.device.map(|d| d.to_string()).unwrap_or_default())),
            E(lang.audit_kind(e.kind.as_str())),
            E(&field),
            change,
            E(&e.detail),
        );
    }
    body.push_str("</tbody></table>");
    if let Some(last) = history.last().filter(|_| history.len() == HISTORY_LIMIT as usize) {
        let _ = write!(
            body,
            "<p><a id=\"older\" href=\"/submissions/{}/{}?before={}\">{}</a></p>",
            url(&village),
            url(&period),
            last.seq,
            lang.pick("Các mục cũ hơn", "Older entries"),
        );
    }
    ctx.page(&format!("{name} {period}"), Section::Queue, &body)
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
        Ok(_) => see_other(&format!("/submissions/{}/{}", url(&village), url(&period))),
        Err(e) => ctx.fail(&e),
    }
}

//! The review queue's download: every report its filter matches (all
//! pages), as CSV.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::review::Filter;
use super::{Ctx, Form, Web};
use crate::app::review::SubmissionRow;
use crate::app::Error;

/// Rows a queue download may hold; a wider filter is asked to narrow.
pub const MAX_DOWNLOAD: usize = 100_000;

/// Columns of the queue download, in order.
const QUEUE_CSV_HEADER: [&str; 13] = [
    "village_id",
    "village",
    "commune",
    "district",
    "province",
    "period",
    "state",
    "fields",
    "open_conflicts",
    "state_set_by",
    "state_set_at",
    "reason",
    "submission_id",
];

/// Free text for a spreadsheet cell, by the policy of every CSV written
/// ([`fieldsync_export::spreadsheet_text`]).
fn cell(text: &str) -> String {
    fieldsync_export::spreadsheet_text(text).into_owned()
}

/// Every submission the queue's filter matches (all pages), as CSV with a
/// byte-order mark so that Excel reads Vietnamese names.
pub async fn queue_csv(
    State(web): State<Arc<Web>>,
    ctx: Ctx,
    RawQuery(query): RawQuery,
) -> Response {
    let filter = match Filter::of(&Form::query(query.as_deref())) {
        Ok(f) => f,
        Err(e) => return ctx.fail(&e),
    };
    let Ok(_download) = web.downloads.acquire().await else {
        return ctx.fail(&Error::unavailable("the server is shutting down"));
    };
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let request = filter.request(filter.state, 1_000, &after);
        let page = match ctx.run(move |app, user| app.list_submissions(user, &request)).await {
            Ok(page) => page,
            Err(e) => return ctx.fail(&e),
        };
        if rows.len() + page.rows.len() > MAX_DOWNLOAD {
            return ctx.fail(&Error::invalid(format!(
                "more than {MAX_DOWNLOAD} reports match: narrow the area, period or state"
            )));
        }
        rows.extend(page.rows);
        match page.next {
            None => break,
            Some(next) => after = next,
        }
    }
    let catalogue = ctx.catalogue();
    let built = tokio::task::spawn_blocking(move || queue_csv_bytes(&rows, &catalogue)).await;
    let bytes = match built.map_err(|e| e.to_string()).and_then(|b| b) {
        Ok(bytes) => bytes,
        Err(e) => return ctx.fail(&Error::internal(e)),
    };
    let names = ctx.catalogue();
    let area = super::area_name(&names, &filter.area);
    let name = super::download_name(&["báo cáo", area, &filter.period], "csv");
    super::progress::attachment("text/csv; charset=utf-8", &name, bytes)
}

/// The queue download's bytes: a byte-order mark (so that Excel reads
/// Vietnamese names), the header, one row per submission.
fn queue_csv_bytes(
    rows: &[SubmissionRow],
    catalogue: &fieldsync::Catalogue,
) -> Result<Vec<u8>, String> {
    let mut out = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
    let written = (|| -> Result<(), csv::Error> {
        out.write_record(QUEUE_CSV_HEADER)?;
        for s in rows {
            let r = &s.review;
            let name_at = |level| {
                catalogue
                    .lineage(&r.village_id)
                    .find(|u| u.level == level)
                    .map_or(String::new(), |u| cell(&u.name))
            };
            out.write_record([
                r.village_id.clone(),
                name_at(fieldsync::Level::Village),
                name_at(fieldsync::Level::Commune),
                name_at(fieldsync::Level::District),
                name_at(fieldsync::Level::Province),
                r.period.to_string(),
                r.state.as_str().to_owned(),
                s.fields.to_string(),
                s.open_conflicts.to_string(),
                cell(&r.user_name),
                super::html::iso_time(r.at_ms),
                cell(&r.reason),
                r.submission.to_string(),
            ])?;
        }
        out.flush()?;
        Ok(())
    })();
    written.map_err(|e| e.to_string())?;
    out.into_inner().map_err(|e| e.to_string())
}

//! The `Report` service's export, fetched as the caller: rows streamed from
//! the server and named from the catalogue. The writers (CSV, JSON, XLSX,
//! the report's wording) are `fieldsync_export`'s, re-exported here for the
//! callers of this module.

use fieldsync::{Catalogue, Level};
use fieldsync_proto::convert;
use fieldsync_proto::v1::ExportRequest;
use tokio_stream::StreamExt;

pub use fieldsync_export::{
    report_line, report_title, section_heading, spreadsheet_text, xlsx_bytes, Csv, Json, Row,
    CSV_HEADER, XLSX_CELL_CHARS,
};

use crate::error::Result;
use crate::remote::Grpc;

/// What to export.
#[derive(Clone, Debug)]
pub struct Query {
    pub level: Level,
    pub period: String,
    pub area: Option<String>,
    pub include_pending: bool,
}

/// Streams the rows of `query` into `each`, in the server's order.
pub async fn fetch(
    grpc: &Grpc,
    catalogue: &Catalogue,
    query: &Query,
    mut each: impl FnMut(Row) -> Result<()>,
) -> Result<usize> {
    let request = ExportRequest {
        level: convert::level_to_wire(query.level) as i32,
        period: query.period.clone(),
        area: query.area.clone().unwrap_or_default(),
        include_pending: query.include_pending,
    };
    let mut stream = grpc.report().export(request).await?.into_inner();
    let mut n = 0;
    while let Some(row) = stream.next().await {
        each(Row::from_wire(row?, catalogue)?)?;
        n += 1;
    }
    Ok(n)
}

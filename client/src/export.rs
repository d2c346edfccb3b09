//! The `Report` service's export, fetched as the caller: rows streamed from
//! the server and named from the catalogue. The writers (CSV, JSON, XLSX,
//! the report's wording) are `fieldsync_export`'s, re-exported here for the
//! callers of this module.

use fieldsync::Catalogue;

pub use crate::api::Query;
pub use fieldsync_export::{
    report_line, report_title, section_heading, spreadsheet_text, xlsx_bytes, Csv, Json, Row,
    CSV_HEADER, XLSX_CELL_CHARS,
};

use crate::api::Api;
use crate::error::Result;
use crate::remote::Grpc;

/// Streams the rows of `query` into `each`, in the server's order
/// ([`Api::export_each`] over `grpc`).
pub async fn fetch(
    grpc: &Grpc,
    catalogue: &Catalogue,
    query: &Query,
    each: impl FnMut(Row) -> Result<()>,
) -> Result<usize> {
    Api::new(grpc.clone()).export_each(catalogue, query, each).await
}

//! The `Report` service (totals against plan, streamed; plan figures) and
//! the `Admin` service's backup stream.

use fieldsync::{Catalogue, Level};
use fieldsync_export::Row;
use fieldsync_proto::convert;
use fieldsync_proto::v1::{self, ExportRequest, SetPlansRequest};
use tonic::Streaming;

use super::Api;
use crate::error::{Error, Result};

/// What to export.
#[derive(Clone, Debug)]
pub struct Query {
    pub level: Level,
    pub period: String,
    pub area: Option<String>,
    pub include_pending: bool,
    /// The day whose org tree to report on; `None`: the period's own.
    pub tree_date: Option<String>,
}

/// One plan (KH) figure, as typed: the server checks every part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanFigure {
    pub unit_id: String,
    pub indicator: String,
    pub period: String,
    /// A decimal; empty clears the figure.
    pub value: String,
}

/// The rows of an export as they arrive, named from the catalogue.
pub struct Rows<'a> {
    stream: Streaming<v1::TotalRow>,
    catalogue: &'a Catalogue,
}

impl Rows<'_> {
    /// The next row; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Row>> {
        let Some(row) = self.stream.message().await.map_err(Error::status)? else {
            return Ok(None);
        };
        let row = Row::from_wire(row, self.catalogue).map_err(|e| {
            Error::Unreadable(format!("the server sent a row this client cannot read: {e}"))
        })?;
        Ok(Some(row))
    }
}

/// A backup as it arrives, a chunk at a time.
pub struct Backup {
    pub(super) chunks: Streaming<v1::BackupChunk>,
}

impl Backup {
    /// The next chunk of the snapshot; `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.chunks.message().await.map_err(Error::status)?.map(|c| c.data))
    }
}

impl Api {
    /// The totals of `query` against plan, one row per org unit and
    /// indicator, in the server's order; rows are named from `catalogue`.
    pub async fn export<'a>(&self, catalogue: &'a Catalogue, query: &Query) -> Result<Rows<'a>> {
        let request = ExportRequest {
            level: convert::level_to_wire(query.level) as i32,
            period: query.period.clone(),
            area: query.area.clone().unwrap_or_default(),
            include_pending: query.include_pending,
            tree_date: query.tree_date.clone().unwrap_or_default(),
        };
        let stream = self.grpc.report().export(request).await.map_err(Error::status)?;
        Ok(Rows { stream: stream.into_inner(), catalogue })
    }

    /// Every row of `query`, handed to `each` as it arrives; the number of
    /// rows.
    pub async fn export_each(
        &self,
        catalogue: &Catalogue,
        query: &Query,
        mut each: impl FnMut(Row) -> Result<()>,
    ) -> Result<usize> {
        let mut rows = self.export(catalogue, query).await?;
        let mut n = 0;
        while let Some(row) = rows.next().await? {
            each(row)?;
            n += 1;
        }
        Ok(n)
    }

    /// Sets plan figures, all or none; the number set.
    pub async fn set_plans(&self, figures: &[PlanFigure]) -> Result<u32> {
        let figures = figures
            .iter()
            .map(|f| v1::PlanFigure {
                unit_id: f.unit_id.clone(),
                indicator: f.indicator.clone(),
                period: f.period.clone(),
                value: f.value.clone(),
            })
            .collect();
        let reply = self.grpc.report().set_plans(SetPlansRequest { figures }).await;
        Ok(reply.map_err(Error::status)?.into_inner().set)
    }
}

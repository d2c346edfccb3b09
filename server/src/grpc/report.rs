//! The `fieldsync.v1.Report` service: totals against plan, streamed in
//! chunks of org units so a national export never sits whole in memory.

use std::sync::Arc;

use fieldsync_proto::convert;
use fieldsync_proto::v1::report_server::Report;
use fieldsync_proto::v1::{ExportRequest, SetPlansReply, SetPlansRequest, TotalRow};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{blocking, caller, invalid};
use crate::app::report::{UnitTotal, CHUNK_UNITS};
use crate::app::{App, ExportQuery, PlanRow};

/// Rows buffered for a slow reader.
const BUFFER_ROWS: usize = 2_048;

pub struct ReportService {
    app: Arc<App>,
}

impl ReportService {
    pub fn new(app: Arc<App>) -> Self {
        ReportService { app }
    }
}

fn total_to_wire(t: UnitTotal) -> TotalRow {
    TotalRow {
        unit_id: t.unit_id,
        unit_name: t.unit_name,
        level: t.level.map_or(0, |l| convert::level_to_wire(l) as i32),
        parent_id: t.parent_id,
        indicator: t.indicator,
        done: t.done.to_string(),
        plan: t.plan.map(|p| p.to_string()).unwrap_or_default(),
        percent_tenths: t.percent.map(|p| p.tenths),
        approved: t.approved.to_string(),
        pending: t.pending.to_string(),
        approved_count: t.approved_count,
        pending_count: t.pending_count,
        conflict_count: t.conflict_count,
        exceeds_whole: t.exceeds_whole,
    }
}

#[tonic::async_trait]
impl Report for ReportService {
    type ExportStream = ReceiverStream<Result<TotalRow, Status>>;

    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let user = caller(&request)?;
        let req = request.into_inner();
        let query = ExportQuery {
            level: convert::level_from_wire(req.level).map_err(invalid)?,
            period: req.period,
            area: req.area,
            include_pending: req.include_pending,
            tree_date: req.tree_date,
        };
        let export = Arc::new(blocking(&self.app, move |app| app.export(&user, &query)).await?);
        let (tx, rx) = mpsc::channel(BUFFER_ROWS);
        let app = Arc::clone(&self.app);
        tokio::spawn(async move {
            for chunk in export.units.chunks(CHUNK_UNITS) {
                let chunk = chunk.to_vec();
                let export = Arc::clone(&export);
                let batch = blocking(&app, move |app| app.export_rows(&export, &chunk)).await;
                match batch {
                    Ok(rows) => {
                        for row in rows {
                            if tx.send(Ok(total_to_wire(row))).await.is_err() {
                                return; // the caller went away
                            }
                        }
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn set_plans(
        &self,
        request: Request<SetPlansRequest>,
    ) -> Result<Response<SetPlansReply>, Status> {
        let user = caller(&request)?;
        let rows: Vec<PlanRow> = request
            .into_inner()
            .figures
            .into_iter()
            .map(|f| PlanRow {
                unit: f.unit_id,
                indicator: f.indicator,
                period: f.period,
                value: f.value,
            })
            .collect();
        let set = blocking(&self.app, move |app| app.set_plans(&user, &rows)).await?;
        Ok(Response::new(SetPlansReply { set: set as u32 }))
    }
}

//! The `fieldsync.v1.Report` service: totals against plan, streamed in
//! chunks of org units so a national export never sits whole in memory.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync::rollup::percent;
use fieldsync::{Amount, Catalogue};
use fieldsync_proto::convert;
use fieldsync_proto::v1::report_server::Report;
use fieldsync_proto::v1::{ExportRequest, SetPlansReply, SetPlansRequest, TotalRow};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{blocking, caller, invalid, optional, read};
use crate::db::{now_ms, PlanRow, Store, Total};

/// Org units per chunk of an export.
const CHUNK_UNITS: usize = 500;
/// Rows buffered for a slow reader.
const BUFFER_ROWS: usize = 2_048;

pub struct ReportService {
    store: Arc<Store>,
}

impl ReportService {
    pub fn new(store: Arc<Store>) -> Self {
        ReportService { store }
    }
}

/// Rows for one unit's totals, with percent and the "of which" check.
fn rows(catalogue: &Catalogue, totals: &[Total], include_pending: bool) -> Vec<TotalRow> {
    let done: HashMap<(&str, &str), Amount> = totals
        .iter()
        .map(|t| ((t.unit.as_str(), t.indicator.as_str()), t.cell.done(include_pending)))
        .collect();
    totals
        .iter()
        .map(|t| {
            let unit = catalogue.org_unit(&t.unit);
            let value = done[&(t.unit.as_str(), t.indicator.as_str())];
            let whole = catalogue
                .indicator(&t.indicator)
                .and_then(|i| i.parent.as_deref())
                .and_then(|p| done.get(&(t.unit.as_str(), p)));
            TotalRow {
                unit_id: t.unit.clone(),
                unit_name: unit.map(|u| u.name.clone()).unwrap_or_default(),
                level: unit.map_or(0, |u| convert::level_to_wire(u.level) as i32),
                parent_id: unit.and_then(|u| u.parent.clone()).unwrap_or_default(),
                indicator: t.indicator.clone(),
                done: value.to_string(),
                plan: t.plan.map(|p| p.to_string()).unwrap_or_default(),
                percent_tenths: percent(value, t.plan).map(|p| p.tenths),
                approved: t.cell.approved.to_string(),
                pending: t.cell.pending.to_string(),
                approved_count: t.cell.approved_n,
                pending_count: t.cell.pending_n,
                conflict_count: t.cell.conflicts_n,
                exceeds_whole: whole.is_some_and(|w| value.cmp_value(*w).is_gt()),
            }
        })
        .collect()
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
        let level = convert::level_from_wire(req.level).map_err(invalid)?;
        let period = req.period.trim().parse().map_err(invalid)?;
        let area = optional(&req.area, |a| Ok(a.to_owned()))?;
        let store = Arc::clone(&self.store);
        let units = blocking(move || store.report_units(&user, level, area.as_deref())).await?;
        let (tx, rx) = mpsc::channel(BUFFER_ROWS);
        let store = Arc::clone(&self.store);
        let pending = req.include_pending;
        tokio::spawn(async move {
            for chunk in units.chunks(CHUNK_UNITS) {
                let chunk = chunk.to_vec();
                let batch = read(&store, move |store| {
                    let totals = store.totals_of(&chunk, period)?;
                    Ok(rows(&store.catalogue(), &totals, pending))
                })
                .await;
                match batch {
                    Ok(rows) => {
                        for row in rows {
                            if tx.send(Ok(row)).await.is_err() {
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
        let store = Arc::clone(&self.store);
        let set = blocking(move || store.set_plans(&user, &rows, now_ms())).await?;
        Ok(Response::new(SetPlansReply { set: set as u32 }))
    }
}

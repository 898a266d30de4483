//! Pipelines and their stages.

use kit::{ApiError, idempotency::Key, paging};
use proto::ticketing::v1 as pb;

use super::App;
use crate::{
    convert,
    store::{pipeline, queries},
};

impl App {
    pub async fn list_pipelines(
        &self,
        account_id: &str,
        page_size: u64,
        after: Option<paging::Cursor>,
    ) -> Result<pb::ListPipelinesResponse, ApiError> {
        let mut rows =
            queries::list_pipelines(&self.db, account_id, after.as_ref(), page_size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, page_size, |r| paging::Cursor {
            key: r.created_at,
            id: r.id.clone(),
        });
        let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
        let stages = queries::stages_of(&self.db, &ids).await?;
        Ok(pb::ListPipelinesResponse {
            pipelines: rows
                .iter()
                .map(|p| convert::pipeline_to_proto(p, &stages))
                .collect(),
            next_page_token,
        })
    }
}

/// A new pipeline's own fields: a name, and 1–50 uniquely named stages.
pub fn check_pipeline(pipeline: &pb::Pipeline) -> Result<(String, Vec<(String, bool)>), ApiError> {
    let name =
        kit::validate::required(&pipeline.name, "pipeline.name", kit::validate::MAX_NAME_LEN)?;
    if pipeline.stages.is_empty() || pipeline.stages.len() > MAX_STAGES {
        return Err(ApiError::invalid(
            "pipeline.stages",
            format!("a pipeline has 1 to {MAX_STAGES} stages"),
        ));
    }
    let mut stages: Vec<(String, bool)> = Vec::with_capacity(pipeline.stages.len());
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let field = format!("pipeline.stages[{i}].name");
        let stage_name = kit::validate::required(&stage.name, &field, kit::validate::MAX_NAME_LEN)?;
        if stages
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(&stage_name))
        {
            return Err(ApiError::invalid(field, "is repeated"));
        }
        stages.push((stage_name, stage.is_closed));
    }
    Ok((name, stages))
}

const MAX_STAGES: usize = 50;

impl App {
    pub async fn create_pipeline(
        &self,
        account_id: &str,
        name: String,
        stages: Vec<(String, bool)>,
        key: Option<Key>,
    ) -> Result<pb::Pipeline, ApiError> {
        let txn = self.begin("create_pipeline").await?;
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &txn).await? {
            return Ok(answer);
        }
        self.account(&txn, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("account", account_id))?;
        let row = pipeline::Model {
            id: kit::new_id(),
            account_id: account_id.to_owned(),
            name,
            is_default: false,
            created_at: kit::time::now_micros(),
        };
        let stage_refs: Vec<(&str, bool)> = stages.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let (row, stage_rows) = queries::insert_pipeline(&txn, row, &stage_refs).await?;
        let answer = convert::pipeline_to_proto(&row, &stage_rows);
        kit::idempotency::record(key.as_ref(), &txn, &answer).await?;
        txn.commit().await?;
        Ok(answer)
    }
}

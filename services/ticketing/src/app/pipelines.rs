//! Pipelines and their stages.

use kit::{ApiError, paging};
use proto::ticketing::v1 as pb;

use super::App;
use crate::{convert, store::queries};

impl App {
    pub async fn list_pipelines(
        &self,
        account_id: &str,
        page_size: u64,
        after: Option<paging::Cursor>,
    ) -> Result<pb::ListPipelinesResponse, ApiError> {
        let mut rows =
            queries::list_pipelines(&self.db, account_id, after.as_ref(), page_size + 1).await?;
        let next_page_token = if rows.len() as u64 > page_size {
            rows.truncate(page_size as usize);
            rows.last()
                .map(|last| {
                    paging::encode_token(&paging::Cursor {
                        key: last.created_at,
                        id: last.id.clone(),
                    })
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
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

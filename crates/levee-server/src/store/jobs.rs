//! Progress markers of the singleton jobs.

use super::{on, Ctx, Store, StoreError};

impl Store {
    pub async fn job_value(&self, name: &str) -> Result<Option<i64>, StoreError> {
        on!(&self.read, p => sqlx::query_scalar::<_, i64>("SELECT value FROM job_state WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await)
        .ctx("reading job state")
    }

    pub async fn set_job_value(&self, name: &str, value: i64) -> Result<(), StoreError> {
        on!(&self.write, p => sqlx::query(
            "INSERT INTO job_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(p)
        .await.map(|r| r.rows_affected()))
        .ctx("writing job state")?;
        Ok(())
    }
}

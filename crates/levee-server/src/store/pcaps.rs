//! PCAPs of incidents, uploaded by agents when an incident resolves. Kept in
//! the database (not on a replica's disk) so any replica can serve them.

use super::{now_ms, on, Ctx, Store, StoreError};

impl Store {
    /// Stores (or replaces) the capture of an incident.
    pub async fn put_pcap(
        &self,
        tenant_id: i64,
        incident_id: i64,
        data: &[u8],
        sha256: &str,
    ) -> Result<(), StoreError> {
        on!(&self.write, p => sqlx::query(
            "INSERT INTO pcaps (incident_id, tenant_id, size, sha256, data, uploaded_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (incident_id) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, \
             data = excluded.data, uploaded_ms = excluded.uploaded_ms",
        )
        .bind(incident_id)
        .bind(tenant_id)
        .bind(data.len() as i64)
        .bind(sha256)
        .bind(data)
        .bind(now_ms())
        .execute(p)
        .await.map(|r| r.rows_affected()))
        .ctx("storing a pcap")?;
        Ok(())
    }

    /// (bytes, sha256) of an incident's capture.
    pub async fn pcap(
        &self,
        tenant_id: i64,
        incident_id: i64,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        on!(&self.read, p => sqlx::query_as::<_, (Vec<u8>, String)>(
            "SELECT data, sha256 FROM pcaps WHERE tenant_id = $1 AND incident_id = $2",
        )
        .bind(tenant_id)
        .bind(incident_id)
        .fetch_optional(p)
        .await)
        .ctx("reading a pcap")
    }
}

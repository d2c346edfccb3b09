//! A backup taken through the Admin service while the server runs restores
//! into a store that answers as the original; only admins may take one.

use crate::util;

use std::sync::Arc;

use fieldsync_proto::v1::BackupRequest;
use fieldsync_server::Store;
use fieldsync_store::Sled;
use util::{start_server, ADMIN_TOKEN, PERIOD, VILLAGE};

#[tokio::test]
async fn a_backup_of_a_running_server_restores_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let a = server.tablet("Nguyễn Văn An").await;
    a.record(&[("road_km", "1.25"), ("village_cultural_house", "2")]);
    a.sync(&server.url).await;

    // Taken while the server is up, through the admin's connection.
    let mut backup = server.api(ADMIN_TOKEN).await.backup().await.unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = backup.next().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    // Only admins: the RPC's access check, asked raw.
    let refused = a.remote(&server.url).await.admin().backup(BackupRequest {}).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    let head = server.store.head().unwrap();
    let period = PERIOD.parse().unwrap();
    let fields = server.store.fields_of(VILLAGE, period).unwrap();
    server.stop().await;

    let file = dir.path().join("fieldsync.backup");
    std::fs::write(&file, &bytes).unwrap();
    let restored = dir.path().join("restored");
    Store::restore_from_file(&file, &restored).expect("restore");
    let store =
        Store::open(Arc::new(Sled::open(&restored).unwrap()), fieldsync::demo::catalogue).unwrap();
    assert_eq!(store.head().unwrap(), head);
    assert_eq!(store.fields_of(VILLAGE, period).unwrap(), fields);
    assert_eq!(store.check().unwrap(), Vec::<String>::new());
}

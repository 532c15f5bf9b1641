//! Mapping SQLite errors onto [`StoreError`]: conditions that may clear by themselves (disk full,
//! read-only file, lock contention, I/O) are `Unavailable`; the rest are `Internal`.

use crate::store::StoreError;
use rusqlite::ErrorCode;

pub(super) fn classify(e: &rusqlite::Error) -> StoreError {
    let transient = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
        )
    );
    let source = e.to_string().into();
    if transient {
        StoreError::Unavailable(source)
    } else {
        StoreError::Internal(source)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        classify(&e)
    }
}

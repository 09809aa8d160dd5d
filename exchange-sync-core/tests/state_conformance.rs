//! Both state stores pass the public conformance suite, used exactly as an external store crate
//! (a PostgreSQL store, say) would use it: through `exchange_sync_core::state_conformance_tests!`.
//! Needs the `testkit` feature (`cargo test -p exchange-sync-core --all-features`).
#![cfg(feature = "testkit")]

mod store_machine;

mod memory_store {
    exchange_sync_core::state_conformance_tests!(|| async { exchange_sync_core::state::memory::MemoryStore::new() });
}

/// A database file in WAL mode (the in-crate tests use in-memory databases).
#[cfg(feature = "sqlite")]
mod sqlite_file_store {
    use exchange_sync_core::state::conformance::Guarded;
    use exchange_sync_core::state::sqlite::SqliteStore;

    exchange_sync_core::state_conformance_tests!(|| async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open(dir.path().join("state.db")).await.expect("the database opens");
        Guarded { store, guard: dir }
    });
}

/// The SQLite store holds to the memory store's semantics under random transactions (see
/// `store_machine`).
#[cfg(feature = "sqlite")]
mod sqlite_agrees_with_memory_store {
    use exchange_sync_core::state::sqlite::SqliteStore;
    use proptest::prelude::*;

    use crate::store_machine::{agree, cases, steps};

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(200), ..ProptestConfig::default() })]

        #[test]
        fn same_outcomes_same_state(steps in steps()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let sqlite = SqliteStore::open_in_memory().await.unwrap();
                agree(&sqlite, "sqlite", steps).await
            })?;
        }
    }
}

//! The contract for webhooks: creating (with the per-user cap), reading, listing, deleting,
//! renewing and purging, each only for its owner.

use crate::fixtures::*;
use callhook::domain::CallState;
use callhook::domain::webhook::{MetadataPolicy, SigningAlgo};
use callhook::store::{AttemptEnd, Created, Store};
use std::sync::Arc;

pub(crate) async fn a_created_webhook_reads_back_exactly_as_given(store: Arc<dyn Store>) {
    // Arrange: every optional field set.
    let mut w = webhook(&ann(), "w1");
    w.spec.signing_algo = SigningAlgo::HmacSha256;
    w.spec.signing_key = Some("s3cret".to_string());
    w.spec.metadata_policy = MetadataPolicy::Body;
    w.created_at = at(1_234);
    w.expire_at = at(5_000_000);
    w.purge_at = at(7_000_000);

    // Act
    let created = store.create_webhook(&w, Some(5)).await.expect("create");

    // Assert
    assert_eq!(created, Created::Created);
    assert_eq!(get(&store, &ann(), "w1").await, w);
    let listed = store.list_webhooks(&ann()).await.expect("list");
    assert_eq!(listed, [w]);
}

pub(crate) async fn webhooks_are_listed_per_owner_in_creation_order(store: Arc<dyn Store>) {
    // Arrange: ids that do not sort in creation order, and another user's webhook between.
    for (n, id) in ["w-c", "w-a", "w-b"].into_iter().enumerate() {
        let mut w = webhook(&ann(), id);
        w.created_at = at(1_000 * (n as i64 + 1));
        create(&store, &w).await;
        if n == 0 {
            hook(&store, &bob(), "w-bob").await;
        }
    }

    // Act
    let anns = store.list_webhooks(&ann()).await.expect("list ann's");
    let bobs = store.list_webhooks(&bob()).await.expect("list bob's");
    let nobodys = store
        .list_webhooks(&owner("acc2", "ann"))
        .await
        .expect("list");

    // Assert
    let ids: Vec<&str> = anns.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["w-c", "w-a", "w-b"]);
    let ids: Vec<&str> = bobs.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["w-bob"]);
    assert!(
        nobodys.is_empty(),
        "same user id, other account: {nobodys:?}"
    );
}

pub(crate) async fn creating_at_the_cap_stores_nothing_and_says_so(store: Arc<dyn Store>) {
    // Arrange: Ann has two webhooks, the cap.
    for id in ["w1", "w2"] {
        let created = store
            .create_webhook(&webhook(&ann(), id), Some(2))
            .await
            .expect("create");
        assert_eq!(created, Created::Created, "{id} is under the cap");
    }

    // Act
    let third = store
        .create_webhook(&webhook(&ann(), "w3"), Some(2))
        .await
        .expect("create at the cap");
    let bobs = store
        .create_webhook(&webhook(&bob(), "w-bob"), Some(2))
        .await
        .expect("create bob's");

    // Assert
    assert_eq!(third, Created::AtCap(2));
    assert_eq!(store.get_webhook(&ann(), "w3").await.expect("get"), None);
    assert_eq!(store.list_webhooks(&ann()).await.expect("list").len(), 2);
    assert_eq!(bobs, Created::Created, "the cap is per user");
    assert!(store.delete_webhook(&ann(), "w1").await.expect("delete"));
    let after_delete = store
        .create_webhook(&webhook(&ann(), "w3"), Some(2))
        .await
        .expect("create after a delete");
    assert_eq!(
        after_delete,
        Created::Created,
        "a deleted one no longer counts"
    );
    let uncapped = store
        .create_webhook(&webhook(&ann(), "w4"), None)
        .await
        .expect("create without a cap");
    assert_eq!(uncapped, Created::Created);
}

pub(crate) async fn another_owners_webhook_can_be_neither_read_nor_deleted_nor_renewed(
    store: Arc<dyn Store>,
) {
    // Arrange
    let w = hook(&store, &ann(), "w1").await;
    let strangers = [bob(), owner("acc2", "ann")];

    for stranger in &strangers {
        // Act
        let read = store.get_webhook(stranger, "w1").await.expect("get");
        let deleted = store.delete_webhook(stranger, "w1").await.expect("delete");
        let renewed = store
            .renew_webhook(stranger, "w1", at(10), at(FAR + 10), at(2 * FAR + 10))
            .await
            .expect("renew");

        // Assert
        assert_eq!(read, None, "{stranger:?} read it");
        assert!(!deleted, "{stranger:?} deleted it");
        assert_eq!(renewed, None, "{stranger:?} renewed it");
    }
    assert_eq!(get(&store, &ann(), "w1").await, w, "a stranger changed it");
    assert!(
        !store
            .delete_webhook(&ann(), "w-none")
            .await
            .expect("delete")
    );
    assert_eq!(
        store.get_webhook(&ann(), "w-none").await.expect("get"),
        None
    );
}

pub(crate) async fn deleting_a_webhook_removes_it_and_its_waiting_deliveries(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: one waiting delivery for each of two webhooks.
    hook(&store, &ann(), "w1").await;
    hook(&store, &ann(), "w2").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;

    // Act
    let deleted = store.delete_webhook(&ann(), "w1").await.expect("delete");
    let again = store
        .delete_webhook(&ann(), "w1")
        .await
        .expect("delete again");

    // Assert
    assert!(deleted && !again);
    assert_eq!(store.get_webhook(&ann(), "w1").await.expect("get"), None);
    assert_eq!(store.backlog().await.expect("backlog").pending, 1);
    let jobs = d.take(claim(2_000, 3_000)).await;
    assert_eq!(whats(&jobs), [job("w2", "c1", "RINGING")]);
}

pub(crate) async fn renewing_moves_the_dates_and_clears_failed_but_keeps_the_statistics(
    store: Arc<dyn Store>,
) {
    let mut d = Driver::new(&store);
    // Arrange: w1 has failed once.
    hook(&store, &ann(), "w1").await;
    event(&store, &ann(), "c1", CallState::Ringing, 1_000).await;
    let sent = d.take(claim(1_000, 2_000)).await;
    d.finish(&sent[0], AttemptEnd::Failed(http_500()), 1_500)
        .await;
    let before = get(&store, &ann(), "w1").await;
    assert!(before.statistics.failed, "arrange: w1 failed");

    // Act
    let renewed = store
        .renew_webhook(&ann(), "w1", at(3_000), at(4_000_000), at(9_000_000))
        .await
        .expect("renew")
        .expect("w1 is ann's");

    // Assert
    let mut expected = before.clone();
    expected.expire_at = at(4_000_000);
    expected.purge_at = at(9_000_000);
    expected.renewed_at = Some(at(3_000));
    expected.renewed_by = Some("ann".to_string());
    expected.statistics.failed = false;
    assert_eq!(renewed, expected);
    assert_eq!(
        get(&store, &ann(), "w1").await,
        expected,
        "renew was not stored"
    );
}

/// A webhook is purged once its `purgeAt` is reached (`purgeAt <= now`).
pub(crate) async fn purging_deletes_webhooks_whose_purge_at_has_come(store: Arc<dyn Store>) {
    // Arrange: purge at 1000, 2000 and 3000; w2 has a waiting delivery.
    assert_eq!(store.next_purge_at().await.expect("next purge"), None);
    for (id, purge_ms) in [("w2", 2_000), ("w3", 3_000), ("w1", 1_000)] {
        let mut w = webhook(&ann(), id);
        w.expire_at = at(500);
        w.purge_at = at(purge_ms);
        create(&store, &w).await;
    }
    let mut live = webhook(&bob(), "w-bob");
    live.purge_at = at(2_000);
    create(&store, &live).await;
    event(&store, &bob(), "c1", CallState::Ringing, 100).await;
    assert_eq!(store.next_purge_at().await.expect("next"), Some(at(1_000)));

    // Act
    let early = store.purge_webhooks(at(999)).await.expect("purge");
    let purged = store.purge_webhooks(at(2_000)).await.expect("purge");

    // Assert
    assert_eq!(
        (early, purged),
        (0, 3),
        "nothing before 1000; w1, w2, w-bob at 2000"
    );
    let left: Vec<String> = store
        .list_webhooks(&ann())
        .await
        .expect("list")
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(left, ["w3"]);
    assert_eq!(store.get_webhook(&bob(), "w-bob").await.expect("get"), None);
    assert_eq!(store.next_purge_at().await.expect("next"), Some(at(3_000)));
    assert_eq!(
        store.backlog().await.expect("backlog").pending,
        0,
        "the purged webhook's delivery still waits"
    );
    assert_eq!(store.purge_webhooks(at(2_500)).await.expect("purge"), 0);
}

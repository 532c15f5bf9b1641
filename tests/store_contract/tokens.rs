//! The contract for tokens and identities: storing, listing, revoking and authenticating tokens,
//! the user and account profiles tokens create or fill in, and finding a user by number.

use crate::fixtures::*;
use callhook::domain::identity::{AccountProfile, Principal, Role, UserProfile, hash_token};
use callhook::store::{NewToken, Store};
use std::sync::Arc;

pub(crate) async fn a_fresh_store_answers_ping(store: Arc<dyn Store>) {
    store.ping().await.expect("ping a fresh store");
}

pub(crate) async fn created_tokens_are_listed_as_created_and_unrevoked(store: Arc<dyn Store>) {
    // Arrange: a user token with a name and an expiry, and an ingest token for any account.
    let mut user = user_token("tok-user", "secret-1", &ann(), 1_000);
    user.name = Some("laptop".to_string());
    user.expires_at = Some(at(9_000));
    let ingest = NewToken {
        role: Role::Ingest,
        account_id: None,
        user_id: None,
        ..user_token("tok-ingest", "secret-2", &ann(), 2_000)
    };

    // Act
    let user_info = store.create_token(user).await.expect("create user token");
    let ingest_info = store
        .create_token(ingest)
        .await
        .expect("create ingest token");
    let mut listed = store.list_tokens().await.expect("list tokens");

    // Assert
    assert_eq!(
        (
            user_info.id.as_str(),
            user_info.role,
            user_info.name.as_deref()
        ),
        ("tok-user", Role::User, Some("laptop"))
    );
    assert_eq!(
        (
            user_info.created_at,
            user_info.expires_at,
            user_info.revoked_at
        ),
        (at(1_000), Some(at(9_000)), None)
    );
    assert_eq!(
        (ingest_info.role, ingest_info.account_id.as_deref()),
        (Role::Ingest, None)
    );
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, [ingest_info, user_info]);
}

pub(crate) async fn a_live_token_authenticates_as_its_principal(store: Arc<dyn Store>) {
    // Arrange
    store
        .create_token(user_token("tok-1", "secret-1", &ann(), 1_000))
        .await
        .expect("create token");

    // Act
    let found = store
        .authenticate(hash_token("secret-1"), at(5_000))
        .await
        .expect("authenticate");
    let unknown = store
        .authenticate(hash_token("not-a-token"), at(5_000))
        .await
        .expect("authenticate an unknown hash");

    // Assert
    let principal = Principal {
        token_id: "tok-1".to_string(),
        role: Role::User,
        account_id: Some("acc1".to_string()),
        user_id: Some("ann".to_string()),
    };
    assert_eq!(found, Some(principal));
    assert_eq!(unknown, None);
}

/// A token expires at its `expires_at`: live just before, refused from that instant on.
pub(crate) async fn an_expired_token_is_refused_from_its_expiry_on(store: Arc<dyn Store>) {
    // Arrange
    let mut token = user_token("tok-1", "secret-1", &ann(), 1_000);
    token.expires_at = Some(at(5_000));
    store.create_token(token).await.expect("create token");
    let auth = |ms| {
        let store = store.clone();
        async move {
            store
                .authenticate(hash_token("secret-1"), at(ms))
                .await
                .expect("authenticate")
                .map(|p| p.token_id)
        }
    };

    // Act / Assert
    assert_eq!(auth(4_999).await.as_deref(), Some("tok-1"));
    assert_eq!(auth(5_000).await, None, "at its expiry");
    assert_eq!(auth(6_000).await, None, "after its expiry");
}

pub(crate) async fn a_revoked_token_is_refused_and_cannot_be_revoked_again(store: Arc<dyn Store>) {
    // Arrange
    for (id, secret) in [("tok-1", "secret-1"), ("tok-2", "secret-2")] {
        store
            .create_token(user_token(id, secret, &ann(), 1_000))
            .await
            .expect("create token");
    }

    // Act
    let revoked = store
        .revoke_token("tok-1", at(2_000))
        .await
        .expect("revoke");
    let again = store
        .revoke_token("tok-1", at(3_000))
        .await
        .expect("revoke again");
    let unknown = store
        .revoke_token("tok-none", at(3_000))
        .await
        .expect("revoke an unknown token");

    // Assert
    assert!(revoked, "the first revocation revokes");
    assert!(!again, "a revoked token cannot be revoked again");
    assert!(!unknown, "an unknown token cannot be revoked");
    let refused = store
        .authenticate(hash_token("secret-1"), at(2_500))
        .await
        .expect("authenticate");
    assert_eq!(refused, None, "a revoked token authenticates");
    let other = store
        .authenticate(hash_token("secret-2"), at(2_500))
        .await
        .expect("authenticate");
    assert!(other.is_some(), "revoking one token revoked another");
    let mut listed = store.list_tokens().await.expect("list tokens");
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let revoked_at: Vec<_> = listed.iter().map(|t| t.revoked_at).collect();
    assert_eq!(
        revoked_at,
        [Some(at(2_000)), None],
        "the first revocation's time stays"
    );
}

fn ann_profile() -> UserProfile {
    UserProfile {
        account_id: "acc1".to_string(),
        user_id: "ann".to_string(),
        first_name: Some("Ann".to_string()),
        last_name: None,
        email: None,
        contact_number: Some("+15550100".to_string()),
        account_name: Some("Acme".to_string()),
    }
}

pub(crate) async fn a_token_with_a_profile_creates_its_user_and_account(store: Arc<dyn Store>) {
    // Arrange
    let mut token = user_token("tok-1", "secret-1", &ann(), 1_000);
    token.profile = Some(ann_profile());

    // Act
    store.create_token(token).await.expect("create token");

    // Assert
    let user = store.user_profile(&ann()).await.expect("user profile");
    assert_eq!(user, Some(ann_profile()));
    let account = store
        .account_profile("acc1")
        .await
        .expect("account profile");
    assert_eq!(
        account,
        Some(AccountProfile {
            account_id: "acc1".to_string(),
            name: Some("Acme".to_string()),
            org: None,
        })
    );
    assert_eq!(store.user_profile(&bob()).await.expect("profile"), None);
    assert_eq!(store.account_profile("acc2").await.expect("profile"), None);
}

pub(crate) async fn later_profiles_fill_in_fields_and_never_erase_them(store: Arc<dyn Store>) {
    // Arrange: Ann's full profile, then a token naming no field, then one naming two.
    let full = UserProfile {
        last_name: Some("Smith".to_string()),
        email: Some("ann@example.com".to_string()),
        ..ann_profile()
    };
    let bare = UserProfile {
        account_id: "acc1".to_string(),
        user_id: "ann".to_string(),
        ..UserProfile::default()
    };
    let some = UserProfile {
        first_name: Some("Anna".to_string()),
        account_name: Some("Acme Ltd".to_string()),
        ..bare.clone()
    };
    let mut tokens = Vec::new();
    for (n, profile) in [full.clone(), bare, some].into_iter().enumerate() {
        let mut token = user_token(&format!("tok-{n}"), &format!("s-{n}"), &ann(), 1_000);
        token.profile = Some(profile);
        tokens.push(token);
    }
    let mut tokens = tokens.into_iter();
    store
        .create_token(tokens.next().expect("three tokens"))
        .await
        .expect("create token");

    // Act
    store
        .create_token(tokens.next().expect("three tokens"))
        .await
        .expect("create token");
    let after_bare = store.user_profile(&ann()).await.expect("user profile");
    store
        .create_token(tokens.next().expect("three tokens"))
        .await
        .expect("create token");
    let after_some = store.user_profile(&ann()).await.expect("user profile");

    // Assert: given values overwrite, absent ones leave what was there.
    assert_eq!(
        after_bare.as_ref(),
        Some(&full),
        "a profile without values erased some"
    );
    assert_eq!(
        after_some,
        Some(UserProfile {
            first_name: Some("Anna".to_string()),
            account_name: Some("Acme Ltd".to_string()),
            ..full
        })
    );
}

/// Several users of one account may share a number: the lowest user id answers, so that every
/// node finds the same user.
pub(crate) async fn user_by_number_finds_the_user_with_that_number_in_that_account(
    store: Arc<dyn Store>,
) {
    // Arrange: the same number for zed and bob in acc1 and for carl in acc2; Ann has another.
    let people = [
        ("acc1", "zed", "+15550200"),
        ("acc1", "bob", "+15550200"),
        ("acc2", "carl", "+15550300"),
        ("acc1", "ann", "+15550100"),
    ];
    for (n, (account, user, number)) in people.into_iter().enumerate() {
        let mut token = user_token(
            &format!("tok-{n}"),
            &format!("s-{n}"),
            &owner(account, user),
            1,
        );
        token.profile = Some(UserProfile {
            account_id: account.to_string(),
            user_id: user.to_string(),
            contact_number: Some(number.to_string()),
            ..UserProfile::default()
        });
        store.create_token(token).await.expect("create token");
    }
    let find = |account: &'static str, number: &'static str| {
        let store = store.clone();
        async move {
            store
                .user_by_number(account, number)
                .await
                .expect("user by number")
        }
    };

    // Act / Assert
    assert_eq!(find("acc1", "+15550100").await, Some(ann()));
    assert_eq!(find("acc1", "+15550200").await, Some(bob()), "lowest id");
    assert_eq!(find("acc2", "+15550300").await, Some(owner("acc2", "carl")));
    assert_eq!(find("acc1", "+15550300").await, None, "another account's");
    assert_eq!(find("acc1", "+15559999").await, None, "nobody's number");
}

//! Who takes part in simulated calls: the users and accounts (named so that tokens can be made
//! for them by hand) and the remote parties (phone numbers and caller names drawn from the seed).
//!
//! Naming: users are `user-1` .. `user-K` and accounts `acct-1` .. `acct-A`; users are dealt to
//! accounts in turn, so `user-k` belongs to `acct-((k - 1) mod A + 1)`. With 5 users and 2
//! accounts: user-1, user-3 and user-5 are in acct-1; user-2 and user-4 in acct-2.
//!
//! Pure: no I/O, no clock.

use rand::{Rng, RngExt};

/// The id of user `k` (1-based).
pub fn user_id(k: u32) -> String {
    format!("user-{k}")
}

/// The id of account `a` (1-based).
pub fn account_id(a: u32) -> String {
    format!("acct-{a}")
}

/// The account (1-based) user `k` (1-based) belongs to, with `accounts` accounts.
pub fn account_of(k: u32, accounts: u32) -> u32 {
    (k - 1) % accounts.max(1) + 1
}

/// US area codes numbers are drawn in (with the fictional 555 exchange).
const AREA_CODES: [&str; 10] = [
    "212", "312", "415", "617", "206", "512", "303", "404", "702", "919",
];
/// Share of remote parties with a UK number (Ofcom's drama range, 07700 900xxx).
const UK_SHARE: f64 = 0.15;
/// Share of calls whose caller name is withheld (no `callerId`).
const WITHHELD: f64 = 0.20;

const FIRST_NAMES: [&str; 24] = [
    "Ann", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kate",
    "Luis", "Maya", "Nils", "Olga", "Pedro", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wei", "Zoe",
];
const LAST_NAMES: [&str; 20] = [
    "Lee", "Smith", "Garcia", "Okafor", "Novak", "Tanaka", "Rossi", "Müller", "Dubois", "Khan",
    "Silva", "Nguyen", "Brown", "Kowalski", "Haddad", "Jensen", "Moreau", "Patel", "Ivanova",
    "O'Brien",
];

/// A remote party's phone number in E.164 form: `+1 AAA 555 NNNN` or `+44 7700 900NNN`.
pub fn phone_number(rng: &mut impl Rng) -> String {
    if rng.random::<f64>() < UK_SHARE {
        format!("+447700900{:03}", rng.random_range(0..1_000u32))
    } else {
        let area = AREA_CODES[rng.random_range(0..AREA_CODES.len())];
        format!("+1{area}555{:04}", rng.random_range(0..10_000u32))
    }
}

/// A remote party's name, or `None` when it is withheld.
pub fn caller_name(rng: &mut impl Rng) -> Option<String> {
    let withheld = rng.random::<f64>() < WITHHELD;
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    (!withheld).then(|| format!("{first} {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn users_are_dealt_to_accounts_in_turn() {
        let accounts: Vec<u32> = (1..=5).map(|k| account_of(k, 2)).collect();
        assert_eq!(accounts, [1, 2, 1, 2, 1]);
        assert_eq!(account_of(7, 1), 1);
        assert_eq!(
            (user_id(3), account_id(2)),
            ("user-3".into(), "acct-2".into())
        );
    }

    #[test]
    fn numbers_are_e164_and_valid_ids_for_the_api() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for _ in 0..500 {
            let n = phone_number(&mut rng);
            assert!(
                n.starts_with('+') && n[1..].chars().all(|c| c.is_ascii_digit()),
                "{n}"
            );
            assert!((12..=13).contains(&n.len()), "{n}");
        }
    }
}

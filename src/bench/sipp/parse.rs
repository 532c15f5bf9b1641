//! Reading what SIPp wrote, and the percentile of the samples: pure functions over text.
//!
//! May depend on: std only.

use std::collections::HashMap;

/// `SuccessfulCall(C)` and `FailedCall(C)` (cumulative) from the last row of SIPp's
/// `-trace_stat` CSV (`;`-separated, a header row first), or `None` when it has no such row.
pub fn call_counts(stats: &str) -> Option<(u64, u64)> {
    let mut lines = stats.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let column = |name: &str| -> Option<u64> {
        let at = header.iter().position(|h| h.trim() == name)?;
        last.get(at)?.trim().parse().ok()
    };
    Some((column("SuccessfulCall(C)")?, column("FailedCall(C)")?))
}

/// Microseconds from sending each call's first INVITE (CSeq 1) to taking in its first 200 for
/// that INVITE, from SIPp's `-trace_shortmsg` log, in the order the 200s came. Its lines are
/// tab-separated: date, time, seconds since the epoch with microseconds, `S` or `R`, Call-ID,
/// `CSeq:N METHOD`, the first line of the message. Retransmissions and lines that do not parse
/// are passed over; a call with no 200 gives no sample.
pub fn invite_to_200_us(log: &str) -> Vec<u64> {
    let mut sent: HashMap<&str, u64> = HashMap::new();
    let mut samples = Vec::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [_, _, at, way, call_id, cseq, first, ..] = fields[..] else {
            continue;
        };
        if !is_first_invite(cseq) {
            continue;
        }
        let Some(at) = epoch_us(at) else { continue };
        match way {
            "S" if first.starts_with("INVITE ") => {
                sent.entry(call_id).or_insert(at);
            }
            "R" if first.starts_with("SIP/2.0 200") => {
                if let Some(start) = sent.remove(call_id) {
                    samples.push(at.saturating_sub(start));
                }
            }
            _ => {}
        }
    }
    samples
}

/// `CSeq:1 INVITE` (with any spacing).
fn is_first_invite(cseq: &str) -> bool {
    let value = cseq.trim().strip_prefix("CSeq:").unwrap_or(cseq);
    let mut words = value.split_whitespace();
    words.next() == Some("1") && words.next() == Some("INVITE")
}

/// `1795807609.950662` as microseconds, without going through a float.
fn epoch_us(text: &str) -> Option<u64> {
    let (secs, frac) = text.trim().split_once('.')?;
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: u64 = format!("{frac:0<6}").parse().ok()?;
    secs.parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros)
}

/// The `q`-th percentile (0 to 100) of `samples` by the nearest-rank method: the smallest
/// sample that at least `q` percent of the samples are at or below. `None` for no samples or
/// a `q` outside 0..=100.
pub fn percentile(samples: &[u64], q: f64) -> Option<u64> {
    if samples.is_empty() || !(0.0..=100.0).contains(&q) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    // Ranks are 1-based; q = 0 is the minimum.
    let rank = ((q / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_the_nearest_rank() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&samples, 50.0), Some(50));
        assert_eq!(percentile(&samples, 99.0), Some(99));
        assert_eq!(percentile(&samples, 99.5), Some(100));
        assert_eq!(percentile(&samples, 100.0), Some(100));
        assert_eq!(percentile(&samples, 0.0), Some(1));
        assert_eq!(percentile(&[7, 3, 5], 50.0), Some(5));
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }

    #[test]
    fn percentile_of_nothing_or_out_of_range_is_none() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1, 2], -1.0), None);
        assert_eq!(percentile(&[1, 2], 100.1), None);
        assert_eq!(percentile(&[1, 2], f64::NAN), None);
    }

    #[test]
    fn call_counts_come_from_the_last_row() {
        let stats = "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);\n\
                     2026-11-27\t18:53:40.460496\t1.5;0;0;0;0;\n\
                     2026-11-27\t18:53:41.460496\t1.5;3;198;1;2;\n";
        assert_eq!(call_counts(stats), Some((198, 2)));
        assert_eq!(call_counts("SuccessfulCall(C);FailedCall(C)\n"), None);
        assert_eq!(call_counts(""), None);
        assert_eq!(call_counts("a;b\n1;2\n"), None);
    }

    #[test]
    fn invite_to_200_pairs_each_calls_first_invite_with_its_first_200() {
        let log = "\
2026-11-27\t19:26:49.950662\t1795807609.950662\tS\t1-1@h\tCSeq:1 INVITE\tINVITE sip:bob@h SIP/2.0
2026-11-27\t19:26:49.950901\t1795807609.950901\tR\t1-1@h\tCSeq:1 INVITE\tSIP/2.0 180 Ringing
2026-11-27\t19:26:49.951000\t1795807609.951\tS\t2-1@h\tCSeq:1 INVITE\tINVITE sip:bob@h SIP/2.0
2026-11-27\t19:26:49.951500\t1795807609.9515\tS\t2-1@h\tCSeq:1 INVITE\tINVITE sip:bob@h SIP/2.0
2026-11-27\t19:26:49.951993\t1795807609.951993\tR\t1-1@h\tCSeq:1 INVITE\tSIP/2.0 200 OK
2026-11-27\t19:26:49.952187\t1795807609.952187\tS\t1-1@h\tCSeq:1 ACK\tACK sip:h SIP/2.0
2026-11-27\t19:26:49.952200\t1795807609.952200\tR\t1-1@h\tCSeq:1 INVITE\tSIP/2.0 200 OK
2026-11-27\t19:26:49.953000\t1795807609.953\tS\t1-1@h\tCSeq:2 INVITE\tINVITE sip:h SIP/2.0
2026-11-27\t19:26:49.953500\t1795807609.9535\tR\t1-1@h\tCSeq:2 INVITE\tSIP/2.0 200 OK
2026-11-27\t19:26:49.954000\t1795807609.954\tR\t2-1@h\tCSeq: 1 INVITE\tSIP/2.0 200 OK
2026-11-27\t19:26:49.955000\t1795807609.955\tS\t3-1@h\tCSeq:1 INVITE\tINVITE sip:bob@h SIP/2.0
2026-11-27\t19:26:49.956000\t1795807609.956\tR\t3-1@h\tCSeq:1 INVITE\tSIP/2.0 487 Request Terminated
garbage line
";
        // Call 1: 950662 -> 951993; call 2: first INVITE 951000 -> 954000; call 3: no 200.
        assert_eq!(invite_to_200_us(log), vec![1331, 3000]);
    }

    #[test]
    fn epoch_microseconds_parse_without_rounding() {
        assert_eq!(epoch_us("1795807609.950662"), Some(1_795_807_609_950_662));
        assert_eq!(epoch_us("10.5"), Some(10_500_000));
        assert_eq!(epoch_us("10"), None);
        assert_eq!(epoch_us("10.1234567"), None);
        assert_eq!(epoch_us("x.1"), None);
    }
}

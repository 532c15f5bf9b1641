//! What the observer needs to know about one SIP message, read out of the codec's parsed form:
//! request method or status code, Call-ID, CSeq, From and To (user, host, display name, tag), the
//! SDP direction of its body, and its Session-Expires. Anything missing or unreadable makes the
//! message malformed.
//!
//! May depend on: rsipstack's `sip` codec.

use rsipstack::sip::headers::typed::{From as TypedFrom, To as TypedTo};
use rsipstack::sip::{Header, HeadersExt, Host, SipMessage, Uri};

/// The methods the observer acts on; the rest are relayed and only refresh a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Other,
}

impl Method {
    fn of(m: &rsipstack::sip::Method) -> Method {
        use rsipstack::sip::Method as M;
        match m {
            M::Invite => Method::Invite,
            M::Ack => Method::Ack,
            M::Bye => Method::Bye,
            M::Cancel => Method::Cancel,
            _ => Method::Other,
        }
    }
}

/// A request or a response with its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request(Method),
    Response(u16),
}

/// A From or To header: who, and the dialog tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// The URI's user part (an extension or a number), if any.
    pub user: Option<String>,
    pub host: String,
    pub display: Option<String>,
    pub tag: Option<String>,
}

impl Address {
    /// The party's number as a call event shows it: the user part, else the host.
    pub fn number(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.host)
    }
}

/// What the SDP offer in a body asks of the media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `a=sendonly`, `a=inactive` or a 0.0.0.0 connection address: the sender holds the call.
    Hold,
    /// `a=sendrecv` (or `recvonly`, or no direction: sendrecv by default).
    Talk,
}

/// The observer's view of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub kind: Kind,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: Method,
    pub from: Address,
    pub to: Address,
    /// The body's SDP direction, when the body is SDP.
    pub media: Option<Media>,
    /// Session-Expires in seconds (RFC 4028), when present.
    pub session_expires: Option<u32>,
}

impl Facts {
    /// Reads the facts out of a parsed message, or says which header is missing or unreadable.
    pub fn of(message: &SipMessage) -> Result<Facts, String> {
        let (kind, headers, body) = match message {
            SipMessage::Request(r) => (Kind::Request(Method::of(&r.method)), &r.headers, &r.body),
            SipMessage::Response(r) => (
                Kind::Response(u16::from(r.status_code.clone())),
                &r.headers,
                &r.body,
            ),
        };
        let call_id = message
            .call_id_header()
            .map_err(|e| e.to_string())?
            .value()
            .trim()
            .to_string();
        if call_id.is_empty() {
            return Err("empty Call-ID".into());
        }
        let cseq = message.cseq_header().map_err(|e| e.to_string())?;
        let seq = cseq.seq().map_err(|e| format!("CSeq: {e}"))?;
        let cseq_method = Method::of(&cseq.method().map_err(|e| format!("CSeq: {e}"))?);
        let from = TypedFrom::parse(message.from_header().map_err(|e| e.to_string())?.value())
            .map_err(|e| format!("From: {e}"))?;
        let to = TypedTo::parse(message.to_header().map_err(|e| e.to_string())?.value())
            .map_err(|e| format!("To: {e}"))?;
        let is_sdp = headers.iter().any(|h| match h {
            Header::ContentType(t) => t
                .value()
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/sdp"),
            _ => false,
        });
        let session_expires = headers.iter().find_map(|h| match h {
            Header::SessionExpires(v) => v.value().split(';').next()?.trim().parse().ok(),
            _ => None,
        });
        Ok(Facts {
            kind,
            call_id,
            cseq: seq,
            cseq_method,
            from: address(
                &from.uri,
                from.display_name.clone(),
                from.tag().map(|t| t.to_string()),
            ),
            to: address(
                &to.uri,
                to.display_name.clone(),
                to.tag().map(|t| t.to_string()),
            ),
            media: (is_sdp && !body.is_empty()).then(|| media(body)),
            session_expires,
        })
    }
}

fn address(uri: &Uri, display: Option<String>, tag: Option<String>) -> Address {
    let host = match &uri.host_with_port.host {
        Host::Domain(d) => d.to_string(),
        Host::IpAddr(ip) => ip.to_string(),
    };
    Address {
        user: uri
            .auth
            .as_ref()
            .map(|a| a.user.clone())
            .filter(|u| !u.is_empty()),
        host,
        display: display
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty()),
        tag: tag.filter(|t| !t.is_empty()),
    }
}

/// The direction an SDP body asks for: the first media section's own attribute, else the
/// session's, else sendrecv; a `c=` address of 0.0.0.0 (RFC 2543 hold) counts as hold.
pub fn media(body: &[u8]) -> Media {
    let text = String::from_utf8_lossy(body);
    let (mut session, mut first_media, mut in_media, mut media_sections) = (None, None, false, 0);
    let mut zero_address = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("m=") {
            media_sections += 1;
            in_media = true;
            continue;
        }
        if line.starts_with("c=") && line.split_whitespace().nth(2) == Some("0.0.0.0") {
            zero_address |= media_sections <= 1;
        }
        let direction = match line {
            "a=sendonly" | "a=inactive" => Some(Media::Hold),
            "a=sendrecv" | "a=recvonly" => Some(Media::Talk),
            _ => None,
        };
        if let Some(d) = direction {
            if !in_media {
                session = Some(d);
            } else if media_sections == 1 {
                first_media = Some(d);
            }
        }
    }
    if zero_address {
        return Media::Hold;
    }
    first_media.or(session).unwrap_or(Media::Talk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_direction_media_level_wins_over_session_level() {
        let sdp = |s: &str| media(s.replace('|', "\r\n").as_bytes());
        assert_eq!(
            sdp("v=0|c=IN IP4 10.0.0.1|m=audio 4000 RTP/AVP 0|a=sendonly"),
            Media::Hold
        );
        assert_eq!(sdp("v=0|a=inactive|m=audio 4000 RTP/AVP 0"), Media::Hold);
        assert_eq!(
            sdp("v=0|a=sendonly|m=audio 4000 RTP/AVP 0|a=sendrecv"),
            Media::Talk
        );
        assert_eq!(sdp("v=0|m=audio 4000 RTP/AVP 0|a=recvonly"), Media::Talk);
        assert_eq!(sdp("v=0|m=audio 4000 RTP/AVP 0"), Media::Talk);
        assert_eq!(
            sdp("v=0|c=IN IP4 0.0.0.0|m=audio 4000 RTP/AVP 0"),
            Media::Hold
        );
        // A second media section does not decide.
        assert_eq!(
            sdp("v=0|m=audio 4000 RTP/AVP 0|a=sendrecv|m=video 4002 RTP/AVP 96|a=inactive"),
            Media::Talk
        );
    }
}

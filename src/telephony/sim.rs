//! The built-in simulated telephony: lets a developer place, answer, hold, transfer and end calls
//! with no phone at all. Every change is a report through [`CallSink`], exactly like an ingested
//! one. Simulated calls have external ids starting with `sim-`; calls reported by an outside
//! telephony source cannot be controlled here. Timers (the far end answering, ringing giving up)
//! live in memory: after a restart, a simulated call stays in its state until ended.

use super::CallSink;
use crate::domain::call::{Applied, Call, CallState, Direction};
use crate::domain::identity::Owner;
use crate::domain::report::CallReport;
use crate::store::{ApplyError, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::AbortHandle;

/// External ids of simulated calls start with this.
pub const SIM_PREFIX: &str = "sim-";

/// How the simulated far ends behave.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// The far end of an outbound call answers after this long.
    pub answer_after: Duration,
    /// A call still ringing after this long ends: MISSED (inbound) or CANCELLED (outbound).
    pub ring_timeout: Duration,
    /// Numbers that never answer.
    pub never_answer: Vec<String>,
}

/// Why a call-control request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no call {0}")]
    NotFound(String),
    /// Not possible for this call in its current state.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The simulated telephony. Share it with `Arc`.
pub struct SimTelephony {
    sink: CallSink,
    store: Arc<dyn Store>,
    settings: SimSettings,
    timers: Mutex<HashMap<String, AbortHandle>>,
    /// Transferred calls: the new call's id → the detached call that ends with it.
    transfers: Mutex<HashMap<String, Call>>,
}

fn owner_of(call: &Call) -> Owner {
    Owner {
        account_id: call.account_id.clone(),
        user_id: call.user_id.clone(),
    }
}

/// A report moving `call` to `state`, now.
fn moving(call: &Call, state: CallState) -> CallReport {
    CallReport {
        external_id: call.external_id.clone(),
        account_id: call.account_id.clone(),
        user_id: call.user_id.clone(),
        direction: call.direction,
        phone_number: call.phone_number.clone(),
        caller_id: call.caller_id.clone(),
        state,
        internal: call.internal,
        ucp_type: call.ucp_type.clone(),
        at: None,
    }
}

fn new_call(
    owner: &Owner,
    direction: Direction,
    number: &str,
    caller_id: Option<String>,
    internal: bool,
) -> CallReport {
    CallReport {
        external_id: format!("{SIM_PREFIX}{}", uuid::Uuid::new_v4()),
        account_id: owner.account_id.clone(),
        user_id: owner.user_id.clone(),
        direction,
        phone_number: number.to_string(),
        caller_id,
        state: CallState::Ringing,
        internal,
        ucp_type: "VBS".into(),
        at: None,
    }
}

impl SimTelephony {
    pub fn new(sink: CallSink, store: Arc<dyn Store>, settings: SimSettings) -> Arc<SimTelephony> {
        Arc::new(SimTelephony {
            sink,
            store,
            settings,
            timers: Mutex::new(HashMap::new()),
            transfers: Mutex::new(HashMap::new()),
        })
    }

    /// `POST /self/calls`: an outbound call from `owner` to `number`, INITIALIZING then RINGING;
    /// the far end answers after the configured delay unless it never answers.
    pub async fn place(self: &Arc<Self>, owner: &Owner, number: &str) -> Result<Call, SimError> {
        let internal = self
            .store
            .user_by_number(&owner.account_id, number)
            .await?
            .is_some();
        let mut report = new_call(owner, Direction::Outbound, number, None, internal);
        report.state = CallState::Initializing;
        self.apply(&report).await?;
        report.state = CallState::Ringing;
        let call = self.apply(&report).await?;
        if !self.settings.never_answer.iter().any(|n| n == number) {
            self.schedule(&call, self.settings.answer_after, CallState::Active);
        } else {
            self.schedule(&call, self.settings.ring_timeout, CallState::Cancelled);
        }
        Ok(call)
    }

    /// An inbound call ringing `owner`, from `from`; it is missed if not answered in time.
    pub async fn ring(
        self: &Arc<Self>,
        owner: &Owner,
        from: &str,
        caller_id: Option<String>,
    ) -> Result<Call, SimError> {
        let internal = self
            .store
            .user_by_number(&owner.account_id, from)
            .await?
            .is_some();
        let call = self
            .apply(&new_call(
                owner,
                Direction::Inbound,
                from,
                caller_id,
                internal,
            ))
            .await?;
        self.schedule(&call, self.settings.ring_timeout, CallState::Missed);
        Ok(call)
    }

    /// `PUT .../answer`: answers an inbound ringing call.
    pub async fn answer(self: &Arc<Self>, owner: &Owner, id: &str) -> Result<Call, SimError> {
        let call = self.controllable(owner, id).await?;
        if call.direction != Direction::Inbound || call.state != CallState::Ringing {
            return Err(refused(
                &call,
                "only a ringing inbound call can be answered",
            ));
        }
        self.change(&call, CallState::Active).await
    }

    /// `DELETE /self/calls/{id}`: hangs up: ANSWERED if the call was answered, CANCELLED for an
    /// outbound call still ringing, REJECTED for an inbound one.
    pub async fn end(self: &Arc<Self>, owner: &Owner, id: &str) -> Result<Call, SimError> {
        let call = self.controllable(owner, id).await?;
        let state = match (call.state, call.direction) {
            (s, _) if s.is_final() => return Err(refused(&call, "the call has already ended")),
            (CallState::Initializing | CallState::Ringing, Direction::Outbound) => {
                CallState::Cancelled
            }
            (CallState::Initializing, Direction::Inbound) => CallState::Answered,
            (CallState::Ringing, Direction::Inbound) => CallState::Rejected,
            _ => CallState::Answered,
        };
        self.change(&call, state).await
    }

    /// `PUT .../hold`.
    pub async fn hold(self: &Arc<Self>, owner: &Owner, id: &str) -> Result<Call, SimError> {
        let call = self.controllable(owner, id).await?;
        if call.state != CallState::Active {
            return Err(refused(&call, "only an active call can be put on hold"));
        }
        self.change(&call, CallState::Held).await
    }

    /// `DELETE .../hold`.
    pub async fn unhold(self: &Arc<Self>, owner: &Owner, id: &str) -> Result<Call, SimError> {
        let call = self.controllable(owner, id).await?;
        if !matches!(call.state, CallState::Held | CallState::RemoteHeld) {
            return Err(refused(&call, "the call is not on hold"));
        }
        self.change(&call, CallState::Active).await
    }

    /// `PUT .../vmtransfer`: sends a ringing inbound call to voicemail (REJECTED for this user).
    pub async fn voicemail(self: &Arc<Self>, owner: &Owner, id: &str) -> Result<Call, SimError> {
        let call = self.controllable(owner, id).await?;
        if call.direction != Direction::Inbound || call.state != CallState::Ringing {
            return Err(refused(
                &call,
                "only a ringing inbound call can go to voicemail",
            ));
        }
        self.change(&call, CallState::Rejected).await
    }

    /// `POST .../transfer`: the call becomes DETACHED for this user; when `number` is the contact
    /// number of a user of the same account, a new inbound call rings that user, and the detached
    /// call ends when the new one does. Otherwise the detached call ends at once.
    pub async fn transfer(
        self: &Arc<Self>,
        owner: &Owner,
        id: &str,
        number: &str,
    ) -> Result<Call, SimError> {
        let call = self.controllable(owner, id).await?;
        if call.state != CallState::Active {
            return Err(refused(&call, "only an active call can be transferred"));
        }
        let detached = self.change(&call, CallState::Detached).await?;
        match self.store.user_by_number(&owner.account_id, number).await? {
            Some(target) => {
                let new = self
                    .ring(&target, &call.phone_number, call.caller_id.clone())
                    .await?;
                if let Ok(mut t) = self.transfers.lock() {
                    t.insert(new.id.clone(), detached.clone());
                }
            }
            None => {
                self.change(&detached, CallState::Answered).await?;
            }
        }
        Ok(detached)
    }

    /// The caller's call `id`, if it is a simulated one.
    async fn controllable(&self, owner: &Owner, id: &str) -> Result<Call, SimError> {
        let call = self
            .store
            .get_call(owner, id)
            .await?
            .ok_or_else(|| SimError::NotFound(id.to_string()))?;
        if !call.external_id.starts_with(SIM_PREFIX) {
            return Err(refused(
                &call,
                "the call is reported by an outside telephony source; call control works on simulated calls",
            ));
        }
        Ok(call)
    }

    async fn apply(&self, report: &CallReport) -> Result<Call, SimError> {
        match self.sink.report(report).await?.applied {
            Applied::Changed(call) | Applied::Repeated(call) => Ok(call),
        }
    }

    /// Moves `call` to `state` on the user's behalf: cancels its timer, applies the change, and
    /// ends the detached call of a transfer when its new call ends.
    fn change<'a>(
        self: &'a Arc<Self>,
        call: &'a Call,
        state: CallState,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Call, SimError>> + Send + 'a>>
    {
        Box::pin(async move {
            self.cancel_timer(&call.id);
            let next = self.apply(&moving(call, state)).await?;
            if next.state.is_final() {
                let detached = self
                    .transfers
                    .lock()
                    .ok()
                    .and_then(|mut t| t.remove(&next.id));
                if let Some(detached) = detached
                    && let Err(e) = self.change(&detached, CallState::Answered).await
                {
                    tracing::warn!(call = %detached.id, error = %e, "ending a detached call failed");
                }
            }
            Ok(next)
        })
    }

    fn cancel_timer(&self, call_id: &str) {
        if let Some(timer) = self.timers.lock().ok().and_then(|mut t| t.remove(call_id)) {
            timer.abort();
        }
    }

    /// After `after`, moves the call to `state` if it has not changed meanwhile.
    fn schedule(self: &Arc<Self>, call: &Call, after: Duration, state: CallState) {
        let sim = self.clone();
        let expected = call.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Ok(mut t) = sim.timers.lock() {
                t.remove(&expected.id);
            }
            let current = sim.store.get_call(&owner_of(&expected), &expected.id).await;
            if let Ok(Some(now)) = current
                && now.state == expected.state
                && let Err(e) = sim.change(&now, state).await
            {
                tracing::warn!(call = %expected.id, error = %e, "a simulated transition failed");
            }
        });
        if let Ok(mut t) = self.timers.lock()
            && let Some(old) = t.insert(call.id.clone(), task.abort_handle())
        {
            old.abort();
        }
    }
}

fn refused(call: &Call, why: &str) -> SimError {
    SimError::Refused(format!(
        "call {} is {}: {why}",
        call.id,
        call.state.as_str()
    ))
}

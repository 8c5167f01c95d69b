//! Approval policy, in one place: which tier needs how many approvers, who they may be, and how
//! long a grant may last.
//!
//! - `low`: approved at once by policy (recorded and audited as such);
//! - `medium`: the resource owner or an admin;
//! - `high` (and `unclassified`, which has no owner after an upgrade): the resource owner, or
//!   admins when the resource has no owner who may decide; at most 90 days;
//! - `critical`: two distinct approvers, the resource owner and an admin (two distinct admins
//!   when the resource owner may not decide); at most 30 days.
//!
//! Nobody approves their own request, nor one for an agent they own (separation of duties). A
//! resource may override the number of approvers (`approvers`, 1–3) and the longest grant
//! (`max_duration`).
//!
//! A per-use approval (`use`) needs one yes, never from the agent's owner: the subject or the
//! resource owner when either is not the agent's owner, else an admin.

use crate::model::approvals::RequestKind;
use crate::model::catalogue::{ScopeInfo, Tier};
use crate::registry::store::{StoreError, StoreResult};

pub const DAY: i64 = 86_400;
/// An access request nobody decides expires after this long.
pub const REQUEST_TTL_SECS: i64 = 14 * DAY;
/// A per-use approval must be decided, and once approved used, within this long.
pub const USE_APPROVAL_TTL_SECS: i64 = 600;
/// Most undecided per-use approvals one agent may have waiting.
pub const MAX_PENDING_USE_PER_AGENT: i64 = 20;
/// What a grant that came in unclassified by an upgrade keeps, at most.
pub const UPGRADE_GRACE_SECS: i64 = 90 * DAY;

/// What a tier (with the resource's overrides) asks of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantPolicy {
    pub tier: Tier,
    /// Approved at once, by policy.
    pub automatic: bool,
    /// Distinct approvals that complete the request.
    pub approvers: u32,
    /// The longest grant, in seconds.
    pub max_secs: i64,
}

pub fn tier_max_secs(tier: Tier) -> i64 {
    match tier {
        Tier::Low | Tier::Medium => 365 * DAY,
        Tier::High | Tier::Unclassified => 90 * DAY,
        Tier::Critical => 30 * DAY,
    }
}

pub fn grant_policy(info: &ScopeInfo) -> GrantPolicy {
    let default_approvers = match info.tier {
        Tier::Low => 0,
        Tier::Medium | Tier::High | Tier::Unclassified => 1,
        Tier::Critical => 2,
    };
    let tier_max = tier_max_secs(info.tier);
    GrantPolicy {
        tier: info.tier,
        automatic: info.tier == Tier::Low && info.approvers.is_none_or(|n| n == 0),
        approvers: if info.tier == Tier::Low {
            info.approvers.unwrap_or(0)
        } else {
            info.approvers.unwrap_or(default_approvers).max(1)
        },
        // An override may shorten a tier's maximum, never lengthen it.
        max_secs: info.max_duration_secs.map_or(tier_max, |m| m.min(tier_max)),
    }
}

/// The grant's length in seconds: what was asked (checked against the maximum) or the maximum.
pub fn grant_duration(policy: &GrantPolicy, scope: &str, asked: Option<i64>) -> StoreResult<i64> {
    match asked {
        None => Ok(policy.max_secs),
        Some(secs) if secs <= policy.max_secs => Ok(secs),
        Some(secs) => Err(StoreError::Invalid {
            code: "duration_too_long",
            message: format!(
                "{scope} is {} tier: a grant lasts at most {}, not {}",
                policy.tier.as_str(),
                crate::model::catalogue::format_duration(policy.max_secs),
                crate::model::catalogue::format_duration(secs)
            ),
        }),
    }
}

/// A person as an approval decision sees them.
#[derive(Debug, Clone)]
pub struct Voter {
    pub email: String,
    pub admin: bool,
}

/// Everything a decision on one request depends on, read in the deciding transaction.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub kind: RequestKind,
    pub tier: Tier,
    pub approvers_required: u32,
    /// The requester's email (grant) or agent id (use).
    pub requester: String,
    pub agent_owner: Option<String>,
    /// The resource owner, when they are an active person.
    pub resource_owner: Option<String>,
    /// Per-use: the person the agent acts for.
    pub subject: Option<String>,
    /// Approvals so far, with each voter's current admin role.
    pub votes: Vec<Voter>,
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn is(who: &Option<String>, email: &str) -> bool {
    who.as_deref().is_some_and(|w| same(w, email))
}

fn refused(status: u16, code: &'static str, message: String) -> StoreError {
    StoreError::Refused {
        status,
        code,
        message,
    }
}

impl RequestFacts {
    /// The resource owner, when they may decide this request (not the requester, not the
    /// agent's owner).
    fn owner_may_decide(&self) -> Option<&str> {
        self.resource_owner
            .as_deref()
            .filter(|o| !same(o, &self.requester) && !is(&self.agent_owner, o))
    }

    /// Per-use: the people who may decide before admins do (subject, resource owner), minus
    /// the agent's owner.
    fn use_deciders(&self) -> Vec<&str> {
        [self.subject.as_deref(), self.resource_owner.as_deref()]
            .into_iter()
            .flatten()
            .filter(|p| !is(&self.agent_owner, p))
            .collect()
    }

    /// Refuses the people who may never decide this request, whatever their roles.
    fn separation_of_duties(&self, who: &Voter) -> StoreResult<()> {
        if same(&who.email, &self.requester) {
            return Err(refused(
                403,
                "self_approval",
                format!(
                    "{} asked for this; nobody decides their own request",
                    who.email
                ),
            ));
        }
        if is(&self.agent_owner, &who.email) {
            return Err(refused(
                403,
                "self_approval",
                format!(
                    "{} owns the agent; nobody decides a request for an agent they own",
                    who.email
                ),
            ));
        }
        Ok(())
    }

    /// Whether `who` is among the people this request waits for (ignoring the order rule of
    /// multi-approver requests): the approvals queue lists exactly these.
    pub fn may_decide(&self, who: &Voter) -> bool {
        self.separation_of_duties(who).is_ok() && self.eligible(who)
    }

    fn eligible(&self, who: &Voter) -> bool {
        match self.kind {
            RequestKind::Use => {
                let first = self.use_deciders();
                if first.is_empty() {
                    who.admin
                } else {
                    first.iter().any(|p| same(p, &who.email))
                }
            }
            RequestKind::Grant => {
                let owner = self.owner_may_decide();
                let is_owner = owner.is_some_and(|o| same(o, &who.email));
                let single_owner_tier =
                    matches!(self.tier, Tier::High | Tier::Unclassified | Tier::Critical);
                if self.approvers_required <= 1 && single_owner_tier && owner.is_some() {
                    is_owner
                } else {
                    is_owner || who.admin
                }
            }
        }
    }

    /// Checks a yes from `who`; returns whether it completes the request.
    pub fn approve(&self, who: &Voter) -> StoreResult<bool> {
        self.separation_of_duties(who)?;
        if self.votes.iter().any(|v| same(&v.email, &who.email)) {
            return Err(refused(
                409,
                "already_decided",
                format!(
                    "{} has already approved this; it needs a different approver",
                    who.email
                ),
            ));
        }
        if !self.eligible(who) {
            return Err(refused(
                403,
                "not_an_approver",
                format!(
                    "{} may not decide this request: {}",
                    who.email,
                    self.who_decides()
                ),
            ));
        }
        let after = self.votes.len() as u32 + 1;
        if self.kind == RequestKind::Grant
            && let Some(owner) = self.owner_may_decide()
            && self.approvers_required >= 2
            && after >= self.approvers_required
            && !same(owner, &who.email)
            && !self.votes.iter().any(|v| same(&v.email, owner))
        {
            return Err(refused(
                403,
                "not_an_approver",
                format!(
                    "the resource owner {owner} must be one of the {} approvers",
                    self.approvers_required
                ),
            ));
        }
        Ok(after >= self.approvers_required.max(1))
    }

    /// Checks a no from `who` (one eligible no denies).
    pub fn deny(&self, who: &Voter) -> StoreResult<()> {
        self.separation_of_duties(who)?;
        if !self.eligible(who) {
            return Err(refused(
                403,
                "not_an_approver",
                format!(
                    "{} may not decide this request: {}",
                    who.email,
                    self.who_decides()
                ),
            ));
        }
        Ok(())
    }

    /// Says who decides, for refusals.
    pub fn who_decides(&self) -> String {
        match self.kind {
            RequestKind::Use => {
                let first = self.use_deciders();
                if first.is_empty() {
                    "an admin who does not own the agent decides".into()
                } else {
                    format!("{} decides", first.join(" or "))
                }
            }
            RequestKind::Grant => {
                let owner = self.owner_may_decide();
                match (self.tier, owner, self.approvers_required) {
                    (Tier::Medium, Some(o), 1) => {
                        format!("{o} (resource owner) or an admin decides")
                    }
                    (_, Some(o), 1) => format!("{o} (resource owner) decides"),
                    (_, Some(o), n) => {
                        format!("{o} (resource owner) and admins decide ({n} approvals)")
                    }
                    (_, None, 1) => "an admin decides".into(),
                    (_, None, n) => format!("{n} distinct admins decide"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(email: &str, admin: bool) -> Voter {
        Voter {
            email: email.into(),
            admin,
        }
    }

    fn grant(tier: Tier, approvers: u32) -> RequestFacts {
        RequestFacts {
            kind: RequestKind::Grant,
            tier,
            approvers_required: approvers,
            requester: "req@x".into(),
            agent_owner: Some("req@x".into()),
            resource_owner: Some("res@x".into()),
            subject: None,
            votes: Vec::new(),
        }
    }

    #[test]
    fn medium_owner_or_admin() {
        let f = grant(Tier::Medium, 1);
        assert!(f.approve(&voter("res@x", false)).unwrap());
        assert!(f.approve(&voter("adm@x", true)).unwrap());
        assert!(f.approve(&voter("someone@x", false)).is_err());
    }

    #[test]
    fn high_only_owner_unless_none() {
        let f = grant(Tier::High, 1);
        assert!(f.approve(&voter("adm@x", true)).is_err());
        assert!(f.approve(&voter("res@x", false)).unwrap());
        let mut g = grant(Tier::Unclassified, 1);
        g.resource_owner = None;
        assert!(g.approve(&voter("adm@x", true)).unwrap());
    }

    #[test]
    fn critical_needs_owner_and_admin() {
        let mut f = grant(Tier::Critical, 2);
        assert!(!f.approve(&voter("adm@x", true)).unwrap());
        f.votes.push(voter("adm@x", true));
        // A second admin cannot complete it while the resource owner may decide.
        assert_eq!(
            f.approve(&voter("adm2@x", true)).unwrap_err().to_string(),
            "the resource owner res@x must be one of the 2 approvers"
        );
        assert!(f.approve(&voter("adm@x", true)).is_err());
        assert!(f.approve(&voter("res@x", false)).unwrap());
        // The resource owner asked: two distinct admins.
        let mut g = grant(Tier::Critical, 2);
        g.requester = "res@x".into();
        assert!(g.approve(&voter("res@x", true)).is_err());
        g.votes.push(voter("adm@x", true));
        assert!(g.approve(&voter("adm2@x", true)).unwrap());
    }

    #[test]
    fn use_never_by_the_agent_owner() {
        let f = RequestFacts {
            kind: RequestKind::Use,
            tier: Tier::Critical,
            approvers_required: 1,
            requester: "ag_1".into(),
            agent_owner: Some("own@x".into()),
            resource_owner: Some("own@x".into()),
            subject: Some("own@x".into()),
            votes: Vec::new(),
        };
        assert!(f.approve(&voter("own@x", true)).is_err());
        assert!(f.approve(&voter("adm@x", true)).unwrap());
        let g = RequestFacts {
            subject: Some("sub@x".into()),
            ..f
        };
        assert!(g.approve(&voter("adm@x", true)).is_err());
        assert!(g.approve(&voter("sub@x", false)).unwrap());
    }

    #[test]
    fn overrides_shorten_never_lengthen() {
        let mut info = ScopeInfo {
            scope: "a:b".into(),
            resource_id: "a".into(),
            audiences: vec![],
            tier: Tier::Critical,
            approval: Default::default(),
            resource_owner: None,
            approvers: None,
            max_duration_secs: Some(400 * DAY),
        };
        assert_eq!(grant_policy(&info).max_secs, 30 * DAY);
        info.max_duration_secs = Some(14 * DAY);
        assert_eq!(grant_policy(&info).max_secs, 14 * DAY);
        assert!(grant_duration(&grant_policy(&info), "a:b", Some(15 * DAY)).is_err());
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    pub requests_expired: u64,
    /// (agent id, scope) of each grant removed because its time was up.
    pub grants_removed: Vec<(String, String)>,
}

/// Grants removed per sweep at most (the rest wait for the next one).
const SWEEP_BATCH: u32 = 1000;

/// Expires undecided requests and removes grants whose time is up, each through the ordinary
/// grant-removal path (audited, and killing the live tokens that carry the scope). `now` is a
/// parameter so that tests drive it without waiting.
pub fn sweep(
    store: &dyn crate::registry::store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<SweepOutcome> {
    let actor = crate::model::Actor::system("steward-approvals");
    let mut outcome = SweepOutcome {
        requests_expired: store.expire_requests(now)?,
        ..Default::default()
    };
    for (agent_id, scope) in store.expired_grants(now, SWEEP_BATCH)? {
        match store.remove_grant(
            &actor,
            &agent_id,
            &scope,
            Some("the grant's time is up"),
            &|_| Ok(()),
        ) {
            Ok(_) => outcome.grants_removed.push((agent_id, scope)),
            // Removed meanwhile by someone else: nothing left to do.
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

/// Runs [`sweep`] every minute until `stop` turns true.
pub fn spawn_sweeper(
    store: std::sync::Arc<dyn crate::registry::store::Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let store2 = store.clone();
            match tokio::task::spawn_blocking(move || sweep(store2.as_ref(), store2.clock().now()))
                .await
            {
                Ok(Ok(o)) => {
                    if o.requests_expired > 0 || !o.grants_removed.is_empty() {
                        eprintln!(
                            "approvals: {} request(s) expired, {} expired grant(s) removed",
                            o.requests_expired,
                            o.grants_removed.len()
                        );
                    }
                }
                Ok(Err(e)) => eprintln!("approvals: sweep failed: {e}"),
                Err(e) => eprintln!("approvals: sweep failed: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
    })
}

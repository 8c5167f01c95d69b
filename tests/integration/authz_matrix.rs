//! The authorisation matrix: every route × every kind of caller, against a real registry.
//!
//! Each row names one operation on one route and the status each authenticated caller must get,
//! read from the policy (`src/registry/policy.rs`): admin everything; responder reads all and
//! revokes/reinstates; auditor reads all including audit and writes nothing; a person manages
//! the agents they own (read, request scopes and ungrant, revoke, decommission, register their own; only admins grant directly), while
//! reinstating takes admin or responder and changing an owner takes admin. A caller who may not
//! read an agent gets the same 404 as for a missing agent (422 `unknown_parent` for a parent). Callers who cannot
//! be authenticated (no token, unknown, expired, revoked, a person who has left) get 401 on
//! every `/v1/` route; `/healthz` and discovery under `/.well-known/` are public. The OAuth
//! endpoints follow their RFCs: introspection and revocation authenticate their caller (a
//! person's API token as bearer, or an agent) and refuse others with 401 `invalid_client`; the
//! token endpoint authenticates only the agent, so a person's bearer token never counts there.
//! Access reviews: admins administer campaigns, the reviewer (the agent's owner) decides their
//! items, admins and auditors read every item (`src/registry/reviews/mod.rs`).
//!
//! Every cell gets fresh fixtures (a new agent, person or token), so cells cannot interfere.
//! After a refused call the whole database is compared with its state before the call: nothing
//! may change, not even an audit event. After an allowed write, a new audit event by the caller
//! must exist (rows marked `unaudited` say why they write none). `every_route_has_a_row` ties the table to the OpenAPI document, which is built
//! from the router's own route list, so a new route without a row fails.

use crate::support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use steward::model::signals::POLL;
use support::{Member, Registry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    NoToken,
    UnknownToken,
    ExpiredToken,
    RevokedToken,
    PersonWhoLeft,
    /// An invitation issued for the owner: good only to redeem with `POST /v1/me/tokens`.
    Invitation,
    Admin,
    Responder,
    Auditor,
    /// The owner of the agent the cell acts on.
    Owner,
    /// A person with no role who does not own that agent.
    OtherOwner,
}

const CALLERS: [Who; 11] = [
    Who::NoToken,
    Who::UnknownToken,
    Who::ExpiredToken,
    Who::RevokedToken,
    Who::PersonWhoLeft,
    // Before the people: its fresh invitation is issued with the admin's token, which the last
    // row (revoking all of one's tokens) kills.
    Who::Invitation,
    Who::Admin,
    Who::Responder,
    Who::Auditor,
    Who::Owner,
    Who::OtherOwner,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    AgentActivity,
    AgentActivityHourly,
    ListFlags,
    ShowFlag,
    AcknowledgeFlag,
    ResolveFlag,
    Health,
    Me,
    IssueMyToken,
    RevokeMyToken,
    RevokeSomeoneElsesToken,
    ListPeople,
    CreatePerson,
    ShowPerson,
    UpdatePerson,
    IssueTokenForSomeoneElse,
    ListAgents,
    RegisterOwnAgent,
    RegisterAgentForSomeoneElse,
    RegisterUnownedAgent,
    RegisterDiscoveredAgent,
    RegisterSubAgentOfOwnersAgent,
    ShowAgent,
    ShowUnownedAgent,
    AgentAudit,
    AddGrant,
    RemoveGrant,
    SetOwner,
    Revoke,
    Reinstate,
    DecommissionPlan,
    Decommission,
    ListAudit,
    VerifyAudit,
    NoteOnOwnEvent,
    NoteOnOwnersEvent,
    Changes,
    // The token service (src/registry/http/oauth.rs).
    OAuthMetadata,
    Jwks,
    TokenExchangeWithoutAgentAssertion,
    IntrospectOwnersAccessToken,
    RevokeOwnersAccessToken,
    MintMyAccessToken,
    AddCredential,
    DisableCredential,
    AuditHead,
    Timeline,
    AgentTimeline,
    EnableCredential,
    AgentTokens,
    // Access reviews (src/registry/http/reviews.rs).
    CreateCampaign,
    ListCampaigns,
    ShowCampaign,
    CampaignItems,
    ExportCampaign,
    CloseCampaign,
    CertifyUnchanged,
    ReassignAgentsItems,
    AcceptRecommendations,
    MyReviews,
    MyReminders,
    SomeoneElsesReminders,
    ShowReviewItem,
    DecideReviewItem,
    ReassignReviewItem,
    ScopeDiff,
    // The catalogue and approvals (src/registry/http/catalogue.rs, approvals.rs).
    ListResources,
    ShowResource,
    ImportCatalogue,
    AddResourceCredential,
    DisableResourceCredential,
    RequestScope,
    AgentRequests,
    ListApprovals,
    ApproveRequest,
    DenyRequest,
    // Delegations and API-token lineage (src/registry/http/delegations.rs, api_tokens.rs).
    ListMyTokens,
    ListSomeonesTokens,
    CreateDelegation,
    ListDelegations,
    RevokeDelegation,
    RevokeSomeoneElsesDelegation,
    // Shared Signals (src/registry/http/ssf.rs): discovery, the receivers' stream management
    // under /ssf/, and the admins' view under /v1/streams and /v1/signals.
    SsfConfiguration,
    CreateStream,
    ReadStream,
    UpdateStream,
    ReplaceStream,
    DeleteStream,
    ReadStreamStatus,
    UpdateStreamStatus,
    AddStreamSubject,
    RemoveStreamSubject,
    VerifyStream,
    PollStream,
    ListStreams,
    ShowStream,
    PauseStream,
    ResumeStream,
    FanOut,
    RevokeAllMyTokens,
    // Ownership (src/registry/http/ownership.rs).
    OwnerCandidates,
    ClearOwner,
    Leave,
    MyHandovers,
    AcknowledgeHandovers,
}

struct Row {
    op: Op,
    method: &'static str,
    /// The route as the OpenAPI document spells it.
    route: &'static str,
    /// Expected status for admin, responder, auditor, owner, other owner.
    expect: [u16; 5],
    /// What a successful call does to the database.
    effect: Effect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Changes nothing.
    Read,
    /// Changes something and so must write an audit event by the caller.
    Write,
    /// Changes something without an audit event, by design (see the row's comment).
    UnauditedWrite,
}

const fn row(op: Op, method: &'static str, route: &'static str, expect: [u16; 5]) -> Row {
    Row {
        op,
        method,
        route,
        expect,
        effect: Effect::Read,
    }
}

const fn write(op: Op, method: &'static str, route: &'static str, expect: [u16; 5]) -> Row {
    Row {
        op,
        method,
        route,
        expect,
        effect: Effect::Write,
    }
}

const fn unaudited(op: Op, method: &'static str, route: &'static str, expect: [u16; 5]) -> Row {
    Row {
        op,
        method,
        route,
        expect,
        effect: Effect::UnauditedWrite,
    }
}

//                                                        admin resp audit owner other
const ROWS: &[Row] = &[
    row(Op::Health, "GET", "/healthz", [200, 200, 200, 200, 200]),
    row(Op::Me, "GET", "/v1/me", [200, 200, 200, 200, 200]),
    write(
        Op::IssueMyToken,
        "POST",
        "/v1/me/tokens",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::RevokeMyToken,
        "DELETE",
        "/v1/me/tokens/{id}",
        [204, 204, 204, 204, 204],
    ),
    row(
        Op::RevokeSomeoneElsesToken,
        "DELETE",
        "/v1/me/tokens/{id}",
        [404, 404, 404, 404, 404],
    ),
    row(
        Op::ListPeople,
        "GET",
        "/v1/people",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::CreatePerson,
        "POST",
        "/v1/people",
        [201, 403, 403, 403, 403],
    ),
    row(
        Op::ShowPerson,
        "GET",
        "/v1/people/{email}",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::UpdatePerson,
        "PATCH",
        "/v1/people/{email}",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::IssueTokenForSomeoneElse,
        "POST",
        "/v1/people/{email}/tokens",
        [201, 403, 403, 403, 403],
    ),
    row(
        Op::ListAgents,
        "GET",
        "/v1/agents",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::RegisterOwnAgent,
        "POST",
        "/v1/agents",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::RegisterAgentForSomeoneElse,
        "POST",
        "/v1/agents",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RegisterUnownedAgent,
        "POST",
        "/v1/agents",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RegisterDiscoveredAgent,
        "POST",
        "/v1/agents",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RegisterSubAgentOfOwnersAgent,
        "POST",
        "/v1/agents",
        [201, 403, 403, 201, 422],
    ),
    row(
        Op::ShowAgent,
        "GET",
        "/v1/agents/{id}",
        [200, 200, 200, 200, 404],
    ),
    row(
        Op::ShowUnownedAgent,
        "GET",
        "/v1/agents/{id}",
        [200, 200, 200, 404, 404],
    ),
    row(
        Op::AgentAudit,
        "GET",
        "/v1/agents/{id}/audit",
        [200, 200, 200, 200, 404],
    ),
    row(
        Op::AgentActivity,
        "GET",
        "/v1/agents/{id}/activity",
        [200, 200, 200, 200, 404],
    ),
    row(
        Op::AgentActivityHourly,
        "GET",
        "/v1/agents/{id}/activity/hourly",
        [200, 200, 200, 200, 404],
    ),
    // Flags: readers of the agent read its flags (others see an empty list, or 404 for one);
    // admins, responders and the owner acknowledge; admins and responders resolve (the owner
    // is the party under suspicion).
    row(Op::ListFlags, "GET", "/v1/flags", [200, 200, 200, 200, 200]),
    row(
        Op::ShowFlag,
        "GET",
        "/v1/flags/{id}",
        [200, 200, 200, 200, 404],
    ),
    write(
        Op::AcknowledgeFlag,
        "POST",
        "/v1/flags/{id}/acknowledge",
        [200, 200, 403, 200, 404],
    ),
    write(
        Op::ResolveFlag,
        "POST",
        "/v1/flags/{id}/resolve",
        [200, 200, 403, 403, 404],
    ),
    write(
        Op::AddGrant,
        "POST",
        "/v1/agents/{id}/grants",
        // Owners request scopes now; admins grant low and medium ones directly. The refusal
        // comes before the agent is looked up, so it tells nobody whether the agent exists.
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::RemoveGrant,
        "DELETE",
        "/v1/agents/{id}/grants/{scope}",
        [200, 403, 403, 200, 404],
    ),
    write(
        Op::SetOwner,
        "PUT",
        "/v1/agents/{id}/owner",
        [200, 403, 403, 403, 404],
    ),
    // Who uses an agent is for those who may change its owner (admins).
    row(
        Op::OwnerCandidates,
        "GET",
        "/v1/agents/{id}/owner-candidates",
        [200, 403, 403, 403, 404],
    ),
    write(
        Op::ClearOwner,
        "DELETE",
        "/v1/agents/{id}/owner",
        [200, 403, 403, 403, 404],
    ),
    write(
        Op::Leave,
        "POST",
        "/v1/people/{email}/leave",
        [200, 403, 403, 403, 403],
    ),
    // Everyone reads and acknowledges their own handovers only (none here: nothing changes).
    row(
        Op::MyHandovers,
        "GET",
        "/v1/me/handovers",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::AcknowledgeHandovers,
        "POST",
        "/v1/me/handovers/acknowledge",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::Revoke,
        "POST",
        "/v1/agents/{id}/revoke",
        [200, 200, 403, 200, 404],
    ),
    write(
        Op::Reinstate,
        "POST",
        "/v1/agents/{id}/reinstate",
        [200, 200, 403, 403, 404],
    ),
    row(
        Op::DecommissionPlan,
        "GET",
        "/v1/agents/{id}/decommission",
        [200, 403, 403, 200, 404],
    ),
    write(
        Op::Decommission,
        "POST",
        "/v1/agents/{id}/decommission",
        [200, 403, 403, 200, 404],
    ),
    row(Op::ListAudit, "GET", "/v1/audit", [200, 200, 200, 403, 403]),
    row(
        Op::AuditHead,
        "GET",
        "/v1/audit/head",
        [200, 200, 200, 403, 403],
    ),
    // Everything: audit readers only. One agent's: anyone who may read the agent; another
    // owner learns nothing about it (404).
    row(
        Op::Timeline,
        "GET",
        "/v1/audit/timeline",
        [200, 200, 200, 403, 403],
    ),
    row(
        Op::AgentTimeline,
        "GET",
        "/v1/audit/timeline",
        [200, 200, 200, 200, 404],
    ),
    row(
        Op::VerifyAudit,
        "GET",
        "/v1/audit/verify",
        [200, 200, 200, 403, 403],
    ),
    write(
        Op::NoteOnOwnEvent,
        "POST",
        "/v1/audit/{seq}/notes",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::NoteOnOwnersEvent,
        "POST",
        "/v1/audit/{seq}/notes",
        [201, 201, 403, 201, 403],
    ),
    row(Op::Changes, "GET", "/v1/changes", [200, 200, 200, 200, 200]),
    // The token service. Discovery and keys are public.
    row(
        Op::OAuthMetadata,
        "GET",
        "/.well-known/oauth-authorization-server",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::Jwks,
        "GET",
        "/.well-known/jwks.json",
        [200, 200, 200, 200, 200],
    ),
    // The token endpoint authenticates the agent (its signed assertion or secret), never a
    // person's bearer token: a request with a valid subject token but no agent assertion is
    // refused as RFC 6749 §5.2 `invalid_client` whoever sends it.
    row(
        Op::TokenExchangeWithoutAgentAssertion,
        "POST",
        "/oauth/token",
        [401, 401, 401, 401, 401],
    ),
    // Introspection: any authenticated person (their API token as bearer) or agent; only
    // admins, responders, the subject and agents in the chain get claims (tests/integration/introspection_access.rs).
    row(
        Op::IntrospectOwnersAccessToken,
        "POST",
        "/oauth/introspect",
        [200, 200, 200, 200, 200],
    ),
    // Revocation: the token's subject, an agent in its chain, the acting agent's owner, an
    // admin or a responder; anyone else gets the 200 an unknown token gets, and nothing
    // happens (see SILENT_REFUSALS).
    write(
        Op::RevokeOwnersAccessToken,
        "POST",
        "/oauth/revoke",
        [200, 200, 200, 200, 200],
    ),
    // Issued tokens go to the token table without an audit event, by design: exchanges are
    // high-volume and each token is already a record (subject, actor, scopes, expiry) that
    // `GET /v1/agents/{id}/tokens` and introspection show; revoking one is audited.
    unaudited(
        Op::MintMyAccessToken,
        "POST",
        "/v1/me/access-token",
        [201, 201, 201, 201, 201],
    ),
    write(
        Op::AddCredential,
        "POST",
        "/v1/agents/{id}/credentials",
        [201, 403, 403, 201, 404],
    ),
    // Disabling a key is a brake like revoking: responders may pull it too.
    write(
        Op::DisableCredential,
        "POST",
        "/v1/agents/{id}/credentials/{credential_id}/disable",
        [200, 200, 403, 200, 404],
    ),
    // Re-enabling undoes a brake: admins and responders only, never the owner alone.
    write(
        Op::EnableCredential,
        "POST",
        "/v1/agents/{id}/credentials/{credential_id}/enable",
        [200, 200, 403, 403, 403],
    ),
    row(
        Op::AgentTokens,
        "GET",
        "/v1/agents/{id}/tokens",
        [200, 200, 200, 200, 404],
    ),
    // Access reviews: admins administer campaigns; the reviewer (the agent's owner) decides
    // their items; admins and auditors read every item and the export.
    write(
        Op::CreateCampaign,
        "POST",
        "/v1/campaigns",
        [201, 403, 403, 403, 403],
    ),
    row(
        Op::ListCampaigns,
        "GET",
        "/v1/campaigns",
        [200, 200, 200, 200, 200],
    ),
    // Everyone sees a campaign; people without a role see only their own progress line.
    row(
        Op::ShowCampaign,
        "GET",
        "/v1/campaigns/{id}",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::CampaignItems,
        "GET",
        "/v1/campaigns/{id}/items",
        [200, 403, 200, 403, 403],
    ),
    row(
        Op::ExportCampaign,
        "GET",
        "/v1/campaigns/{id}/export",
        [200, 403, 200, 403, 403],
    ),
    write(
        Op::CloseCampaign,
        "POST",
        "/v1/campaigns/{id}/close",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::CertifyUnchanged,
        "POST",
        "/v1/campaigns/{id}/agents/{agent_id}/certify-unchanged",
        [200, 403, 403, 200, 403],
    ),
    write(
        Op::ReassignAgentsItems,
        "POST",
        "/v1/campaigns/{id}/agents/{agent_id}/reassign",
        [200, 403, 403, 403, 403],
    ),
    // Every reviewer's items (`mine: false`) takes the admin role; a caller's own items are
    // decided item by item (refusals per item, tested in tests/integration/reviews.rs).
    write(
        Op::AcceptRecommendations,
        "POST",
        "/v1/campaigns/{id}/items/accept-recommendations",
        [200, 403, 403, 403, 403],
    ),
    row(
        Op::MyReviews,
        "GET",
        "/v1/reviews/mine",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::MyReminders,
        "GET",
        "/v1/reviews/reminders",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::SomeoneElsesReminders,
        "GET",
        "/v1/reviews/reminders",
        [200, 403, 403, 403, 403],
    ),
    row(
        Op::ShowReviewItem,
        "GET",
        "/v1/review-items/{id}",
        [200, 403, 200, 200, 403],
    ),
    write(
        Op::DecideReviewItem,
        "POST",
        "/v1/review-items/{id}/decision",
        [200, 403, 403, 200, 403],
    ),
    write(
        Op::ReassignReviewItem,
        "POST",
        "/v1/review-items/{id}/reassign",
        [200, 403, 403, 403, 403],
    ),
    row(
        Op::ScopeDiff,
        "GET",
        "/v1/agents/{id}/scope-diff",
        [200, 200, 200, 200, 404],
    ),
    // The catalogue: everyone reads it (owners pick scopes to request), admins import it.
    row(
        Op::ListResources,
        "GET",
        "/v1/resources",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::ShowResource,
        "GET",
        "/v1/resources/{id}",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::ImportCatalogue,
        "PUT",
        "/v1/resources",
        [200, 403, 403, 403, 403],
    ),
    // Resource credentials read every token for the resource: admins only.
    write(
        Op::AddResourceCredential,
        "POST",
        "/v1/resources/{id}/credentials",
        [201, 403, 403, 403, 403],
    ),
    write(
        Op::DisableResourceCredential,
        "POST",
        "/v1/resources/{id}/credentials/{credential_id}/disable",
        [200, 403, 403, 403, 403],
    ),
    // Requests: whoever manages the agent (its owner, an admin) asks; whoever reads it sees them.
    write(
        Op::RequestScope,
        "POST",
        "/v1/agents/{id}/requests",
        [201, 403, 403, 201, 404],
    ),
    row(
        Op::AgentRequests,
        "GET",
        "/v1/agents/{id}/requests",
        [200, 200, 200, 200, 404],
    ),
    // Everyone has a queue (perhaps empty). A medium request the owner filed for their own
    // agent, on a resource without an owner, is decided by an admin: never by the requester
    // and agent owner (403 self_approval), nor by anyone else (403 not_an_approver).
    row(
        Op::ListApprovals,
        "GET",
        "/v1/approvals",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::ApproveRequest,
        "POST",
        "/v1/approvals/{id}/approve",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::DenyRequest,
        "POST",
        "/v1/approvals/{id}/deny",
        [200, 403, 403, 403, 403],
    ),
    // Delegations and API-token lineage: everyone manages their own; only admins list
    // another person's tokens; nobody withdraws another person's delegation (it is not found).
    row(
        Op::ListMyTokens,
        "GET",
        "/v1/me/tokens",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::ListSomeonesTokens,
        "GET",
        "/v1/people/{email}/tokens",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::CreateDelegation,
        "POST",
        "/v1/me/delegations",
        [201, 201, 201, 201, 201],
    ),
    row(
        Op::ListDelegations,
        "GET",
        "/v1/me/delegations",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::RevokeDelegation,
        "DELETE",
        "/v1/me/delegations/{id}",
        [200, 200, 200, 200, 200],
    ),
    row(
        Op::RevokeSomeoneElsesDelegation,
        "DELETE",
        "/v1/me/delegations/{id}",
        [404, 404, 404, 404, 404],
    ),
    // Shared Signals. Discovery is public. The receivers' routes under /ssf/ take a catalogued
    // resource's credentials or an admin's API token: a person without the admin role is
    // refused 403 (resource receivers are tested in tests/integration/signals.rs). Every cell's stream is
    // a fresh poll stream of the admin.
    row(
        Op::SsfConfiguration,
        "GET",
        "/.well-known/ssf-configuration",
        [200, 200, 200, 200, 200],
    ),
    write(
        Op::CreateStream,
        "POST",
        "/ssf/streams",
        [201, 403, 403, 403, 403],
    ),
    row(
        Op::ReadStream,
        "GET",
        "/ssf/streams",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::UpdateStream,
        "PATCH",
        "/ssf/streams",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::ReplaceStream,
        "PUT",
        "/ssf/streams",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::DeleteStream,
        "DELETE",
        "/ssf/streams",
        [204, 403, 403, 403, 403],
    ),
    row(
        Op::ReadStreamStatus,
        "GET",
        "/ssf/status",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::UpdateStreamStatus,
        "POST",
        "/ssf/status",
        [200, 403, 403, 403, 403],
    ),
    // A receiver's subject filter and its verification requests change only its own stream's
    // filter and queue: not audited, by design (like SSF's own high-volume subject calls).
    unaudited(
        Op::AddStreamSubject,
        "POST",
        "/ssf/subjects/add",
        [200, 403, 403, 403, 403],
    ),
    unaudited(
        Op::RemoveStreamSubject,
        "POST",
        "/ssf/subjects/remove",
        [204, 403, 403, 403, 403],
    ),
    unaudited(
        Op::VerifyStream,
        "POST",
        "/ssf/verify",
        [204, 403, 403, 403, 403],
    ),
    row(
        Op::PollStream,
        "POST",
        "/ssf/poll/{stream_id}",
        [200, 403, 403, 403, 403],
    ),
    row(
        Op::ListStreams,
        "GET",
        "/v1/streams",
        [200, 403, 403, 403, 403],
    ),
    row(
        Op::ShowStream,
        "GET",
        "/v1/streams/{id}",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::PauseStream,
        "POST",
        "/v1/streams/{id}/pause",
        [200, 403, 403, 403, 403],
    ),
    write(
        Op::ResumeStream,
        "POST",
        "/v1/streams/{id}/resume",
        [200, 403, 403, 403, 403],
    ),
    // One action's fan-out: admins, responders and auditors; anyone for their own action
    // (here the owner's revoke of their agent); others get the 404 of an unknown action.
    row(
        Op::FanOut,
        "GET",
        "/v1/signals/{audit_seq}",
        [200, 200, 200, 200, 404],
    ),
    // Must stay the last row: each cell revokes every token of its caller.
    write(
        Op::RevokeAllMyTokens,
        "DELETE",
        "/v1/me/tokens",
        [200, 200, 200, 200, 200],
    ),
];

/// Decisions refuse with the precise separation-of-duties code rather than `forbidden`.
const DECISIONS: &[Op] = &[Op::ApproveRequest, Op::DenyRequest];

/// The routes anyone may call without a token.
const PUBLIC: &[Op] = &[
    Op::Health,
    Op::OAuthMetadata,
    Op::Jwks,
    Op::SsfConfiguration,
];

/// The Shared Signals receivers' routes (`/ssf/`): they authenticate their caller themselves
/// (a resource or an admin's API token), and every caller who cannot be authenticated gets
/// 401 `unauthenticated`, whatever is wrong with the credential.
fn is_receiver_route(op: Op) -> bool {
    matches!(
        op,
        Op::CreateStream
            | Op::ReadStream
            | Op::UpdateStream
            | Op::ReplaceStream
            | Op::DeleteStream
            | Op::ReadStreamStatus
            | Op::UpdateStreamStatus
            | Op::AddStreamSubject
            | Op::RemoveStreamSubject
            | Op::VerifyStream
            | Op::PollStream
    )
}

/// OAuth endpoints that authenticate their caller themselves (RFC 7662 §2.1, RFC 7009 §2.1): a
/// person's API token as bearer, or an agent's assertion or secret. A caller who cannot be
/// authenticated gets 401 `invalid_client` (RFC 6749 §5.2), not the API's JSON error.
const OAUTH_CALLER: &[Op] = &[Op::IntrospectOwnersAccessToken, Op::RevokeOwnersAccessToken];

/// Cells answered like a token that does not exist: 200 and nothing changes, so that the
/// answer does not tell a caller without the right whether the token is live.
const SILENT_REFUSALS: &[(Op, Who)] = &[
    (Op::RevokeOwnersAccessToken, Who::Auditor),
    (Op::RevokeOwnersAccessToken, Who::OtherOwner),
];

/// The token endpoint authenticates only the agent; a person's bearer token plays no part, so
/// every caller gets the row's status.
const AGENT_AUTHENTICATED: &[Op] = &[Op::TokenExchangeWithoutAgentAssertion];

fn is_oauth(op: Op) -> bool {
    OAUTH_CALLER.contains(&op) || AGENT_AUTHENTICATED.contains(&op)
}

/// The registry plus the callers that cannot be authenticated and a bystander to point at.
struct Matrix {
    reg: Registry,
    /// A person with no role who is never a caller (a target for "someone else").
    bystander: Member,
    unknown_token: String,
    /// The admin's own tokens, made unusable: the refusal can only come from the token.
    expired_token: String,
    revoked_token: String,
    /// An admin who has left: refused only because they left.
    leaver: Member,
    counter: AtomicU32,
}

impl Matrix {
    async fn new() -> Matrix {
        // Every row is tried by five callers that fail to authenticate, all from 127.0.0.1:
        // the per-source failure budget must not turn the matrix's own setup calls into 429s.
        let reg = Registry::start_guarded(Some(steward::registry::http::guards::GuardSettings {
            source_failures_per_minute: 100_000,
            credential_failures_per_minute: 100_000,
            ..Default::default()
        }))
        .await;
        let bystander = reg.add_person("bystander@example.com", &[]).await;
        // A medium scope with no resource owner: requests for it wait for an admin.
        reg.call(
            "PUT",
            "/v1/resources",
            Some(&reg.admin.token),
            Some(
                &json!({"resources": [{"id": "matrix", "name": "Matrix", "owner": null,
                "scopes": [{"name": "matrix.things:write", "tier": "medium"}]}]}),
            ),
        )
        .await
        .expect(200);

        let expired = reg
            .post("/v1/me/tokens", &reg.admin, json!({"name": "to-expire"}))
            .await
            .expect(201)
            .clone();
        let changed = reg
            .sql()
            .execute(
                "UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?1",
                [expired["id"].as_str().unwrap()],
            )
            .unwrap();
        assert_eq!(changed, 1, "the expired token's row exists");

        let revoked = reg
            .post("/v1/me/tokens", &reg.admin, json!({"name": "to-revoke"}))
            .await
            .expect(201)
            .clone();
        reg.call(
            "DELETE",
            &format!("/v1/me/tokens/{}", revoked["id"].as_str().unwrap()),
            Some(&reg.admin.token),
            None,
        )
        .await
        .expect(204);

        let leaver = reg.add_person("leaver@example.com", &["admin"]).await;
        reg.call(
            "PATCH",
            "/v1/people/leaver@example.com",
            Some(&reg.admin.token),
            Some(&json!({"active": false})),
        )
        .await
        .expect(200);

        Matrix {
            reg,
            bystander,
            unknown_token: format!("stw_{}", "0".repeat(64)),
            expired_token: expired["token"].as_str().unwrap().to_string(),
            revoked_token: revoked["token"].as_str().unwrap().to_string(),
            leaver,
            counter: AtomicU32::new(0),
        }
    }

    /// The caller's token for one cell: invitations are single use, so each cell gets a new one.
    async fn cell_token(&self, who: Who) -> Option<String> {
        match who {
            Who::Invitation => Some(self.reg.invite(&self.reg.owner.email).await),
            other => self.token(other),
        }
    }

    fn token(&self, who: Who) -> Option<String> {
        let r = &self.reg;
        match who {
            Who::NoToken => None,
            Who::UnknownToken => Some(self.unknown_token.clone()),
            Who::ExpiredToken => Some(self.expired_token.clone()),
            Who::RevokedToken => Some(self.revoked_token.clone()),
            Who::PersonWhoLeft => Some(self.leaver.token.clone()),
            Who::Invitation => None,
            Who::Admin => Some(r.admin.token.clone()),
            Who::Responder => Some(r.responder.token.clone()),
            Who::Auditor => Some(r.auditor.token.clone()),
            Who::Owner => Some(r.owner.token.clone()),
            Who::OtherOwner => Some(r.other.token.clone()),
        }
    }

    /// The person a cell acts as. Callers who cannot sign in act as the owner would, so that
    /// only their credentials can explain a refusal.
    fn member(&self, who: Who) -> &Member {
        let r = &self.reg;
        match who {
            Who::Admin => &r.admin,
            Who::Responder => &r.responder,
            Who::Auditor => &r.auditor,
            Who::OtherOwner => &r.other,
            _ => &r.owner,
        }
    }

    fn fresh(&self, what: &str) -> String {
        format!("{what}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// A new agent owned by the standard owner (or unowned), registered by the admin.
    async fn owners_agent(&self, scopes: &[&str]) -> String {
        let name = self.fresh("matrix-agent");
        self.reg
            .register(&name, Some(&self.reg.owner.email), scopes)
            .await
    }

    /// Deletes the admin's streams (a receiver holds at most 20), before a cell makes one.
    async fn clear_admins_streams(&self) {
        let r = &self.reg;
        let listed = r
            .call("GET", "/ssf/streams", Some(&r.admin.token), None)
            .await;
        for stream in listed.expect(200).as_array().unwrap().clone() {
            let id = stream["stream_id"].as_str().unwrap();
            r.call(
                "DELETE",
                &format!("/ssf/streams?stream_id={id}"),
                Some(&r.admin.token),
                None,
            )
            .await
            .expect(204);
        }
    }

    /// A new poll stream of the admin (receivers manage only their own streams).
    async fn admins_stream(&self) -> String {
        self.clear_admins_streams().await;
        let created = self
            .reg
            .post(
                "/ssf/streams",
                &self.reg.admin,
                json!({"delivery": {"method": POLL}, "description": self.fresh("matrix-stream")}),
            )
            .await;
        created.expect(201)["stream_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sets up what the cell needs and returns the concrete path and body.
    async fn prepare(&self, op: Op, who: Who) -> (String, Option<Value>) {
        let r = &self.reg;
        let me = self.member(who).email.clone();
        match op {
            Op::Health => ("/healthz".into(), None),
            Op::Me => ("/v1/me".into(), None),
            Op::IssueMyToken => ("/v1/me/tokens".into(), Some(json!({"name": "matrix"}))),
            Op::RevokeMyToken | Op::RevokeSomeoneElsesToken => {
                let holder = if op == Op::RevokeMyToken {
                    me
                } else {
                    self.bystander.email.clone()
                };
                let issued = r
                    .post(&format!("/v1/people/{holder}/tokens"), &r.admin, json!({}))
                    .await;
                let id = issued.expect(201)["id"].as_str().unwrap().to_string();
                (format!("/v1/me/tokens/{id}"), None)
            }
            Op::ListPeople => ("/v1/people".into(), None),
            Op::CreatePerson => {
                let email = format!("{}@example.com", self.fresh("new-person"));
                (
                    "/v1/people".into(),
                    Some(json!({"email": email, "display_name": "New Person"})),
                )
            }
            Op::ShowPerson => (format!("/v1/people/{}", self.bystander.email), None),
            Op::UpdatePerson => {
                let email = format!("{}@example.com", self.fresh("to-update"));
                r.post(
                    "/v1/people",
                    &r.admin,
                    json!({"email": email, "display_name": "To Update"}),
                )
                .await
                .expect(201);
                (
                    format!("/v1/people/{email}"),
                    Some(json!({"team": "moved", "roles": ["admin"]})),
                )
            }
            Op::IssueTokenForSomeoneElse => (
                format!("/v1/people/{}/tokens", self.bystander.email),
                Some(json!({"name": "matrix"})),
            ),
            Op::ListAgents => ("/v1/agents".into(), None),
            Op::RegisterOwnAgent => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("own"), "owner": me})),
            ),
            Op::RegisterAgentForSomeoneElse => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("for-else"), "owner": self.bystander.email})),
            ),
            Op::RegisterUnownedAgent => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("unowned")})),
            ),
            Op::RegisterDiscoveredAgent => (
                "/v1/agents".into(),
                Some(json!({"name": self.fresh("found"), "owner": me, "source": "discovered"})),
            ),
            Op::RegisterSubAgentOfOwnersAgent => {
                let parent = self.owners_agent(&[]).await;
                (
                    "/v1/agents".into(),
                    Some(json!({"name": self.fresh("child"), "kind": "sub-agent",
                                "parent_id": parent, "owner": me})),
                )
            }
            Op::ShowAgent => (format!("/v1/agents/{}", self.owners_agent(&[]).await), None),
            Op::ShowUnownedAgent => {
                let id = r.register(&self.fresh("nobodys"), None, &[]).await;
                (format!("/v1/agents/{id}"), None)
            }
            Op::AgentAudit => (
                format!("/v1/agents/{}/audit", self.owners_agent(&[]).await),
                None,
            ),
            Op::AgentActivity => (
                format!("/v1/agents/{}/activity", self.owners_agent(&[]).await),
                None,
            ),
            Op::AgentActivityHourly => (
                format!(
                    "/v1/agents/{}/activity/hourly",
                    self.owners_agent(&[]).await
                ),
                None,
            ),
            Op::ListFlags => ("/v1/flags".into(), None),
            Op::ShowFlag | Op::AcknowledgeFlag | Op::ResolveFlag => {
                // A flag as the behaviour engine opens one (the detectors are tested in
                // tests/integration/behaviour.rs; here only who may do what).
                let agent = self.owners_agent(&[]).await;
                let now = chrono::Utc::now();
                let flag = steward::registry::store::FlagStore::open_flag(
                    r.store.as_ref(),
                    &steward::registry::store::flags::NewFlag {
                        agent_id: agent,
                        kind: steward::model::flag::FlagKind::NewAudience,
                        severity: steward::model::flag::Severity::Medium,
                        key: self.fresh("aud"),
                        summary: "new audience".into(),
                        evidence: steward::model::flag::Evidence {
                            observed: "token for audience https://x.example.com".into(),
                            baseline: "1 audience used in the window".into(),
                            window_from: now,
                            window_to: now,
                            events: vec![],
                        },
                        refused_only: false,
                        at: now,
                    },
                )
                .unwrap()
                .unwrap();
                match op {
                    Op::ShowFlag => (format!("/v1/flags/{}", flag.id), None),
                    Op::AcknowledgeFlag => (
                        format!("/v1/flags/{}/acknowledge", flag.id),
                        Some(json!({"reason": "looking"})),
                    ),
                    _ => (
                        format!("/v1/flags/{}/resolve", flag.id),
                        Some(json!({"reason": "explained"})),
                    ),
                }
            }
            Op::AddGrant => (
                format!("/v1/agents/{}/grants", self.owners_agent(&[]).await),
                Some(json!({"scope": "jira.issues:write", "justification": "matrix"})),
            ),
            Op::RemoveGrant => (
                format!(
                    "/v1/agents/{}/grants/crm.orders:read",
                    self.owners_agent(&["crm.orders:read"]).await
                ),
                None,
            ),
            Op::SetOwner => (
                format!("/v1/agents/{}/owner", self.owners_agent(&[]).await),
                Some(json!({"owner": self.bystander.email, "reason": "matrix"})),
            ),
            Op::OwnerCandidates => (
                format!(
                    "/v1/agents/{}/owner-candidates",
                    self.owners_agent(&[]).await
                ),
                None,
            ),
            Op::ClearOwner => (
                format!("/v1/agents/{}/owner", self.owners_agent(&[]).await),
                None,
            ),
            Op::Leave => {
                let email = format!("{}@example.com", self.fresh("leaver"));
                r.post(
                    "/v1/people",
                    &r.admin,
                    json!({"email": email, "display_name": "Leaver"}),
                )
                .await
                .expect(201);
                (format!("/v1/people/{email}/leave"), None)
            }
            Op::MyHandovers => ("/v1/me/handovers".into(), None),
            Op::AcknowledgeHandovers => ("/v1/me/handovers/acknowledge".into(), None),
            Op::Revoke => (
                format!("/v1/agents/{}/revoke", self.owners_agent(&[]).await),
                Some(json!({"reason": "matrix"})),
            ),
            Op::Reinstate => {
                let id = self.owners_agent(&[]).await;
                r.post(&format!("/v1/agents/{id}/revoke"), &r.admin, json!({}))
                    .await
                    .expect(200);
                (
                    format!("/v1/agents/{id}/reinstate"),
                    Some(json!({"reason": "matrix"})),
                )
            }
            Op::DecommissionPlan => (
                format!("/v1/agents/{}/decommission", self.owners_agent(&[]).await),
                None,
            ),
            Op::Decommission => (
                format!(
                    "/v1/agents/{}/decommission",
                    self.owners_agent(&["crm.orders:read"]).await
                ),
                Some(json!({"reason": "matrix"})),
            ),
            Op::ListAudit => ("/v1/audit".into(), None),
            Op::AuditHead => ("/v1/audit/head".into(), None),
            Op::Timeline => ("/v1/audit/timeline?include_exchanges=true".into(), None),
            Op::AgentTimeline => (
                format!(
                    "/v1/audit/timeline?include_exchanges=true&agent={}",
                    self.owners_agent(&[]).await
                ),
                None,
            ),
            Op::VerifyAudit => ("/v1/audit/verify".into(), None),
            Op::NoteOnOwnEvent => {
                // The acting person writes an event of their own: issuing themselves a token.
                let acting = self.member(who);
                r.post("/v1/me/tokens", acting, json!({})).await.expect(201);
                let seq = self.last_event()["seq"].as_i64().unwrap();
                assert_eq!(self.last_event()["actor"]["id"], json!(acting.email));
                (
                    format!("/v1/audit/{seq}/notes"),
                    Some(json!({"text": "INC-1"})),
                )
            }
            Op::NoteOnOwnersEvent => {
                let id = self.owners_agent(&[]).await;
                let revoked = r
                    .post(&format!("/v1/agents/{id}/revoke"), &r.owner, json!({}))
                    .await;
                let seq = revoked.expect(200)["audit_seq"].as_i64().unwrap();
                (
                    format!("/v1/audit/{seq}/notes"),
                    Some(json!({"text": "INC-2"})),
                )
            }
            Op::Changes => ("/v1/changes".into(), None),
            Op::OAuthMetadata => ("/.well-known/oauth-authorization-server".into(), None),
            Op::Jwks => ("/.well-known/jwks.json".into(), None),
            Op::TokenExchangeWithoutAgentAssertion => {
                // A valid subject token for the owner's agent, so that only the missing agent
                // authentication can explain the refusal.
                let agent = self.owners_agent(&["crm.orders:read"]).await;
                let subject = self.owners_access_token(Some(&agent)).await;
                (
                    "/oauth/token".into(),
                    Some(json!({
                        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                        "subject_token": subject,
                        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "scope": "crm.orders:read",
                        "audience": "crm",
                    })),
                )
            }
            Op::IntrospectOwnersAccessToken | Op::RevokeOwnersAccessToken => {
                let token = self.owners_access_token(None).await;
                let path = if op == Op::RevokeOwnersAccessToken {
                    "/oauth/revoke"
                } else {
                    "/oauth/introspect"
                };
                (path.into(), Some(json!({"token": token})))
            }
            Op::MintMyAccessToken => (
                "/v1/me/access-token".into(),
                Some(json!({"ttl_seconds": 300})),
            ),
            Op::AddCredential => (
                format!("/v1/agents/{}/credentials", self.owners_agent(&[]).await),
                Some(json!({"kind": "static-secret", "label": "matrix"})),
            ),
            Op::DisableCredential => {
                let id = self.owners_agent(&[]).await;
                let added = r
                    .post(
                        &format!("/v1/agents/{id}/credentials"),
                        &r.admin,
                        json!({"kind": "static-secret"}),
                    )
                    .await;
                let credential = added.expect(201)["credential"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (
                    format!("/v1/agents/{id}/credentials/{credential}/disable"),
                    None,
                )
            }
            Op::EnableCredential => {
                let id = self.owners_agent(&[]).await;
                let added = r
                    .post(
                        &format!("/v1/agents/{id}/credentials"),
                        &r.admin,
                        json!({"kind": "static-secret"}),
                    )
                    .await;
                let credential = added.expect(201)["credential"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                r.post(
                    &format!("/v1/agents/{id}/credentials/{credential}/disable"),
                    &r.admin,
                    json!({}),
                )
                .await
                .expect(200);
                (
                    format!("/v1/agents/{id}/credentials/{credential}/enable"),
                    Some(json!({"reason": "matrix"})),
                )
            }
            Op::AgentTokens => (
                format!("/v1/agents/{}/tokens", self.owners_agent(&[]).await),
                None,
            ),
            Op::CreateCampaign => {
                let (team, _) = self.owners_agent_in_team(false).await;
                ("/v1/campaigns".into(), Some(campaign_body(&team)))
            }
            Op::ListCampaigns => ("/v1/campaigns".into(), None),
            Op::ShowCampaign => {
                let (campaign, _, _) = self.campaign_over_owners_agent(false).await;
                (format!("/v1/campaigns/{campaign}"), None)
            }
            Op::CampaignItems => {
                let (campaign, _, _) = self.campaign_over_owners_agent(false).await;
                (format!("/v1/campaigns/{campaign}/items"), None)
            }
            Op::ExportCampaign => {
                let (campaign, _, _) = self.campaign_over_owners_agent(false).await;
                (format!("/v1/campaigns/{campaign}/export?format=json"), None)
            }
            Op::CloseCampaign => {
                let (campaign, _, _) = self.campaign_over_owners_agent(false).await;
                (format!("/v1/campaigns/{campaign}/close"), None)
            }
            Op::CertifyUnchanged => {
                // The item is used and certified before: certify-unchanged has work to do.
                let (campaign, agent, _) = self.campaign_over_owners_agent(true).await;
                (
                    format!("/v1/campaigns/{campaign}/agents/{agent}/certify-unchanged"),
                    None,
                )
            }
            Op::ReassignAgentsItems => {
                let (campaign, agent, _) = self.campaign_over_owners_agent(false).await;
                (
                    format!("/v1/campaigns/{campaign}/agents/{agent}/reassign"),
                    Some(json!({"reviewer": self.bystander.email, "reason": "matrix"})),
                )
            }
            Op::AcceptRecommendations => {
                let (campaign, agent, _) = self.campaign_over_owners_agent(false).await;
                (
                    format!("/v1/campaigns/{campaign}/items/accept-recommendations"),
                    Some(json!({"agent_ids": [agent], "mine": false})),
                )
            }
            Op::MyReviews => {
                self.campaign_over_owners_agent(false).await;
                ("/v1/reviews/mine".into(), None)
            }
            Op::MyReminders => ("/v1/reviews/reminders".into(), None),
            Op::SomeoneElsesReminders => (
                format!("/v1/reviews/reminders?reviewer={}", self.bystander.email),
                None,
            ),
            Op::ShowReviewItem => {
                let (_, _, item) = self.campaign_over_owners_agent(false).await;
                (format!("/v1/review-items/{item}"), None)
            }
            Op::DecideReviewItem => {
                let (_, _, item) = self.campaign_over_owners_agent(false).await;
                (
                    format!("/v1/review-items/{item}/decision"),
                    Some(json!({"decision": "certify", "justification": "still needed"})),
                )
            }
            Op::ReassignReviewItem => {
                let (_, _, item) = self.campaign_over_owners_agent(false).await;
                (
                    format!("/v1/review-items/{item}/reassign"),
                    Some(json!({"reviewer": self.bystander.email, "reason": "matrix"})),
                )
            }
            Op::ScopeDiff => (
                format!(
                    "/v1/agents/{}/scope-diff",
                    self.owners_agent(&["crm.orders:read"]).await
                ),
                None,
            ),
            Op::ListResources => ("/v1/resources".into(), None),
            Op::ShowResource => ("/v1/resources/matrix".into(), None),
            Op::ImportCatalogue => (
                "/v1/resources".into(),
                Some(
                    json!({"resources": [{"id": self.fresh("matrix-res"), "name": "New",
                    "owner": null, "scopes": []}]}),
                ),
            ),
            Op::AddResourceCredential => (
                "/v1/resources/matrix/credentials".into(),
                Some(json!({"kind": "static-secret"})),
            ),
            Op::DisableResourceCredential => {
                // A resource of its own per cell: a resource holds at most ten enabled keys.
                let resource = self.fresh("matrix-res");
                self.reg
                    .call(
                        "PUT",
                        "/v1/resources",
                        Some(&self.reg.admin.token),
                        Some(&json!({"resources": [{"id": resource, "name": "New",
                            "owner": null, "scopes": []}]})),
                    )
                    .await
                    .expect(200);
                let added = self
                    .reg
                    .post(
                        &format!("/v1/resources/{resource}/credentials"),
                        &self.reg.admin,
                        json!({"kind": "static-secret"}),
                    )
                    .await
                    .expect(201)
                    .clone();
                (
                    format!(
                        "/v1/resources/{resource}/credentials/{}/disable",
                        added["credential"]["id"].as_str().unwrap()
                    ),
                    None,
                )
            }
            Op::RequestScope => (
                format!("/v1/agents/{}/requests", self.owners_agent(&[]).await),
                Some(json!({"scope": "matrix.things:write", "justification": "matrix"})),
            ),
            Op::AgentRequests => (
                format!("/v1/agents/{}/requests", self.owners_agent(&[]).await),
                None,
            ),
            Op::ListApprovals => ("/v1/approvals".into(), None),
            Op::ApproveRequest | Op::DenyRequest => {
                let agent = self.owners_agent(&[]).await;
                let filed = r
                    .post(
                        &format!("/v1/agents/{agent}/requests"),
                        &r.owner,
                        json!({"scope": "matrix.things:write", "justification": "matrix"}),
                    )
                    .await;
                let id = filed.expect(201)["id"].as_str().unwrap().to_string();
                let verb = if op == Op::ApproveRequest {
                    "approve"
                } else {
                    "deny"
                };
                (
                    format!("/v1/approvals/{id}/{verb}"),
                    Some(json!({"reason": "matrix"})),
                )
            }
            Op::ListMyTokens | Op::ListDelegations => (
                if op == Op::ListMyTokens {
                    "/v1/me/tokens".into()
                } else {
                    "/v1/me/delegations".into()
                },
                None,
            ),
            Op::ListSomeonesTokens => (format!("/v1/people/{}/tokens", self.bystander.email), None),
            Op::CreateDelegation => (
                "/v1/me/delegations".into(),
                Some(delegation_body(
                    &self.owners_agent(&["crm.orders:read"]).await,
                )),
            ),
            Op::RevokeDelegation | Op::RevokeSomeoneElsesDelegation => {
                let delegator = if op == Op::RevokeDelegation {
                    self.member(who)
                } else {
                    &self.bystander
                };
                let agent = self.owners_agent(&["crm.orders:read"]).await;
                let created = r
                    .post("/v1/me/delegations", delegator, delegation_body(&agent))
                    .await;
                let id = created.expect(201)["id"].as_str().unwrap().to_string();
                (format!("/v1/me/delegations/{id}"), None)
            }
            Op::SsfConfiguration => ("/.well-known/ssf-configuration".into(), None),
            Op::CreateStream => (
                {
                    self.clear_admins_streams().await;
                    "/ssf/streams".into()
                },
                Some(json!({"delivery": {"method": POLL}, "description": "matrix"})),
            ),
            Op::ReadStream | Op::ReadStreamStatus => {
                let id = self.admins_stream().await;
                let route = if op == Op::ReadStream {
                    "streams"
                } else {
                    "status"
                };
                (format!("/ssf/{route}?stream_id={id}"), None)
            }
            Op::UpdateStream | Op::ReplaceStream => (
                "/ssf/streams".into(),
                Some(json!({"stream_id": self.admins_stream().await,
                            "delivery": {"method": POLL}, "description": "changed"})),
            ),
            Op::DeleteStream => (
                format!("/ssf/streams?stream_id={}", self.admins_stream().await),
                None,
            ),
            Op::UpdateStreamStatus => (
                "/ssf/status".into(),
                Some(
                    json!({"stream_id": self.admins_stream().await, "status": "paused",
                            "reason": "matrix"}),
                ),
            ),
            Op::AddStreamSubject | Op::RemoveStreamSubject => {
                let stream = self.admins_stream().await;
                let agent = self.owners_agent(&[]).await;
                let verb = if op == Op::AddStreamSubject {
                    "add"
                } else {
                    "remove"
                };
                (
                    format!("/ssf/subjects/{verb}"),
                    Some(json!({"stream_id": stream,
                                "subject": {"format": "opaque", "id": agent}})),
                )
            }
            Op::VerifyStream => (
                "/ssf/verify".into(),
                Some(json!({"stream_id": self.admins_stream().await, "state": "matrix"})),
            ),
            Op::PollStream => (
                format!("/ssf/poll/{}", self.admins_stream().await),
                Some(json!({"maxEvents": 10, "returnImmediately": true})),
            ),
            Op::ListStreams => ("/v1/streams".into(), None),
            Op::ShowStream | Op::PauseStream | Op::ResumeStream => {
                let id = self.admins_stream().await;
                let path = match op {
                    Op::ShowStream => format!("/v1/streams/{id}"),
                    Op::PauseStream => format!("/v1/streams/{id}/pause"),
                    _ => format!("/v1/streams/{id}/resume"),
                };
                (path, None)
            }
            Op::FanOut => {
                let agent = self.owners_agent(&[]).await;
                let revoked = r
                    .post(
                        &format!("/v1/agents/{agent}/revoke"),
                        &r.owner,
                        json!({"reason": "matrix"}),
                    )
                    .await;
                let seq = revoked.expect(200)["audit_seq"].as_i64().unwrap();
                (format!("/v1/signals/{seq}"), None)
            }
            Op::RevokeAllMyTokens => ("/v1/me/tokens".into(), None),
        }
    }

    /// A person access token minted by the owner (the subject of an exchange), optionally only
    /// for one agent.
    async fn owners_access_token(&self, may_act: Option<&str>) -> String {
        let r = &self.reg;
        let minted = r
            .post(
                "/v1/me/access-token",
                &r.owner,
                json!({"ttl_seconds": 600, "may_act": may_act}),
            )
            .await;
        minted.expect(201)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A new agent of the owner with one grant, alone in a new team (so that a campaign over
    /// that team covers exactly it). `used_and_certified` marks the grant as used and certified
    /// (straight in the database: usage comes from tokens), which makes it bulk-certifiable.
    async fn owners_agent_in_team(&self, used_and_certified: bool) -> (String, String) {
        let team = self.fresh("review-team");
        let agent = self
            .reg
            .register_with(
                json!({"name": self.fresh("reviewed"), "owner": self.reg.owner.email,
                                  "team": team, "scopes": ["crm.orders:read"]}),
            )
            .await;
        if used_and_certified {
            let changed = self
                .reg
                .sql()
                .execute(
                    "UPDATE grants SET last_used_at = ?1, last_certified_at = ?1
                     WHERE agent_id = ?2",
                    [
                        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        &agent,
                    ],
                )
                .unwrap();
            assert_eq!(changed, 1, "the agent's grant exists");
        }
        (team, agent)
    }

    /// An open campaign, created by the admin, over a new agent of the owner: one item whose
    /// reviewer is the owner. Returns the campaign id, the agent id and the item id.
    async fn campaign_over_owners_agent(&self, used_and_certified: bool) -> (String, String, i64) {
        let r = &self.reg;
        let (team, agent) = self.owners_agent_in_team(used_and_certified).await;
        let created = r
            .post("/v1/campaigns", &r.admin, campaign_body(&team))
            .await;
        let campaign = created.expect(201)["id"].as_str().unwrap().to_string();
        let items = r
            .get(&format!("/v1/campaigns/{campaign}/items"), &r.admin)
            .await;
        let items = items.expect(200)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "one item: {items:?}");
        assert_eq!(items[0]["reviewer"], json!(r.owner.email));
        (campaign, agent, items[0]["id"].as_i64().unwrap())
    }

    /// The newest audit event, read straight from the database.
    fn last_event(&self) -> Value {
        let conn = self.reg.sql();
        conn.query_row(
            "SELECT seq, actor FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| {
                let actor: String = r.get(1)?;
                Ok(json!({"seq": r.get::<_, i64>(0)?,
                          "actor": serde_json::from_str::<Value>(&actor).unwrap()}))
            },
        )
        .unwrap()
    }
}

/// A delegation of `crm.orders:read` to `agent` for a day.
fn delegation_body(agent: &str) -> Value {
    let until = chrono::Utc::now() + chrono::Duration::days(1);
    json!({"agent_id": agent, "scopes": ["crm.orders:read"], "expires_at": until})
}

/// A campaign over one team, due in 30 days, leaving undecided grants in place at close.
fn campaign_body(team: &str) -> Value {
    let due = chrono::Utc::now() + chrono::Duration::days(30);
    json!({"name": format!("review of {team}"), "filter": {"team": team},
           "due_at": due.to_rfc3339(), "no_response": "keep"})
}

/// Sends a cell's request: OAuth endpoints take form-encoded bodies, the API takes JSON.
async fn send(
    m: &Matrix,
    row: &Row,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> support::Reply {
    if !is_oauth(row.op) {
        return m.reg.call(row.method, path, token, body).await;
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in body.and_then(Value::as_object).into_iter().flatten() {
        form.append_pair(k, v.as_str().expect("form values are strings"));
    }
    m.reg
        .call_raw(
            row.method,
            path,
            token,
            Some("application/x-www-form-urlencoded"),
            Some(form.finish().into_bytes()),
        )
        .await
}

fn expected(row: &Row, who: Who) -> (u16, &'static str) {
    let oauth = is_oauth(row.op);
    let authenticated = |status: u16| {
        let code = match (oauth, status) {
            (true, 400) => "unauthorized_client",
            (true, 401) => "invalid_client",
            (false, 403) if DECISIONS.contains(&row.op) => "",
            (false, 403) => "forbidden",
            (false, 404) => "not_found",
            _ => "",
        };
        (status, code)
    };
    let unauthenticated = |code: &'static str| {
        if PUBLIC.contains(&row.op) || AGENT_AUTHENTICATED.contains(&row.op) {
            authenticated(row.expect[0])
        } else if OAUTH_CALLER.contains(&row.op) {
            (401, "invalid_client")
        } else if is_receiver_route(row.op) {
            (401, "unauthenticated")
        } else {
            (401, code)
        }
    };
    match who {
        Who::NoToken => unauthenticated("unauthenticated"),
        Who::UnknownToken => unauthenticated("invalid_token"),
        Who::ExpiredToken => unauthenticated("token_expired"),
        Who::RevokedToken => unauthenticated("token_revoked"),
        Who::PersonWhoLeft => unauthenticated("person_inactive"),
        // An invitation acts as the owner only to redeem itself.
        Who::Invitation if row.op == Op::IssueMyToken => authenticated(row.expect[3]),
        Who::Invitation => unauthenticated("invitation_only"),
        Who::Admin => authenticated(row.expect[0]),
        Who::Responder => authenticated(row.expect[1]),
        Who::Auditor => authenticated(row.expect[2]),
        Who::Owner => authenticated(row.expect[3]),
        Who::OtherOwner => authenticated(row.expect[4]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_every_caller() {
    let m = Matrix::new().await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for row in ROWS {
        for who in CALLERS {
            cells += 1;
            let token = m.cell_token(who).await;
            let (path, body) = m.prepare(row.op, who).await;
            // A fan-out cell's setup is a revoke, whose consequences (the signals fan-out, the
            // token kills) commit after its reply: they settle before the call is judged.
            let before = if row.op == Op::FanOut {
                m.reg.settled_snapshot().await
            } else {
                m.reg.snapshot()
            };
            let audit_before = m.reg.audit_count();
            let reply = send(&m, row, &path, token.as_deref(), body.as_ref()).await;
            let (want, want_code) = expected(row, who);
            let cell = format!("{:?} {} {path} as {who:?}", row.op, row.method);
            if reply.status != want || (!want_code.is_empty() && reply.code() != want_code) {
                failures.push(format!(
                    "{cell}: got {} {}, want {want} {want_code}",
                    reply.status, reply.body
                ));
                continue;
            }
            let succeeded = (200..300).contains(&reply.status);
            let silent = SILENT_REFUSALS.contains(&(row.op, who));
            if silent {
                if m.reg.snapshot() != before || m.reg.audit_count() != audit_before {
                    failures.push(format!("{cell}: a silent refusal changed something"));
                }
            } else if succeeded && row.effect == Effect::UnauditedWrite {
                if m.reg.audit_count() != audit_before {
                    failures.push(format!("{cell}: wrote an audit event it is not meant to"));
                }
            } else if succeeded && row.effect == Effect::Write {
                let last = m.last_event();
                if m.reg.audit_count() <= audit_before {
                    failures.push(format!("{cell}: succeeded without an audit event"));
                } else if last["actor"]["id"] != json!(m.member(who).email) {
                    failures.push(format!(
                        "{cell}: the newest audit event's actor is {}, not the caller",
                        last["actor"]
                    ));
                }
            } else if m.reg.snapshot() != before {
                failures.push(format!(
                    "{cell}: the database changed although the call {} (tables: {:?})",
                    if succeeded {
                        "only read"
                    } else {
                        "was refused"
                    },
                    support::changed_tables(&before, &m.reg.snapshot())
                ));
            }
        }
    }
    assert_eq!(cells, ROWS.len() * CALLERS.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The table covers exactly the routes the registry serves: the OpenAPI document is built from
/// the router's route list, so a new route without a row here fails this test.
#[tokio::test]
async fn every_route_has_a_row() {
    let reg = Registry::start().await;
    let doc = reg.call("GET", "/openapi.json", None, None).await;
    let paths = doc.expect(200)["paths"]
        .as_object()
        .expect("the document lists paths")
        .clone();
    let served: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(|method| (method.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let tested: BTreeSet<(String, String)> = ROWS
        .iter()
        .map(|r| (r.method.to_string(), r.route.to_string()))
        .collect();
    let untested: Vec<_> = served.difference(&tested).collect();
    let unknown: Vec<_> = tested.difference(&served).collect();
    assert!(
        untested.is_empty(),
        "routes without a row in the matrix: {untested:?}"
    );
    assert!(
        unknown.is_empty(),
        "matrix rows for routes the registry does not serve: {unknown:?}"
    );
    assert!(served.len() >= 22, "the document lists the whole API");
    // Every route under /v1/ needs a token; the OAuth endpoints under /oauth/ authenticate
    // their callers themselves; only /healthz and discovery under /.well-known/ are public.
    for row in ROWS {
        let public = row.route == "/healthz" || row.route.starts_with("/.well-known/");
        assert_eq!(PUBLIC.contains(&row.op), public, "{:?}", row.op);
        assert_eq!(
            is_oauth(row.op),
            row.route.starts_with("/oauth/"),
            "{:?}",
            row.op
        );
        assert_eq!(
            is_receiver_route(row.op),
            row.route.starts_with("/ssf/"),
            "{:?}",
            row.op
        );
        assert!(
            public
                || is_oauth(row.op)
                || is_receiver_route(row.op)
                || row.route.starts_with("/v1/"),
            "{:?} is neither public, OAuth, a receiver's nor under /v1/",
            row.op
        );
    }
}

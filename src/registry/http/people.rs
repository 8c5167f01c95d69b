//! `/v1/me` and `/v1/people`: who is calling, the directory, and API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::{Caller, Redeemer};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, MaybeJson};
use super::{AppState, blocking};
use crate::model::api::{
    ApiErrorBody, CreatePerson, IssueToken, IssuedToken, PeoplePage, PeopleQuery, UpdatePerson,
    WhoAmI,
};
use crate::model::permissions::{Permissions, Reach};
use crate::model::text::{check_email, check_free_text, check_line};
use crate::model::{AgentStatus, Person};
use crate::registry::policy;
use crate::registry::service::api_tokens::{TokenPlan, issue_token_with};
use crate::registry::store::{AgentFacts, StoreResult};

/// The calling person and their token.
#[utoipa::path(get, path = "/v1/me", tag = "people", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = ApiErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Json<WhoAmI> {
    let may = Some(permissions(&caller.person));
    Json(WhoAmI {
        person: caller.person,
        token_id: caller.token_id,
        token_expires_at: caller.token_expires_at,
        may,
        server_name: state.server_name.to_string(),
    })
}

/// The caller's permissions, found by asking the policy itself about an agent the caller owns
/// and one they do not (so no rule is written twice).
pub fn permissions(p: &Person) -> Permissions {
    let facts = |owner: Option<String>| AgentFacts {
        id: String::new(),
        owner_email: owner,
        status: AgentStatus::Active,
    };
    let mine = facts(Some(p.email.clone()));
    let other = facts(None);
    let reach = |rule: fn(&Person, &AgentFacts) -> StoreResult<()>| {
        if rule(p, &other).is_ok() {
            Reach::All
        } else if rule(p, &mine).is_ok() {
            Reach::Owned
        } else {
            Reach::None
        }
    };
    Permissions {
        set_owner: reach(policy::may_set_owner),
        revoke: reach(policy::may_revoke_agent),
        reinstate: reach(policy::may_reinstate_agent),
        decommission: reach(policy::may_manage_agent),
        read_all_reviews: crate::registry::reviews::may_read_all_items(p).is_ok(),
        administer_campaigns: crate::registry::reviews::may_administer(p).is_ok(),
        read_audit: policy::may_read_audit(p),
        acknowledge_flags: crate::registry::service::flags::reach(
            p,
            crate::model::flag::FlagState::Acknowledged,
        ),
        manage_streams: policy::may_manage_streams(p),
    }
}

fn check_issue(req: &IssueToken, max_days: u32) -> Result<(), ApiError> {
    if let Some(name) = &req.name {
        check_line("name", name, 64)?;
    }
    if req.ttl_days.is_some_and(|d| !(1..=max_days).contains(&d)) {
        return Err(ApiError::invalid(
            "invalid_ttl",
            format!("ttl_days must be between 1 and {max_days} (the registry's maximum)"),
        ));
    }
    Ok(())
}

/// Issue a new API token for yourself. The token is shown once. Minted with an API token, it
/// never outlives that token and dies with it; presented with an invitation, it redeems the
/// invitation (single use) for your own token.
#[utoipa::path(post, path = "/v1/me/tokens", tag = "people", request_body = IssueToken,
    security(("bearer" = [])),
    responses((status = 201, body = IssuedToken), (status = 401, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn issue_my_token(
    State(state): State<AppState>,
    redeemer: Redeemer,
    MaybeJson(req): MaybeJson<IssueToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let max_days = state.tokens.api_token_max_days;
    check_issue(&req, max_days)?;
    let caller = redeemer.caller;
    let actor = caller.actor();
    let email = caller.person.email;
    let plan = if redeemer.invitation {
        TokenPlan {
            redeeming: Some(caller.token_id),
            max_days,
            ..TokenPlan::default()
        }
    } else {
        TokenPlan {
            parent_id: Some(caller.token_id),
            max_days,
            ..TokenPlan::default()
        }
    };
    let issued = blocking(&state, move |s| {
        issue_token_with(s, &actor, &email, &req, &plan)
    })
    .await
    .map_err(|e| match e.status {
        // A spent or revoked invitation (a race with another redemption) is an
        // authentication failure like any dead token.
        StatusCode::FORBIDDEN => ApiError::unauthenticated("invitation_redeemed", e.message),
        _ => e,
    })?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revoke one of your own API tokens (for example the one in use, to sign out).
#[utoipa::path(delete, path = "/v1/me/tokens/{id}", tag = "people",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ApiErrorBody)))]
pub async fn revoke_my_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let actor = caller.actor();
    let email = caller.person.email;
    blocking(&state, move |s| s.revoke_api_token(&actor, &email, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The directory of people (everyone signed in may read it, to pick owners).
#[utoipa::path(get, path = "/v1/people", tag = "people", params(PeopleQuery),
    security(("bearer" = [])), responses((status = 200, body = PeoplePage)))]
pub async fn list_people(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<PeopleQuery>,
) -> Result<Json<PeoplePage>, ApiError> {
    if let Some(q) = &query.q {
        check_free_text("q", q, 200)?;
    }
    Ok(Json(
        blocking(&state, move |s| s.list_people(&query)).await?,
    ))
}

fn require_admin(caller: &Caller, what: &str) -> Result<(), ApiError> {
    if policy::is_admin(&caller.person) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may not {what}: it takes the admin role",
            caller.person.email
        )))
    }
}

/// Add a person (admins).
#[utoipa::path(post, path = "/v1/people", tag = "people", request_body = CreatePerson,
    security(("bearer" = [])),
    responses((status = 201, body = Person), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
pub async fn create_person(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreatePerson>,
) -> Result<(StatusCode, Json<Person>), ApiError> {
    require_admin(&caller, "add people")?;
    check_email(&req.email)?;
    check_line("display_name", &req.display_name, 128)?;
    if let Some(m) = &req.manager {
        check_email(m)?;
    }
    if let Some(t) = &req.team {
        check_line("team", t, 64)?;
    }
    let actor = caller.actor();
    let person = blocking(&state, move |s| s.create_person(&actor, &req)).await?;
    Ok((StatusCode::CREATED, Json(person)))
}

/// One person by email.
#[utoipa::path(get, path = "/v1/people/{email}", tag = "people",
    params(("email" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Person), (status = 404, body = ApiErrorBody)))]
pub async fn show_person(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(email): ApiPath<String>,
) -> Result<Json<Person>, ApiError> {
    let wanted = email.clone();
    blocking(&state, move |s| s.person(&wanted))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no person with email {email}")))
}

/// Change a person's roles, manager or team, or mark them as having left (admins).
#[utoipa::path(patch, path = "/v1/people/{email}", tag = "people",
    params(("email" = String, Path)), request_body = UpdatePerson, security(("bearer" = [])),
    responses((status = 200, body = Person), (status = 403, body = ApiErrorBody)))]
pub async fn update_person(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(email): ApiPath<String>,
    ApiJson(req): ApiJson<UpdatePerson>,
) -> Result<Json<Person>, ApiError> {
    require_admin(&caller, "change people")?;
    if let Some(n) = &req.display_name {
        check_line("display_name", n, 128)?;
    }
    if let Some(m) = &req.manager {
        check_email(m)?;
    }
    if let Some(t) = &req.team {
        check_line("team", t, 64)?;
    }
    if email.eq_ignore_ascii_case(&caller.person.email) && req.active == Some(false) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "you cannot mark yourself as having left",
        ));
    }
    let actor = caller.actor();
    Ok(Json(
        blocking(&state, move |s| s.update_person(&actor, &email, &req)).await?,
    ))
}

/// Issue an invitation for another person (admins), e.g. when onboarding them: single use,
/// valid 24 hours, good only for `POST /v1/me/tokens`, where that person redeems it for their
/// own API token. Nobody can act as another person.
#[utoipa::path(post, path = "/v1/people/{email}/tokens", tag = "people",
    params(("email" = String, Path)), request_body = IssueToken, security(("bearer" = [])),
    responses((status = 201, body = IssuedToken), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(email): ApiPath<String>,
    MaybeJson(req): MaybeJson<IssueToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    require_admin(&caller, "issue invitations for others")?;
    check_issue(&req, state.tokens.api_token_max_days)?;
    if req.ttl_days.is_some() {
        return Err(ApiError::invalid(
            "invalid_ttl",
            "an invitation always lasts 24 hours; the person chooses their token's lifetime \
             when they redeem it",
        ));
    }
    let actor = caller.actor();
    let plan = TokenPlan {
        invitation: true,
        max_days: 1,
        ..TokenPlan::default()
    };
    let issued = blocking(&state, move |s| {
        issue_token_with(s, &actor, &email, &req, &plan)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

//! `/v1/flags` (behaviour flags and their decisions) and `/v1/agents/{id}/activity` (the
//! activity record and the hourly series with the baseline band).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::{AppState, blocking};
use crate::model::activity::{ActivityPage, HourlyPoint, HourlySeries, RecentUse};
use crate::model::api::ApiErrorBody;
use crate::model::flag::{Flag, FlagDecision, FlagPage, FlagQuery, FlagState};
use crate::model::text::{check_free_text, check_line};
use crate::registry::policy;
use crate::registry::service::flags as rules;

/// List flags, severity first then newest. People without a role see their own agents' flags.
#[utoipa::path(get, path = "/v1/flags", tag = "flags", params(FlagQuery),
    security(("bearer" = [])),
    responses((status = 200, body = FlagPage), (status = 401, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn list_flags(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<FlagQuery>,
) -> Result<Json<FlagPage>, ApiError> {
    if let Some(a) = &query.agent {
        check_line("agent", a, 128)?;
    }
    let visibility = policy::visibility(&caller.person);
    let flags = blocking(&state, move |s| s.list_flags(&query, &visibility)).await?;
    Ok(Json(FlagPage { flags }))
}

/// One flag with its evidence.
#[utoipa::path(get, path = "/v1/flags/{id}", tag = "flags", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Flag), (status = 404, body = ApiErrorBody)))]
pub async fn show_flag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Flag>, ApiError> {
    let (flag, owner) = blocking(&state, {
        let id = id.clone();
        move |s| s.flag(&id)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no flag with id {id}")))?;
    rules::may_read(&caller.person, &flag, owner.as_deref())?;
    Ok(Json(flag))
}

async fn decide(
    state: AppState,
    caller: Caller,
    id: String,
    req: FlagDecision,
    to: FlagState,
) -> Result<Json<Flag>, ApiError> {
    if req.reason.trim().is_empty() {
        return Err(ApiError::invalid(
            "reason_required",
            format!("say why the flag is {}", to.as_str()),
        ));
    }
    check_free_text("reason", &req.reason, 1000)?;
    let actor = caller.actor();
    let person = caller.person.clone();
    let flag = blocking(&state, move |s| {
        s.decide_flag(&actor, &id, to, req.reason.trim(), &|flag, owner| {
            rules::may_decide(&person, flag, owner, to)
        })
    })
    .await?;
    Ok(Json(flag))
}

/// Acknowledge an open flag ("I am looking"): admins, responders and the agent's owner.
/// A flag already acknowledged or resolved answers 409 with its current state.
#[utoipa::path(post, path = "/v1/flags/{id}/acknowledge", tag = "flags",
    params(("id" = String, Path)), request_body = FlagDecision, security(("bearer" = [])),
    responses((status = 200, body = Flag), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn acknowledge_flag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<FlagDecision>,
) -> Result<Json<Flag>, ApiError> {
    decide(state, caller, id, req, FlagState::Acknowledged).await
}

/// Resolve a flag: admins and responders (never the agent's owner, the party under suspicion).
#[utoipa::path(post, path = "/v1/flags/{id}/resolve", tag = "flags",
    params(("id" = String, Path)), request_body = FlagDecision, security(("bearer" = [])),
    responses((status = 200, body = Flag), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn resolve_flag(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<FlagDecision>,
) -> Result<Json<Flag>, ApiError> {
    decide(state, caller, id, req, FlagState::Resolved).await
}

/// `GET /v1/agents/{id}/activity` filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The agent's raw activity events, newest first (kept for the retention window), for anyone
/// who may read the agent.
#[utoipa::path(get, path = "/v1/agents/{id}/activity", tag = "agents",
    params(("id" = String, Path), ActivityQuery), security(("bearer" = [])),
    responses((status = 200, body = ActivityPage), (status = 404, body = ApiErrorBody)))]
pub async fn agent_activity(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<ActivityPage>, ApiError> {
    super::agents::visible_detail(&state, &caller, id.clone()).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let retention_days = state
        .tokens
        .behaviour()
        .map(|b| b.settings.raw_retention_days)
        .unwrap_or(0);
    let events = blocking(&state, {
        let id = id.clone();
        move |s| s.activity(&id, query.since, limit)
    })
    .await?;
    Ok(Json(ActivityPage {
        agent_id: id,
        events,
        retention_days,
    }))
}

/// `GET /v1/agents/{id}/activity/hourly` parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HourlyQuery {
    /// Days back from now (default 7, at most 30).
    pub days: Option<u32>,
}

/// The agent's hourly activity (for a sparkline) with its baseline band, and the scopes and
/// audiences it used in the last 24 hours, first uses marked.
#[utoipa::path(get, path = "/v1/agents/{id}/activity/hourly", tag = "agents",
    params(("id" = String, Path), HourlyQuery), security(("bearer" = [])),
    responses((status = 200, body = HourlySeries), (status = 404, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn agent_activity_hourly(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HourlyQuery>,
) -> Result<Json<HourlySeries>, ApiError> {
    let days = query.days.unwrap_or(7);
    if !(1..=30).contains(&days) {
        return Err(ApiError::invalid(
            "invalid_days",
            "days must be between 1 and 30",
        ));
    }
    super::agents::visible_detail(&state, &caller, id.clone()).await?;
    let now = state.store.clock().unix();
    let this_hour = now.div_euclid(3600) * 3600;
    let from = this_hour - (days as i64 * 24 - 1) * 3600;
    let window_days = state
        .tokens
        .behaviour()
        .map(|b| b.settings.detectors.window_days)
        .unwrap_or(28) as i64;
    let (hours, recent, before) = blocking(&state, {
        let id = id.clone();
        move |s| {
            Ok((
                s.activity_hours(&id, from, this_hour + 3600)?,
                s.activity_items(&id, now - 86_400, now + 3600)?,
                s.activity_items(&id, now - window_days * 86_400, now - 86_400)?,
            ))
        }
    })
    .await?;
    let mut points: Vec<HourlyPoint> = (0..days as i64 * 24)
        .map(|i| HourlyPoint {
            hour: DateTime::from_timestamp(from + i * 3600, 0).unwrap_or_default(),
            accepted: 0,
            refused: 0,
        })
        .collect();
    for h in hours {
        let i = (h.hour.timestamp() - from) / 3600;
        if let Some(p) = usize::try_from(i).ok().and_then(|i| points.get_mut(i)) {
            *p = h;
        }
    }
    let baseline = match state.tokens.behaviour() {
        Some(b) => b.band(&id, now),
        None => crate::registry::behaviour::Detectors::default().band(&id, now),
    };
    let used = |prefix: &str| -> Vec<RecentUse> {
        recent
            .iter()
            .filter_map(|(item, n)| {
                let name = item.strip_prefix(prefix)?;
                Some(RecentUse {
                    name: name.to_string(),
                    count: *n,
                    first_use: !before.iter().any(|(b, _)| b == item),
                })
            })
            .collect()
    };
    Ok(Json(HourlySeries {
        agent_id: id,
        days,
        points,
        baseline,
        scopes_24h: used("s:"),
        audiences_24h: used("a:"),
    }))
}

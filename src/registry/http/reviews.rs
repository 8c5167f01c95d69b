//! Access reviews: `/v1/campaigns`, `/v1/reviews`, `/v1/review-items` and an agent's scope diff.
//!
//! Admins create, reassign and close campaigns; reviewers (the agents' owners, or the fallback
//! reviewer) decide their items; admins and auditors read every item and export the evidence.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::{AppState, blocking, check_reason};
use crate::model::api::ApiErrorBody;
use crate::model::review::{
    AcceptOutcome, AcceptRecommendations, BulkCertifyOutcome, Campaign, CampaignDetail,
    CampaignQuery, CloseOutcome, CreateCampaign, DecideItem, DecisionOutcome, ExportFormat,
    ExportQuery, ExportRow, QueueQuery, ReassignItems, ReassignOutcome, ReminderPage,
    ReminderQuery, ReviewItem, ReviewItemPage, ReviewItemQuery, ReviewQueue, ScopeDiff,
    ScopeDiffQuery, csv_line,
};
use crate::model::text::{check_email, check_free_text, check_line};
use crate::registry::policy;
use crate::registry::reviews::diff::DEFAULT_LOOKBACK_DAYS;
use crate::registry::reviews::{self, ReassignTarget};
use crate::registry::store::StoreError;

/// Bytes buffered before a chunk of an export is sent.
const EXPORT_CHUNK: usize = 64 * 1024;

fn check_create(req: &CreateCampaign, now: DateTime<Utc>) -> Result<(), ApiError> {
    check_line("name", &req.name, 128)?;
    if let Some(team) = &req.filter.team {
        check_line("filter.team", team, 64)?;
    }
    if let Some(env) = &req.filter.environment {
        check_line("filter.environment", env, 64)?;
    }
    if let Some(owner) = &req.filter.owner {
        check_email(owner)?;
    }
    if let Some(fallback) = &req.fallback_reviewer {
        check_email(fallback)?;
    }
    if req.due_at <= now {
        return Err(ApiError::invalid(
            "invalid_dates",
            format!("due_at {} is in the past", req.due_at.to_rfc3339()),
        ));
    }
    if req.starts_at.is_some_and(|s| s >= req.due_at) {
        return Err(ApiError::invalid(
            "invalid_dates",
            "starts_at must be before due_at",
        ));
    }
    if req.grace_days.is_some_and(|d| d > 90) {
        return Err(ApiError::invalid(
            "invalid_grace_days",
            "grace_days must be between 0 and 90",
        ));
    }
    if req.lookback_days.is_some_and(|d| !(1..=365).contains(&d)) {
        return Err(ApiError::invalid(
            "invalid_lookback",
            "lookback_days must be between 1 and 365",
        ));
    }
    let days = &req.reminders.days_before;
    if days.len() > 10 || days.iter().any(|d| *d > 90) {
        return Err(ApiError::invalid(
            "invalid_reminders",
            "reminders.days_before takes at most 10 values, each between 0 and 90",
        ));
    }
    Ok(())
}

/// Create a campaign (admins). With a start of now (the default), one review item per
/// (agent, grant) of the selected agents is snapshotted at once; agents without grants
/// produce none. `no_response` must be stated: there is no silent default.
#[utoipa::path(post, path = "/v1/campaigns", tag = "reviews", request_body = CreateCampaign,
    security(("bearer" = [])),
    responses((status = 201, body = Campaign), (status = 403, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn create_campaign(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    reviews::may_administer(&caller.person)?;
    check_create(&req, state.store.clock().now())?;
    let actor = caller.actor();
    let campaign = blocking(&state, move |s| {
        s.create_campaign(&actor, &req, s.clock().now())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

/// List campaigns with their overall progress, open ones first.
#[utoipa::path(get, path = "/v1/campaigns", tag = "reviews", params(CampaignQuery),
    security(("bearer" = [])), responses((status = 200, body = Vec<Campaign>)))]
pub async fn list_campaigns(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<CampaignQuery>,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    Ok(Json(
        blocking(&state, move |s| s.list_campaigns(&query)).await?,
    ))
}

/// One campaign with its progress per reviewer and per team. People without a role see only
/// their own line and no team breakdown.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "reviews", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CampaignDetail), (status = 404, body = ApiErrorBody)))]
pub async fn show_campaign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CampaignDetail>, ApiError> {
    let mut detail = blocking(&state, {
        let id = id.clone();
        move |s| s.campaign_detail(&id)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no campaign with id {id}")))?;
    if !policy::reads_everything(&caller.person) {
        let me = &caller.person.email;
        detail
            .by_reviewer
            .retain(|r| r.reviewer.eq_ignore_ascii_case(me));
        detail.by_team.clear();
        detail.pending_recommended_revoke = 0;
    }
    Ok(Json(detail))
}

/// Every item of a campaign, in item order (admins and auditors), paginated.
#[utoipa::path(get, path = "/v1/campaigns/{id}/items", tag = "reviews",
    params(("id" = String, Path), ReviewItemQuery), security(("bearer" = [])),
    responses((status = 200, body = ReviewItemPage), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn campaign_items(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReviewItemQuery>,
) -> Result<Json<ReviewItemPage>, ApiError> {
    reviews::may_read_all_items(&caller.person)?;
    if let Some(r) = &query.reviewer {
        check_email(r)?;
    }
    Ok(Json(
        blocking(&state, move |s| s.review_items(&id, &query)).await?,
    ))
}

/// Close a campaign now (admins): undecided items get the no-response outcome, each grant
/// removal audited; the answer says how many items it touched. Closing a quarterly campaign
/// schedules its next instance three months later.
#[utoipa::path(post, path = "/v1/campaigns/{id}/close", tag = "reviews",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = CloseOutcome), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
pub async fn close_campaign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CloseOutcome>, ApiError> {
    reviews::may_administer(&caller.person)?;
    let actor = caller.actor();
    let outcome = blocking(&state, move |s| {
        let now = s.clock().now();
        let outcome = s.close_campaign(&actor, &id, now)?;
        // A next instance whose start has already come opens now rather than in a minute.
        if outcome.next.as_ref().is_some_and(|n| n.starts_at <= now) {
            s.start_due_campaigns(&crate::model::Actor::system(reviews::SYSTEM_ACTOR), now)?;
        }
        Ok(outcome)
    })
    .await?;
    Ok(Json(outcome))
}

/// The evidence: every item with reviewer, decision, time, justification, recommendation and
/// whether it was applied (admins and auditors). Streamed: CSV with a header line, or a JSON
/// array.
#[utoipa::path(get, path = "/v1/campaigns/{id}/export", tag = "reviews",
    params(("id" = String, Path), ExportQuery), security(("bearer" = [])),
    responses((status = 200, description = "CSV (text/csv) or a JSON array of ExportRow",
        content((Vec<ExportRow> = "application/json"), (String = "text/csv"))),
        (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn export_campaign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    reviews::may_read_all_items(&caller.person)?;
    // Refuse an unknown campaign with a 404 before the 200 of a stream is sent.
    blocking(&state, {
        let id = id.clone();
        move |s| {
            s.review_items(
                &id,
                &ReviewItemQuery {
                    limit: Some(1),
                    ..Default::default()
                },
            )
        }
    })
    .await?;
    let format = query.format;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let store = state.store.clone();
    let export_id = id.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = String::with_capacity(EXPORT_CHUNK + 4096);
        match format {
            ExportFormat::Csv => buf.push_str(&csv_line(&ExportRow::CSV_HEADER)),
            ExportFormat::Json => buf.push('['),
        }
        let mut first = true;
        let result = store.export_campaign(&export_id, &mut |row| {
            match format {
                ExportFormat::Csv => buf.push_str(&csv_line(&row.csv_fields())),
                ExportFormat::Json => {
                    if !first {
                        buf.push(',');
                    }
                    buf.push('\n');
                    let json = serde_json::to_string(&row)
                        .map_err(|e| StoreError::Internal(e.to_string()))?;
                    buf.push_str(&json);
                }
            }
            first = false;
            if buf.len() >= EXPORT_CHUNK {
                let chunk = Bytes::from(std::mem::take(&mut buf));
                tx.blocking_send(Ok(chunk))
                    .map_err(|_| StoreError::Internal("the client stopped reading".into()))?;
            }
            Ok(())
        });
        match result {
            Ok(_) => {
                if format == ExportFormat::Json {
                    buf.push_str("\n]\n");
                }
                let _ = tx.blocking_send(Ok(Bytes::from(buf)));
            }
            Err(e) => {
                // The status line is already sent: breaking the stream is how the client
                // learns that the export is incomplete.
                tracing::error!(campaign = %export_id, error = %e, "export of a campaign failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let (content_type, extension) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Json => ("application/json", "json"),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"campaign-{id}.{extension}\""),
        )
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Certify, in one call, every undecided scope of one agent that is used and unchanged since
/// its last certification (the console's `C`). Only the caller's items, unless an admin.
#[utoipa::path(post, path = "/v1/campaigns/{id}/agents/{agent_id}/certify-unchanged",
    tag = "reviews", params(("id" = String, Path), ("agent_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = BulkCertifyOutcome), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
pub async fn certify_unchanged(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, agent_id)): ApiPath<(String, String)>,
) -> Result<Json<BulkCertifyOutcome>, ApiError> {
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            s.certify_unchanged(&actor, &id, &agent_id, s.clock().now(), &|f| {
                reviews::may_decide(&person, f)
            })
        })
        .await?,
    ))
}

fn check_reassign(req: &ReassignItems) -> Result<(), ApiError> {
    check_email(&req.reviewer)?;
    check_reason(&req.reason)
}

/// Give every item of one agent in a campaign to another reviewer (admins).
#[utoipa::path(post, path = "/v1/campaigns/{id}/agents/{agent_id}/reassign", tag = "reviews",
    params(("id" = String, Path), ("agent_id" = String, Path)), request_body = ReassignItems,
    security(("bearer" = [])),
    responses((status = 200, body = ReassignOutcome), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn reassign_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((campaign_id, agent_id)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<ReassignItems>,
) -> Result<Json<ReassignOutcome>, ApiError> {
    reviews::may_administer(&caller.person)?;
    check_reassign(&req)?;
    let actor = caller.actor();
    let target = ReassignTarget::Agent {
        campaign_id,
        agent_id,
    };
    Ok(Json(
        blocking(&state, move |s| {
            s.reassign_items(&actor, &target, &req, s.clock().now())
        })
        .await?,
    ))
}

/// "My reviews": the caller's items in open campaigns, grouped by agent, agents ordered by due
/// date then risk, each with its scope diff, recommendation, history and the scopes removed
/// since its last certification, plus the caller's progress per campaign. One call draws the
/// console's review screen. `q` filters and `sort` orders the agents; `all` (admins and
/// auditors) shows every reviewer's items, and `may_decide` says whether the caller may decide
/// what is shown.
#[utoipa::path(get, path = "/v1/reviews/mine", tag = "reviews", params(QueueQuery),
    security(("bearer" = [])), responses((status = 200, body = ReviewQueue),
        (status = 403, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn my_reviews(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> Result<Json<ReviewQueue>, ApiError> {
    if let Some(q) = &query.q {
        check_line("q", q, 128)?;
    }
    let all = query.all.unwrap_or(false);
    if all {
        reviews::may_read_all_items(&caller.person)?;
    }
    // What the registry lets the caller do with what is shown: their own items, or (admins)
    // anyone's; an auditor reads every item and decides none but their own.
    let admin = policy::is_admin(&caller.person);
    let me = caller.person.email;
    let mut queue = blocking(&state, move |s| {
        s.review_queue((!all).then_some(me.as_str()), &query, s.clock().now())
    })
    .await?;
    queue.may_decide = !all || admin;
    queue.may_reassign = admin;
    Ok(Json(queue))
}

fn check_accept(req: &AcceptRecommendations) -> Result<(), ApiError> {
    if let Some(q) = &req.q {
        check_line("q", q, 128)?;
    }
    if let Some(j) = &req.justification {
        check_free_text("justification", j, 1000)?;
    }
    for a in &req.agent_ids {
        check_line("agent_ids", a, 128)?;
    }
    if req.item_ids.len() + req.agent_ids.len() > 10_000 {
        return Err(ApiError::invalid(
            "too_many_items",
            "name at most 10000 items and agents in one call",
        ));
    }
    Ok(())
}

/// Accept the recommendation (certify or revoke) of many undecided items in one call: the
/// caller's own items of the campaign (`mine`, the default), or every reviewer's (admins),
/// named by `item_ids`/`agent_ids` or selected by the queue's filter `q`. Each item is checked
/// by the same rule as a single decision and audited as one; the answer lists per item what was
/// decided, skipped (with why) or refused. `dry_run` only counts; `expect` refuses with 409
/// when the undecided set is no longer what was confirmed. A closed campaign: 409.
#[utoipa::path(post, path = "/v1/campaigns/{id}/items/accept-recommendations", tag = "reviews",
    params(("id" = String, Path)), request_body = AcceptRecommendations,
    security(("bearer" = [])),
    responses((status = 200, body = AcceptOutcome), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn accept_recommendations(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AcceptRecommendations>,
) -> Result<Json<AcceptOutcome>, ApiError> {
    check_accept(&req)?;
    let mine = req.mine.unwrap_or(true);
    if !mine {
        reviews::may_administer(&caller.person)?;
    }
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            let me = mine.then_some(person.email.as_str());
            s.accept_recommendations(&actor, &id, &req, me, s.clock().now(), &|f| {
                reviews::may_decide(&person, f)
            })
        })
        .await?,
    ))
}

/// Reminders, newest first: the caller's own, or everyone's for admins (optionally one
/// reviewer's).
#[utoipa::path(get, path = "/v1/reviews/reminders", tag = "reviews", params(ReminderQuery),
    security(("bearer" = [])), responses((status = 200, body = ReminderPage),
        (status = 403, body = ApiErrorBody)))]
pub async fn reminders(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ReminderQuery>,
) -> Result<Json<ReminderPage>, ApiError> {
    if let Some(r) = &query.reviewer {
        check_email(r)?;
    }
    let admin = policy::is_admin(&caller.person);
    if !admin
        && query
            .reviewer
            .as_deref()
            .is_some_and(|r| !r.eq_ignore_ascii_case(&caller.person.email))
    {
        return Err(ApiError::forbidden(format!(
            "{} may read only their own reminders",
            caller.person.email
        )));
    }
    let restrict = (!admin).then_some(caller.person.email);
    Ok(Json(
        blocking(&state, move |s| {
            s.list_reminders(&query, restrict.as_deref())
        })
        .await?,
    ))
}

/// One review item with its history (its reviewer, admins and auditors).
#[utoipa::path(get, path = "/v1/review-items/{id}", tag = "reviews",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReviewItem), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn show_item(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ReviewItem>, ApiError> {
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            s.review_item(id, &|f| reviews::may_read_item(&person, f))
        })
        .await?,
    ))
}

/// Decide one item: `certify` stamps the grant as certified now; `revoke` removes the grant at
/// once (audited as `grant.remove`). Only the item's reviewer or an admin. Repeating the same
/// decision changes nothing; a changed mind before close is recorded in the item's history
/// and the audit log (a revoke taken back restores the grant). After close: 409.
#[utoipa::path(post, path = "/v1/review-items/{id}/decision", tag = "reviews",
    params(("id" = i64, Path)), request_body = DecideItem, security(("bearer" = [])),
    responses((status = 200, body = DecisionOutcome), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn decide_item(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DecideItem>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    if let Some(j) = &req.justification {
        check_free_text("justification", j, 1000)?;
    }
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            s.decide_item(&actor, id, &req, s.clock().now(), &|f| {
                reviews::may_decide(&person, f)
            })
        })
        .await?,
    ))
}

/// Give one item to another reviewer (admins).
#[utoipa::path(post, path = "/v1/review-items/{id}/reassign", tag = "reviews",
    params(("id" = i64, Path)), request_body = ReassignItems, security(("bearer" = [])),
    responses((status = 200, body = ReassignOutcome), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn reassign_item(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReassignItems>,
) -> Result<Json<ReassignOutcome>, ApiError> {
    reviews::may_administer(&caller.person)?;
    check_reassign(&req)?;
    let actor = caller.actor();
    Ok(Json(
        blocking(&state, move |s| {
            s.reassign_items(&actor, &ReassignTarget::Item(id), &req, s.clock().now())
        })
        .await?,
    ))
}

/// An agent's scope diff: each scope used (last use) or unused for N days, added since the last
/// certification (who and when) or never certified, scopes removed since then, and a
/// recommendation per scope. For anyone who may read the agent.
#[utoipa::path(get, path = "/v1/agents/{id}/scope-diff", tag = "reviews",
    params(("id" = String, Path), ScopeDiffQuery), security(("bearer" = [])),
    responses((status = 200, body = ScopeDiff), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn scope_diff(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ScopeDiffQuery>,
) -> Result<Json<ScopeDiff>, ApiError> {
    let lookback = query.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS);
    if !(1..=365).contains(&lookback) {
        return Err(ApiError::invalid(
            "invalid_lookback",
            "lookback_days must be between 1 and 365",
        ));
    }
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            s.scope_diff(&id, lookback, s.clock().now(), &|f| {
                policy::may_read_agent(&person, f)
            })
        })
        .await?,
    ))
}

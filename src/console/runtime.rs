//! Carries out effects on tokio tasks and the filter thread and feeds their results back as
//! actions. The same [`Console`] runs under the terminal loop and under tests.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::action::{Action, Effect};
use super::app::{App, Tone};
use super::cache;
use super::config;
use super::filter::FilterWorker;
use super::inventory::Inventory;
use super::update::{self, update};
use crate::client::{Client, ClientResult, Secret};
use crate::model::AuditEvent;
use crate::model::api::AuditQuery;

/// How many audit events the detail shows.
pub const RECENT_AUDIT: usize = 30;
/// Agents asked for in "my reviews" (the registry's largest page).
/// Agents per page of the review queue; the screen asks for one more page as the cursor
/// nears the end of what it has (up to [`REVIEW_MAX`]).
pub const REVIEW_PAGE: u32 = 100;
pub const REVIEW_MAX: u32 = 500;
/// Change-feed page size.
pub const SYNC_PAGE: u32 = 5000;

/// Where the console connects and keeps its files. Nothing here is read from the environment:
/// the command line resolves it.
#[derive(Debug, Clone)]
pub struct Options {
    pub server: String,
    pub token: Secret,
    pub config_dir: PathBuf,
    /// None: keep no cache (nothing is written).
    pub cache_dir: Option<PathBuf>,
    /// `NO_COLOR` is set.
    pub no_color: bool,
}

impl Options {
    /// `NO_COLOR` as the convention says: set and not empty.
    pub fn no_color_from_env() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
    }
}

/// What background work sends back: an action, and whether it is the last word of its task.
/// Tasks are counted here, on the receiving side, so that "nothing pending" is never a race.
struct Msg {
    action: Action,
    done: bool,
}

/// Lets a task send intermediate actions (e.g. pages of the change feed).
#[derive(Clone)]
pub struct Reporter(UnboundedSender<Msg>);

impl Reporter {
    pub fn send(&self, action: Action) {
        let _ = self.0.send(Msg {
            action,
            done: false,
        });
    }
}

pub struct Console {
    pub app: App,
    client: Client,
    tx: UnboundedSender<Msg>,
    rx: UnboundedReceiver<Msg>,
    worker: FilterWorker,
    /// Tasks started whose final action has not been applied yet.
    tasks: usize,
    cache_path: Option<PathBuf>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Console {
    /// Reads the configuration (refusing a broken one) and the cache; touches no terminal and
    /// no network.
    pub fn open(options: Options) -> anyhow::Result<Console> {
        let loaded = config::load(&options.config_dir, options.no_color)?;
        let client = Client::new(&options.server, Some(options.token))?;
        let server = client.base_url().to_string();
        let cache_path = options
            .cache_dir
            .as_ref()
            .map(|d| cache::cache_file(d, &server));
        let mut note = None;
        let inventory = match cache_path.as_deref().map(cache::load) {
            Some(Ok(Some(inv))) if inv.server == server => inv,
            Some(Err(e)) => {
                note = Some(format!("{e}; starting from an empty view and syncing"));
                Inventory::new(&server)
            }
            _ => Inventory::new(&server),
        };
        let (tx, rx) = unbounded_channel();
        let worker = FilterWorker::spawn({
            let tx = tx.clone();
            move |outcome| {
                let _ = tx.send(Msg {
                    action: Action::Filtered(outcome),
                    done: false,
                });
            }
        });
        let mut app = App::new(
            &server,
            options.config_dir.clone(),
            inventory,
            loaded.theme,
            loaded.keymap,
            options.no_color,
            now(),
        );
        if let Some(note) = note {
            app.message = Some((Tone::Error, note));
        }
        Ok(Console {
            app,
            client,
            tx,
            rx,
            worker,
            tasks: 0,
            cache_path,
        })
    }

    pub fn cache_path(&self) -> Option<&std::path::Path> {
        self.cache_path.as_deref()
    }

    /// Signs in and starts syncing (through the first tick).
    pub fn start(&mut self) {
        self.dispatch(Action::Tick { now: now() });
    }

    pub fn dispatch(&mut self, action: Action) {
        for effect in update(&mut self.app, action) {
            self.run(effect);
        }
    }

    fn unwrap(&mut self, msg: Msg) -> Action {
        if msg.done {
            self.tasks -= 1;
        }
        msg.action
    }

    /// The next action from background work.
    pub async fn next(&mut self) -> Option<Action> {
        let msg = self.rx.recv().await?;
        Some(self.unwrap(msg))
    }

    /// Applies every action already waiting, without blocking.
    pub fn drain(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            let a = self.unwrap(msg);
            self.dispatch(a);
        }
    }

    /// True while a task or a filter job has not answered yet (each will send something).
    pub fn busy(&self) -> bool {
        self.tasks > 0 || self.app.filtering
    }

    /// Processes actions until every task and filter job has answered (tests and shutdown).
    /// Gives up after `limit` with an error, rather than hanging.
    pub async fn settle_within(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.drain();
            if !self.busy() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(a)) => self.dispatch(a),
                Ok(None) => anyhow::bail!("the console's channel closed"),
                Err(_) => anyhow::bail!("background work did not finish within {limit:?}"),
            }
        }
    }

    pub async fn settle(&mut self) -> anyhow::Result<()> {
        self.settle_within(Duration::from_secs(60)).await
    }

    /// Writes the cache one last time (if it changed) after in-flight saves finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.app.saving {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(a)) => self.dispatch(a),
                _ => break,
            }
        }
        if let Some(path) = self.cache_path.clone()
            && (self.app.cache_dirty || !path.exists())
            && !self.app.inventory.rows().is_empty()
        {
            if self.app.inventory.synced_at != self.app.synced_at {
                std::sync::Arc::make_mut(&mut self.app.inventory).synced_at = self.app.synced_at;
            }
            let inv = self.app.inventory.clone();
            tokio::task::spawn_blocking(move || cache::save(&path, &inv)).await??;
        }
        Ok(())
    }

    /// Runs `work` on a task; it may send intermediate actions and returns the final one.
    fn spawn<F, Fut>(&mut self, work: F)
    where
        F: FnOnce(Client, Reporter) -> Fut,
        Fut: Future<Output = Action> + Send + 'static,
    {
        self.tasks += 1;
        let tx = self.tx.clone();
        let fut = work(self.client.clone(), Reporter(self.tx.clone()));
        tokio::spawn(async move {
            let action = fut.await;
            let _ = tx.send(Msg { action, done: true });
        });
    }

    fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Filter(job) => self.worker.submit(job),
            // Witnessing the audit head (client::witness) runs beside the first call.
            Effect::LoadMe => self.spawn(|c, _| async move {
                let (_, me) = tokio::join!(crate::client::witness::witness_head(&c), c.me());
                Action::Me(me)
            }),
            Effect::Sync { after } => self.spawn(move |c, tx| async move {
                let mut cursor = after;
                loop {
                    match c.changes(cursor, SYNC_PAGE).await {
                        Ok(feed) => {
                            cursor = feed.cursor;
                            let more = feed.more;
                            tx.send(Action::SyncPage(feed));
                            if !more {
                                return Action::SyncDone(Ok(()));
                            }
                        }
                        Err(e) => return Action::SyncDone(Err(e)),
                    }
                }
            }),
            Effect::LoadDetail { id } => self.spawn(move |c, _| async move {
                let (detail, audit, tokens, activity) = tokio::join!(
                    c.agent(&id),
                    recent_audit(&c, &id),
                    c.agent_tokens(&id),
                    c.agent_activity_hourly(&id, 7)
                );
                Action::DetailLoaded {
                    id,
                    detail,
                    audit,
                    tokens,
                    activity,
                }
            }),
            Effect::SetOwner { id, owner } => self.spawn(move |c, _| async move {
                let result = c
                    .set_owner(
                        &id,
                        &crate::model::api::SetOwner {
                            owner,
                            reason: Some("assigned in the console".into()),
                        },
                    )
                    .await;
                Action::OwnerSet { id, result }
            }),
            Effect::AssignOwners { changes, undo } => self.spawn(move |c, _| async move {
                let results = assign_owners(&c, &changes, undo).await;
                Action::OwnersAssigned {
                    changes,
                    results,
                    undo,
                }
            }),
            Effect::BulkAssignOwner(confirmed) => {
                let order = confirmed.into_order();
                self.spawn(move |c, _| async move {
                    let results = assign_owners(&c, &order.changes, false).await;
                    Action::OwnersAssigned {
                        changes: order.changes,
                        results,
                        undo: false,
                    }
                })
            }
            Effect::LoadHandovers => {
                self.spawn(
                    move |c, _| async move { Action::HandoversLoaded(c.handovers(false).await) },
                )
            }
            Effect::LoadOwnerCandidates { agent_id } => self.spawn(move |c, _| async move {
                let result = c.owner_candidates(&agent_id, None, Some(500)).await;
                Action::OwnerCandidatesLoaded { agent_id, result }
            }),
            Effect::Revoke { id } => self.spawn(move |c, _| async move {
                let started = Instant::now();
                let result = c.revoke(&id, None).await;
                Action::Revoked {
                    id,
                    round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
                    result,
                }
            }),
            Effect::Suspend(confirmed) => {
                let order = confirmed.into_order();
                self.spawn(move |c, _| async move {
                    let started = Instant::now();
                    let result = c
                        .revoke(&order.id, Some("revoked from the reviews screen".into()))
                        .await;
                    Action::Revoked {
                        id: order.id,
                        round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
                        result,
                    }
                })
            }
            Effect::BulkRevoke(confirmed) => {
                let order = confirmed.into_order();
                self.spawn(move |c, _| async move {
                    let started = Instant::now();
                    let mut results = Vec::new();
                    for (id, _) in order.agents {
                        let r = c
                            .revoke(&id, Some("bulk revocation in the console".into()))
                            .await;
                        results.push((id, r));
                    }
                    Action::BulkRevoked {
                        round_trip_ms: started.elapsed().as_secs_f64() * 1000.0,
                        results,
                    }
                })
            }
            Effect::Reinstate(confirmed) => {
                let order = confirmed.into_order();
                self.spawn(move |c, _| async move {
                    let result = c.reinstate(&order.id, None).await;
                    Action::Reinstated {
                        id: order.id,
                        result,
                    }
                })
            }
            Effect::LoadPlan { id } => self.spawn(move |c, _| async move {
                let result = c.decommission_plan(&id).await;
                Action::PlanLoaded { id, result }
            }),
            Effect::Decommission(confirmed) => {
                let order = confirmed.into_order();
                self.spawn(move |c, _| async move {
                    let result = c.decommission(&order.id, None).await;
                    Action::Decommissioned {
                        id: order.id,
                        result,
                    }
                })
            }
            Effect::ExportEvidence { path } => self.spawn(move |c, _| async move {
                Action::EvidenceExported(export_evidence(&c, path).await)
            }),
            Effect::LoadTimeline {
                generation,
                query,
                append,
            } => self.spawn(move |c, _| async move {
                let result = c.timeline(&query).await;
                Action::TimelineLoaded {
                    generation,
                    append,
                    result,
                }
            }),
            Effect::LoadFanOut {
                seq,
                attempt,
                delay_ms,
            } => self.spawn(move |c, _| async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                let result = c.fan_out(seq).await;
                Action::FanOutLoaded {
                    seq,
                    attempt,
                    result,
                }
            }),
            Effect::AddNote { seq, text } => self.spawn(move |c, _| async move {
                let result = c.add_note(seq, &text).await;
                Action::NoteAdded { seq, result }
            }),
            Effect::LoadReviews(query) => {
                self.spawn(|c, _| async move { Action::ReviewsLoaded(c.my_reviews(&query).await) })
            }
            Effect::PreviewAccept {
                campaign_id,
                campaign_name,
                q,
                agent_ids,
            } => self.spawn(|c, _| async move {
                let req = crate::model::review::AcceptRecommendations {
                    q: q.clone(),
                    agent_ids: agent_ids.clone(),
                    dry_run: true,
                    ..Default::default()
                };
                let result = c.accept_recommendations(&campaign_id, &req).await;
                Action::AcceptPreviewed {
                    campaign_id,
                    campaign_name,
                    q,
                    agent_ids,
                    result,
                }
            }),
            Effect::Reassign(order) => self.spawn(|c, _| async move {
                let req = crate::model::review::ReassignItems {
                    reviewer: order.reviewer.clone(),
                    reason: None,
                };
                let result = if order.whole_agent {
                    c.reassign_agent(&order.campaign_id, &order.agent_id, &req)
                        .await
                } else {
                    c.reassign_item(order.item_id, &req).await
                };
                Action::Reassigned { order, result }
            }),
            Effect::AcceptRecommendations(confirmed) => {
                let order = confirmed.order().clone();
                self.spawn(|c, _| async move {
                    let req = crate::model::review::AcceptRecommendations {
                        q: order.q.clone(),
                        agent_ids: order.agent_ids.clone(),
                        expect: Some(order.items),
                        ..Default::default()
                    };
                    Action::RecommendationsAccepted(
                        c.accept_recommendations(&order.campaign_id, &req).await,
                    )
                })
            }
            Effect::Decide {
                item_id,
                verdict,
                justification,
            } => self.spawn(move |c, _| async move {
                let req = crate::model::review::DecideItem {
                    decision: verdict,
                    justification: justification.clone(),
                };
                let result = c.decide(item_id, &req).await;
                Action::Decided {
                    item_id,
                    verdict,
                    justification,
                    result,
                }
            }),
            Effect::CertifyUnchanged {
                campaign_id,
                agent_id,
            } => self.spawn(move |c, _| async move {
                let result = c.certify_unchanged(&campaign_id, &agent_id).await;
                Action::BulkCertified { agent_id, result }
            }),
            Effect::LoadCampaigns(purpose) => self.spawn(move |c, _| async move {
                let result = open_campaigns(&c).await;
                Action::CampaignsLoaded { purpose, result }
            }),
            Effect::CloseCampaign(confirmed) => {
                let order = confirmed.into_order();
                self.spawn(move |c, _| async move {
                    Action::CampaignClosed(c.close_campaign(&order.id).await.map(Box::new))
                })
            }
            Effect::CreateCampaign { request, draft } => self.spawn(move |c, _| async move {
                let result = c.create_campaign(&request).await.map(Box::new);
                Action::CampaignCreated { draft, result }
            }),
            Effect::LoadTheme { name, remember } => {
                let dir = self.app.config_dir.clone();
                self.spawn(move |_, _| async move {
                    let result = tokio::task::spawn_blocking(move || {
                        let theme = config::load_theme(&dir, &name).map_err(|e| match e {
                            config::ThemeLookup::Unknown(m) => m,
                            config::ThemeLookup::Broken(e) => e.to_string(),
                        })?;
                        if remember {
                            config::remember_theme(&dir, &name)
                                .map_err(|e| format!("theme {name} loaded, not remembered: {e}"))?;
                        }
                        Ok((name, theme))
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the theme reader failed: {e}")));
                    match result {
                        Ok((name, theme)) => Action::ThemeLoaded {
                            name,
                            result: Ok(theme),
                        },
                        Err(e) => Action::ThemeLoaded {
                            name: String::new(),
                            result: Err(e),
                        },
                    }
                });
            }
            Effect::ListThemes => {
                let dir = self.app.config_dir.clone();
                self.spawn(move |_, _| async move {
                    let names = tokio::task::spawn_blocking(move || config::theme_names(&dir))
                        .await
                        .unwrap_or_default();
                    Action::ThemeNames(names)
                });
            }
            Effect::LoadStreams => {
                self.spawn(|c, _| async move { Action::StreamsLoaded(c.streams().await) })
            }
            Effect::PauseStream(order) => {
                let order = order.into_order();
                self.spawn(move |c, _| async move {
                    let result = c.set_stream(&order.id, "pause", None).await;
                    Action::StreamSet {
                        id: order.id,
                        pause: true,
                        result,
                    }
                })
            }
            Effect::ResumeStream { id } => self.spawn(move |c, _| async move {
                let result = c.set_stream(&id, "resume", None).await;
                Action::StreamSet {
                    id,
                    pause: false,
                    result,
                }
            }),
            Effect::LoadApprovals => self.spawn(|c, _| async move {
                let query = crate::model::approvals::RequestQuery {
                    status: Some("pending".into()),
                    kind: None,
                };
                Action::ApprovalsLoaded(c.approvals(&query).await)
            }),
            Effect::LoadApprovalAgents(ids) => self.spawn(move |c, _| async move {
                let mut out = Vec::new();
                for id in ids {
                    let detail = c.agent(&id).await;
                    out.push((id, detail));
                }
                Action::ApprovalAgents(out)
            }),
            Effect::DecideApproval {
                id,
                approve,
                reason,
            } => self.spawn(move |c, _| async move {
                let result = if approve {
                    c.approve(&id, reason).await
                } else {
                    c.deny(&id, reason.unwrap_or_default()).await
                };
                Action::ApprovalDecided {
                    id,
                    approve,
                    result,
                }
            }),
            Effect::LoadCatalogue {
                agent_id,
                agent_name,
            } => self.spawn(move |c, _| async move {
                let result = c.resources().await;
                Action::CatalogueLoaded {
                    agent_id,
                    agent_name,
                    result,
                }
            }),
            Effect::AcknowledgeFlags {
                agent_id,
                ids,
                reason,
            } => self.spawn(move |c, _| async move {
                let mut results = Vec::with_capacity(ids.len());
                for id in ids {
                    let result = c.acknowledge_flag(&id, &reason).await;
                    results.push((id, result));
                }
                Action::FlagsAcknowledged { agent_id, results }
            }),
            Effect::RequestScope { agent_id, request } => self.spawn(move |c, _| async move {
                let result = c.request_scope(&agent_id, &request).await;
                Action::ScopeRequested {
                    agent_id,
                    scope: request.scope,
                    result,
                }
            }),
            Effect::SaveCache(inv) => {
                let path = self.cache_path.clone();
                self.spawn(move |_, _| async move {
                    let result = tokio::task::spawn_blocking(move || match path {
                        Some(p) => {
                            cache::save(&p, &inv).map_err(|e| format!("{}: {e}", p.display()))
                        }
                        None => Ok(()),
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the cache writer failed: {e}")));
                    Action::CacheSaved(result)
                });
            }
        }
    }

    /// Asks for a cache write now (tests, and before quitting).
    pub fn save_now(&mut self) {
        let effect = update::save(&mut self.app);
        self.run(effect);
    }
}

/// Every open campaign with its progress per reviewer and team.
async fn open_campaigns(c: &Client) -> ClientResult<Vec<crate::model::review::CampaignDetail>> {
    use crate::model::review::{CampaignQuery, CampaignStatus};
    let list = c
        .campaigns(&CampaignQuery {
            status: Some(CampaignStatus::Open),
        })
        .await?;
    let mut out = Vec::new();
    for campaign in list {
        out.push(c.campaign(&campaign.id).await?);
    }
    Ok(out)
}

/// The latest audit events about an agent (the API pages oldest first).
async fn recent_audit(c: &Client, id: &str) -> ClientResult<Vec<AuditEvent>> {
    let mut keep = VecDeque::new();
    let mut after = None;
    for _ in 0..50 {
        let page = c
            .agent_audit(
                id,
                &AuditQuery {
                    after,
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .await?;
        keep.extend(page.events);
        while keep.len() > RECENT_AUDIT {
            keep.pop_front();
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(keep.into())
}

/// Downloads the evidence of every open campaign: to `path` when there is one campaign (or
/// `path` is a folder), else to `evidence-CAMPAIGN.csv` in the current folder. Written beside
/// the target and renamed at the end, so that a broken-off export never looks complete.
async fn export_evidence(
    c: &crate::client::Client,
    path: Option<std::path::PathBuf>,
) -> Result<Vec<(std::path::PathBuf, u64)>, String> {
    use crate::model::review::{CampaignQuery, CampaignStatus, ExportFormat};
    use std::io::Write;
    let open = c
        .campaigns(&CampaignQuery {
            status: Some(CampaignStatus::Open),
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut written = Vec::new();
    for campaign in &open {
        let file_name = format!("evidence-{}.csv", campaign.id);
        let target = match &path {
            Some(p) if p.is_dir() => p.join(&file_name),
            Some(p) if open.len() == 1 => p.clone(),
            Some(p) => {
                return Err(format!(
                    "{} open campaigns: give a folder, not the file {}",
                    open.len(),
                    p.display()
                ));
            }
            None => std::path::PathBuf::from(&file_name),
        };
        let mut download = c
            .export_campaign(&campaign.id, ExportFormat::Csv)
            .await
            .map_err(|e| e.to_string())?;
        let partial = target.with_extension("csv.partial");
        let result = async {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&partial)
                    .map_err(|e| format!("cannot create {}: {e}", partial.display()))?,
            );
            let mut bytes = 0u64;
            while let Some(chunk) = download.chunk().await.map_err(|e| e.to_string())? {
                file.write_all(&chunk).map_err(|e| e.to_string())?;
                bytes += chunk.len() as u64;
            }
            file.into_inner()
                .map_err(|e| e.into_error().to_string())?
                .sync_all()
                .map_err(|e| e.to_string())?;
            std::fs::rename(&partial, &target)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            Ok::<u64, String>(bytes)
        }
        .await;
        match result {
            Ok(bytes) => written.push((target, bytes)),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        }
    }
    Ok(written)
}

/// Carries out owner changes one agent after another (each audited by the registry); an undo
/// clears the owner where the agent had none before.
async fn assign_owners(
    c: &crate::client::Client,
    changes: &[crate::console::action::OwnerChange],
    undo: bool,
) -> Vec<crate::client::ClientResult<crate::model::Agent>> {
    let reason = if undo {
        "undone in the console"
    } else {
        "assigned in the console"
    };
    let mut results = Vec::with_capacity(changes.len());
    for ch in changes {
        let result = match &ch.after {
            Some(owner) => {
                c.set_owner(
                    &ch.id,
                    &crate::model::api::SetOwner {
                        owner: owner.clone(),
                        reason: Some(reason.into()),
                    },
                )
                .await
            }
            None => c.clear_owner(&ch.id, Some(reason.into())).await,
        };
        results.push(result);
    }
    results
}

//! The clock, the change feed, `/v1/me` and the cache.

use std::sync::Arc;

use super::filter::refilter;
use super::{clean, went_offline};
use crate::console::action::{Action, Effect};
use crate::console::app::{App, Link, Screen, Tone, round_now};
use crate::console::filter::QuickFilter;

/// How often the console asks the change feed while the registry answers (seconds).
pub const SYNC_EVERY: i64 = 3;
/// How often it retries while the registry is unreachable.
pub const RETRY_EVERY: i64 = 5;
/// How often a changed cache is written.
pub const SAVE_EVERY: i64 = 30;

pub(super) fn on_sync(app: &mut App, action: Action, fx: &mut Vec<Effect>) {
    match action {
        Action::Me(result) => {
            app.me_in_flight = false;
            match result {
                Ok(me) => {
                    let email = me.person.email.clone();
                    let inv = Arc::make_mut(&mut app.inventory);
                    if inv.persona.as_deref().is_some_and(|p| p != email) {
                        // The cache was another person's view: start over.
                        inv.clear();
                        // Nothing may point at the old rows any more.
                        app.view = Arc::from(Vec::new());
                        app.view_spec = None;
                        app.cursor.reset();
                        app.marks.clear();
                        app.screen = Screen::Inventory;
                        app.overlay = None;
                        app.message = Some((
                            Tone::Info,
                            format!(
                                "signed in as {email}; the cached view was another person's, resyncing"
                            ),
                        ));
                    }
                    inv.persona = Some(email.clone());
                    app.spec.me = Some(email);
                    app.me = Some(me);
                    let first = app.link != Link::Online;
                    app.link = Link::Online;
                    refilter(app, fx);
                    start_sync(app, fx);
                    if first {
                        fx.push(Effect::LoadHandovers);
                    }
                }
                Err(e) => went_offline(app, &e),
            }
        }
        Action::SyncPage(feed) => {
            if let Some(total) = feed.total {
                app.sync_progress = Some((0, total));
            }
            if let Some((received, _)) = &mut app.sync_progress {
                *received += feed.agents.len() as u64;
            }
            let inv = Arc::make_mut(&mut app.inventory);
            inv.apply(&feed);
            app.sync_dirty = true;
            app.cache_dirty = true;
        }
        Action::SyncDone(result) => {
            app.sync_in_flight = false;
            app.sync_progress = None;
            if std::mem::take(&mut app.sync_requested) {
                app.message = Some(match &result {
                    Ok(()) => (Tone::Ok, "up to date with the registry".to_string()),
                    Err(e) => (
                        Tone::Error,
                        format!("sync failed: {}", clean(&e.to_string())),
                    ),
                });
            }
            match result {
                Ok(()) => {
                    app.synced_at = Some(app.now);
                    if app.link != Link::Online {
                        app.link = Link::Online;
                    }
                }
                Err(e) => went_offline(app, &e),
            }
            if std::mem::take(&mut app.sync_dirty) {
                refilter(app, fx);
                if let Screen::Detail(d) = &app.screen
                    && d.detail.is_some()
                {
                    // Keep the open detail fresh as well.
                    let id = d.id.clone();
                    fx.push(Effect::LoadDetail { id });
                }
            }
        }
        Action::CacheSaved(result) => {
            app.saving = false;
            if let Err(e) = result {
                app.message = Some((Tone::Error, format!("cannot write the cache: {e}")));
            }
        }
        _ => {}
    }
}

pub(crate) fn start_sync(app: &mut App, fx: &mut Vec<Effect>) {
    if app.sync_in_flight || app.me.is_none() {
        return;
    }
    app.sync_in_flight = true;
    app.last_sync_attempt = app.now;
    fx.push(Effect::Sync {
        after: app.inventory.cursor,
    });
    // What waits for me rides on the same tick (the header counts it on every screen).
    super::approvals::poll(app, fx);
    // The streams screen's lag and last errors move: it asks again on the same tick.
    super::streams::poll(app, fx);
}

pub(super) fn on_tick(app: &mut App, now: i64, fx: &mut Vec<Effect>) {
    app.now = now;
    let hour = round_now(now);
    if hour != app.spec.now {
        app.spec.now = hour;
        if app.spec.quick == QuickFilter::Stale {
            refilter(app, fx);
        }
    }
    if app.me.is_none() {
        if !app.me_in_flight && now - app.last_sync_attempt >= RETRY_EVERY {
            app.me_in_flight = true;
            app.last_sync_attempt = now;
            fx.push(Effect::LoadMe);
        }
    } else {
        let every = if app.read_only() {
            RETRY_EVERY
        } else {
            SYNC_EVERY
        };
        if !app.sync_in_flight && now - app.last_sync_attempt >= every {
            start_sync(app, fx);
        }
    }
    if app.cache_dirty && !app.saving && now - app.last_save >= SAVE_EVERY {
        fx.push(save(app));
    }
}

/// Asks for the cache to be written with the current rows.
pub fn save(app: &mut App) -> Effect {
    if app.inventory.synced_at != app.synced_at {
        Arc::make_mut(&mut app.inventory).synced_at = app.synced_at;
    }
    app.saving = true;
    app.cache_dirty = false;
    app.last_save = app.now;
    Effect::SaveCache(app.inventory.clone())
}

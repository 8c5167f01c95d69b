//! The inventory's view: filter jobs out, their answers in, and the cursor over the view.

use super::super::layout;
use crate::console::action::Effect;
use crate::console::app::{App, Screen};
use crate::console::filter::{FilterJob, FilterOutcome, QuickFilter};

/// Submits a filter job for the current spec.
pub fn refilter(app: &mut App, fx: &mut Vec<Effect>) {
    app.generation += 1;
    app.filtering = true;
    let narrow = match &app.view_spec {
        Some(prev) if app.spec.narrows(prev) && app.view_version == app.inventory.version => {
            Some(app.view.clone())
        }
        _ => None,
    };
    fx.push(Effect::Filter(FilterJob {
        generation: app.generation,
        spec: app.spec.clone(),
        inventory: app.inventory.clone(),
        narrow,
    }));
}

pub(super) fn on_filtered(app: &mut App, outcome: FilterOutcome) {
    if outcome.generation != app.generation {
        return; // an answer to a question nobody is asking any more
    }
    let previous_row = app.selected_row();
    let query_changed = app
        .view_spec
        .as_ref()
        .is_none_or(|s| s.query != outcome.spec.query);
    // A new sort or quick filter starts at the top; fresh data keeps the cursor on its agent.
    let reordered = app
        .view_spec
        .as_ref()
        .is_some_and(|s| s.sort != outcome.spec.sort || s.quick != outcome.spec.quick);
    let position = app.cursor.selected;
    app.view = outcome.rows;
    app.view_version = outcome.inventory_version;
    app.view_spec = Some(outcome.spec);
    app.filtering = false;
    app.last_filter_ms = Some(outcome.elapsed_ms);
    if let Some(n) = outcome.scope_len {
        app.scope_len = n;
    }
    if app.counts.0 != app.inventory.version {
        // The header's counts, once per inventory version (never computed while drawing).
        app.counts = (app.inventory.version, app.inventory.counts());
    }
    let (len, page) = (app.view.len(), layout::table_rows(app));
    match (outcome.best, previous_row) {
        // A jump to the best match puts it mid-screen, with its neighbours around it.
        (Some(best), _) if query_changed => app.cursor.jump_to(best, len, page),
        _ if reordered => app.cursor.reset(),
        (_, Some(row)) => {
            let at = app.view.iter().position(|&r| r == row).unwrap_or(position);
            app.cursor.select(at, len, page);
        }
        _ => app.cursor.select(position, len, page),
    }
    keep_visible(app);
}

/// Brings the inventory's cursor back within the view and on screen.
pub fn keep_visible(app: &mut App) {
    let (len, page) = (app.view.len(), layout::table_rows(app));
    app.cursor.keep_visible(len, page);
}

/// Moves the cursor of the screen on show: the inventory's row, the review item, the detail's
/// scroll.
pub fn move_by(app: &mut App, delta: isize) {
    let page = layout::table_rows(app);
    let agent_page = layout::review_agent_rows(app);
    if let Screen::Reviews(r) = &mut app.screen {
        r.move_by(delta, agent_page);
        return;
    }
    if let Screen::Approvals(_) = &app.screen {
        super::approvals::move_by(app, delta);
        return;
    }
    if let Screen::Streams(_) = &app.screen {
        super::streams::move_by(app, delta);
        return;
    }
    if let Screen::Detail(_) = &app.screen {
        let len = crate::console::detail_text::length(app);
        if let Screen::Detail(d) = &mut app.screen {
            d.scroll.move_by(delta, len, page);
        }
        return;
    }
    app.cursor.move_by(delta, app.view.len(), page);
}

pub(super) fn set_quick(app: &mut App, q: QuickFilter, fx: &mut Vec<Effect>) {
    app.screen = Screen::Inventory;
    if app.spec.quick != q {
        app.spec.quick = q;
        app.cursor.reset();
        refilter(app, fx);
    }
}

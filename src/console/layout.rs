//! Where things go on screen, shared by `update` (how far a page moves) and `views` (where to
//! draw), so that neither needs the other.

use ratatui::layout::{Constraint, Layout, Rect};

use super::app::{App, Link, Screen};

/// The screen's bands, top to bottom.
pub struct Areas {
    pub header: Rect,
    pub banner: Option<Rect>,
    pub tabs: Rect,
    pub body: Rect,
    pub status: Rect,
    pub footer: Rect,
}

pub fn areas(app: &App, area: Rect) -> Areas {
    let banner = matches!(app.link, Link::Offline { .. });
    let [header, banner_area, tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner as u16),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        header,
        banner: banner.then_some(banner_area),
        tabs,
        body,
        status,
        footer,
    }
}

/// The whole terminal.
pub fn screen(app: &App) -> Rect {
    Rect::new(0, 0, app.width, app.height)
}

/// The body band: what the current screen has to draw in.
pub fn body(app: &App) -> Rect {
    areas(app, screen(app)).body
}

/// How many table rows fit (what a page is for PageUp/PageDown).
pub fn table_rows(app: &App) -> usize {
    let body = body(app);
    match app.screen {
        // The table's own header takes one line.
        Screen::Inventory => body.height.saturating_sub(1) as usize,
        Screen::Detail(_) | Screen::Reviews(_) | Screen::Approvals(_) | Screen::Streams(_) => {
            body.height as usize
        }
    }
}

/// The reviews screen: the agents list on the left, a divider, the selected agent on the right.
pub fn reviews(body: Rect) -> (Rect, Rect, Rect) {
    let left_w = (body.width / 3).clamp(24, 40);
    let [left, divider, right] = Layout::horizontal([
        Constraint::Length(left_w),
        Constraint::Length(1),
        Constraint::Min(20),
    ])
    .areas(body);
    (left, divider, right)
}

/// Rows of the reviews screen's agents list (its header takes one line).
pub fn review_agent_rows(app: &App) -> usize {
    reviews(body(app)).0.height.saturating_sub(1) as usize
}

/// The help overlay's frame: the whole screen but the header and the footer.
pub fn help(area: Rect) -> Rect {
    Rect::new(
        area.x,
        area.y + 1,
        area.width,
        area.height.saturating_sub(2),
    )
}

/// Lines of help text on screen at once (inside the frame's borders).
pub fn help_rows(app: &App) -> usize {
    help(screen(app)).height.saturating_sub(2) as usize
}

/// Whether the help lays out in two columns.
pub fn help_two_columns(app: &App) -> bool {
    help(screen(app)).width.saturating_sub(2) >= 110
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The approvals screen: the queue on top (its header line, then one line per request), the
/// selected request's particulars below.
pub fn approvals(body: Rect) -> (Rect, Rect) {
    let list = (body.height * 2 / 5).max(4).min(body.height);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(list), Constraint::Min(0)]).areas(body);
    (top, bottom)
}

/// The streams screen: the list above, the selected stream below (the approvals' split).
pub fn streams(body: Rect) -> (Rect, Rect) {
    approvals(body)
}

/// Streams on screen at once.
pub fn stream_rows(app: &App) -> usize {
    (streams(body(app)).0.height as usize)
        .saturating_sub(1)
        .max(1)
}

/// Requests on screen at once in the approvals queue.
pub fn approval_rows(app: &App) -> usize {
    (approvals(body(app)).0.height as usize)
        .saturating_sub(1)
        .max(1)
}

//! The agent detail: its text (built by `detail_text`) in the body, scrolled, and below it the
//! last 7 days of hourly activity drawn as a ratatui `Chart` against the agent's baseline band.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};

use crate::console::app::{App, DetailState};
use crate::console::detail_text::lines;
use crate::console::theme::Slot;
use crate::model::activity::HourlySeries;

pub fn draw(frame: &mut Frame, app: &App, d: &DetailState, area: Rect) {
    let (text_area, chart_area) = match &d.activity {
        // Drawn when there is something to see (an agent quiet all week keeps its whole body
        // for the text).
        Some(Ok(series))
            if series.points.iter().any(|p| p.accepted + p.refused > 0) && area.height >= 16 =>
        {
            let h = if area.height >= 30 { 10 } else { 7 };
            let [text, chart] =
                Layout::vertical([Constraint::Min(1), Constraint::Length(h)]).areas(area);
            (text, Some((chart, series)))
        }
        _ => (area, None),
    };
    let lines = lines(app, d, text_area.width as usize);
    let max_scroll = lines.len().saturating_sub(text_area.height as usize);
    let scroll = d.scroll.offset.min(max_scroll) as u16;
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), text_area);
    if let Some((chart_area, series)) = chart_area {
        activity_chart(frame, app, series, chart_area);
    }
}

/// Requests per hour (accepted + refused) over the period, with the band's median and top as
/// flat lines and, when the agent is judged, the spike threshold as the title says.
fn activity_chart(frame: &mut Frame, app: &App, series: &HourlySeries, area: Rect) {
    let t = &app.theme;
    let data: Vec<(f64, f64)> = series
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| (i as f64, f64::from(p.accepted) + f64::from(p.refused)))
        .collect();
    let refused: Vec<(f64, f64)> = series
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.refused > 0)
        .map(|(i, p)| (i as f64, f64::from(p.refused)))
        .collect();
    let end = (data.len().max(2) - 1) as f64;
    let b = &series.baseline;
    let median = vec![(0.0, b.median), (end, b.median)];
    let high = vec![(0.0, b.high), (end, b.high)];
    let peak = data.iter().map(|(_, y)| *y).fold(0.0_f64, f64::max);
    let top = peak.max(b.high).max(1.0) * 1.1;
    let mut datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.style(Slot::Dim))
            .data(&median),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.style(Slot::Hint))
            .data(&high),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.style(Slot::Title))
            .data(&data),
    ];
    if !refused.is_empty() {
        datasets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(t.style(Slot::Flag))
                .data(&refused),
        );
    }
    let band = if b.judging {
        format!(
            "band {:.0}–{:.0}/h, spike > {:.0}/h",
            b.median, b.high, b.spike_threshold
        )
    } else {
        format!("learning: {} days of history, not judged yet", b.days)
    };
    let title = Line::from(vec![
        Span::styled(
            format!(" ACTIVITY {} days, per hour ", series.days),
            t.style(Slot::Title),
        ),
        Span::styled(format!("· {band} · peak {peak:.0}/h "), t.style(Slot::Dim)),
    ]);
    let chart = Chart::new(datasets)
        .block(Block::default().borders(Borders::TOP).title(title))
        .x_axis(
            Axis::default()
                .bounds([0.0, end])
                .style(t.style(Slot::Dim))
                .labels([
                    Span::raw(format!("-{}d", series.days)),
                    Span::raw(format!("-{}d", series.days / 2)),
                    Span::raw("now"),
                ]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .style(t.style(Slot::Dim))
                .labels([Span::raw("0"), Span::raw(format!("{:.0}", top))]),
        )
        .legend_position(None)
        .style(Style::default());
    frame.render_widget(chart, area);
}

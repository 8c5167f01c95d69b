//! One cursor for every list the console shows (the inventory table, the review queue, the owner
//! picker, the help, the detail): the selected position and the first visible row, kept so that
//! the selection is always on screen. Modelled on bottom's `DataTableState`: the list's length
//! and the page height are passed in, so the cursor never holds a stale copy of either.

/// A selection in a list of `len` entries shown `page` rows at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListCursor {
    /// The selected entry (0 when the list is empty).
    pub selected: usize,
    /// The first entry on screen.
    pub offset: usize,
}

impl ListCursor {
    /// Moves by `delta` entries (negative: up), stopping at the ends.
    pub fn move_by(&mut self, delta: isize, len: usize, page: usize) {
        if len == 0 {
            *self = ListCursor::default();
            return;
        }
        let to = (self.selected as isize).saturating_add(delta);
        self.selected = to.clamp(0, len as isize - 1) as usize;
        self.keep_visible(len, page);
    }

    pub fn page_down(&mut self, len: usize, page: usize) {
        self.move_by(page.max(1) as isize, len, page);
    }

    pub fn page_up(&mut self, len: usize, page: usize) {
        self.move_by(-(page.max(1) as isize), len, page);
    }

    pub fn home(&mut self, len: usize, page: usize) {
        self.selected = 0;
        self.keep_visible(len, page);
    }

    pub fn end(&mut self, len: usize, page: usize) {
        self.selected = len.saturating_sub(1);
        self.keep_visible(len, page);
    }

    /// Selects an entry, scrolling only as far as needed to show it.
    pub fn select(&mut self, index: usize, len: usize, page: usize) {
        self.selected = index;
        self.keep_visible(len, page);
    }

    /// Selects an entry; when it is off screen, puts it mid-page with its neighbours around it.
    pub fn jump_to(&mut self, index: usize, len: usize, page: usize) {
        let page = page.max(1);
        if index < self.offset || index >= self.offset + page {
            self.offset = index.saturating_sub(page / 2);
        }
        self.select(index, len, page);
    }

    /// Back to the top (a new sort or view).
    pub fn reset(&mut self) {
        *self = ListCursor::default();
    }

    /// Brings the selection within the list and on screen, with no empty rows below the last
    /// entry when the list is longer than a page.
    pub fn keep_visible(&mut self, len: usize, page: usize) {
        let page = page.max(1);
        if len == 0 {
            *self = ListCursor::default();
            return;
        }
        self.selected = self.selected.min(len - 1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(len.saturating_sub(page));
    }

    /// The entries on screen: `offset..offset + page`, cut at the end of the list.
    pub fn visible(&self, len: usize, page: usize) -> std::ops::Range<usize> {
        let start = self.offset.min(len);
        start..(start + page).min(len)
    }
}

/// A scroll position over text of `len` lines shown `page` at a time (the help, the detail):
/// the same cursor, where the offset is what moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scroll {
    pub offset: usize,
}

impl Scroll {
    pub fn max(len: usize, page: usize) -> usize {
        len.saturating_sub(page.max(1))
    }

    pub fn move_by(&mut self, delta: isize, len: usize, page: usize) {
        let to = (self.offset as isize).saturating_add(delta);
        self.offset = to.clamp(0, Scroll::max(len, page) as isize) as usize;
    }

    pub fn home(&mut self) {
        self.offset = 0;
    }

    pub fn end(&mut self, len: usize, page: usize) {
        self.offset = Scroll::max(len, page);
    }

    /// Within bounds again after the text or the page changed.
    pub fn clamp(&mut self, len: usize, page: usize) {
        self.offset = self.offset.min(Scroll::max(len, page));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_stop_at_the_ends_and_keep_the_selection_on_screen() {
        let mut c = ListCursor::default();
        c.move_by(-1, 100, 10);
        assert_eq!(c, ListCursor::default());
        c.move_by(9, 100, 10);
        assert_eq!(
            (c.selected, c.offset),
            (9, 0),
            "the last row of the first page"
        );
        c.move_by(1, 100, 10);
        assert_eq!(
            (c.selected, c.offset),
            (10, 1),
            "scrolls by one, not a page"
        );
        c.page_down(100, 10);
        assert_eq!((c.selected, c.offset), (20, 11));
        c.end(100, 10);
        assert_eq!((c.selected, c.offset), (99, 90));
        c.page_down(100, 10);
        assert_eq!((c.selected, c.offset), (99, 90), "stays on the last row");
        c.page_up(100, 10);
        assert_eq!((c.selected, c.offset), (89, 89));
        c.home(100, 10);
        assert_eq!((c.selected, c.offset), (0, 0));
        c.move_by(isize::MAX, 100, 10);
        assert_eq!(c.selected, 99, "no overflow on huge moves");
        c.move_by(isize::MIN, 100, 10);
        assert_eq!(c.selected, 0);
    }

    #[test]
    fn a_shrinking_list_or_page_pulls_the_cursor_back() {
        let mut c = ListCursor {
            selected: 50,
            offset: 45,
        };
        c.keep_visible(20, 10);
        assert_eq!(
            (c.selected, c.offset),
            (19, 10),
            "no empty rows below the end"
        );
        c.keep_visible(0, 10);
        assert_eq!(c, ListCursor::default());
        let mut c = ListCursor {
            selected: 30,
            offset: 25,
        };
        c.keep_visible(100, 3);
        assert_eq!(
            (c.selected, c.offset),
            (30, 28),
            "a smaller page follows the selection"
        );
        assert_eq!(c.visible(100, 3), 28..31);
        assert_eq!(c.visible(29, 3), 28..29);
    }

    #[test]
    fn a_jump_centres_only_what_is_off_screen() {
        let mut c = ListCursor::default();
        c.jump_to(5, 100, 10);
        assert_eq!((c.selected, c.offset), (5, 0), "on screen: no scroll");
        c.jump_to(60, 100, 10);
        assert_eq!((c.selected, c.offset), (60, 55), "off screen: mid-page");
        c.jump_to(99, 100, 10);
        assert_eq!((c.selected, c.offset), (99, 90));
        c.select(2, 100, 10);
        assert_eq!((c.selected, c.offset), (2, 2));
        c.reset();
        assert_eq!(c, ListCursor::default());
    }

    #[test]
    fn scroll_stays_within_the_text() {
        let mut s = Scroll::default();
        s.move_by(5, 12, 10);
        assert_eq!(
            s.offset, 2,
            "12 lines on a 10-line page scroll by 2 at most"
        );
        s.move_by(-5, 12, 10);
        assert_eq!(s.offset, 0);
        s.end(30, 10);
        assert_eq!(s.offset, 20);
        s.clamp(25, 10);
        assert_eq!(s.offset, 15);
        s.move_by(1, 5, 10);
        assert_eq!(s.offset, 0, "text shorter than a page does not scroll");
        s.end(30, 10);
        s.home();
        assert_eq!(s.offset, 0);
    }
}

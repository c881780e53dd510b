//! Go's `text/tabwriter` with left alignment and space padding, as Docker's tables use it
//! (`minwidth 10, tabwidth 1, padding 3`): tab-terminated cells of consecutive lines form
//! column blocks whose width is the widest cell plus padding; the cell after the last tab is
//! not aligned; a line without tabs ends the blocks above it.

/// Buffers text and aligns it on [`TabWriter::flush`].
pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    lines: Vec<Vec<String>>,
    partial: String,
    out: String,
}

impl TabWriter {
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter {
            minwidth,
            padding,
            lines: Vec::new(),
            partial: String::new(),
            out: String::new(),
        }
    }

    /// Docker's table settings.
    pub fn docker() -> TabWriter {
        TabWriter::new(10, 3)
    }

    pub fn write(&mut self, s: &str) {
        for ch in s.chars() {
            if ch == '\n' {
                let line = std::mem::take(&mut self.partial);
                let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
                let single = cells.len() == 1;
                self.lines.push(cells);
                if single {
                    // A line without tabs ends every column block: format what we have.
                    self.format_all();
                }
            } else {
                self.partial.push(ch);
            }
        }
    }

    /// Aligns everything written and returns the text.
    pub fn flush(mut self) -> String {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.lines
                .push(line.split('\t').map(str::to_string).collect());
            self.format_all();
            // The last line had no newline.
            if self.out.ends_with('\n') {
                self.out.pop();
            }
        } else {
            self.format_all();
        }
        self.out
    }

    fn format_all(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        let mut widths = Vec::new();
        self.format(&lines, &mut widths, 0, lines.len());
    }

    fn format(&mut self, lines: &[Vec<String>], widths: &mut Vec<usize>, l0: usize, l1: usize) {
        let column = widths.len();
        let mut line0 = l0;
        let mut this = l0;
        while this < l1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A cell in this column: print the lines above the block, then size the block.
            self.write_lines(lines, widths, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < l1 && column + 1 < lines[this].len() {
                let w = lines[this][column].chars().count() + self.padding;
                width = width.max(w);
                this += 1;
            }
            widths.push(width);
            self.format(lines, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, widths, line0, l1);
    }

    fn write_lines(&mut self, lines: &[Vec<String>], widths: &[usize], l0: usize, l1: usize) {
        for line in &lines[l0..l1] {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if j + 1 < line.len() && j < widths.len() {
                    let n = widths[j].saturating_sub(cell.chars().count());
                    self.out.extend(std::iter::repeat_n(' ', n));
                }
            }
            self.out.push('\n');
        }
    }
}

/// Aligns `text` as Docker's tables do.
pub fn align(text: &str) -> String {
    let mut tw = TabWriter::docker();
    tw.write(text);
    tw.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_table() {
        let t = align("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tx\n");
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n"
        );
    }

    #[test]
    fn wide_cells_and_minwidth() {
        let t = align("A\tB\nlonger-than-ten\tc\n");
        assert_eq!(t, "A                 B\nlonger-than-ten   c\n");
    }

    #[test]
    fn lines_without_tabs_break_blocks() {
        let t = align("a\tb\nplain line\nlongcell12345\tc\n");
        assert_eq!(t, "a         b\nplain line\nlongcell12345   c\n");
    }

    #[test]
    fn ragged_rows() {
        // The second line has one more column than the first: its second column is its own block.
        let t = align("a\tb\nc\td\te\n");
        assert_eq!(t, "a         b\nc         d         e\n");
    }
}

#pragma once

// A table for the terminal: a header row and rows of cells, each column as
// wide as its widest cell, two spaces between columns, no padding after the
// last. Cells come from the master (job names, labels, reasons others may
// have written), so control characters are shown as '?' and never reach the
// terminal as escape sequences. Widths count UTF-8 characters, not bytes.
//
// A value type; thread-compatible.

#include <string>
#include <vector>

namespace constellation::cli {

class Table {
 public:
  enum class Align { kLeft, kRight };

  // One entry per column; `align` may be shorter (the rest align left).
  explicit Table(std::vector<std::string> header, std::vector<Align> align = {});

  // Aborts unless `cells` has one entry per column.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // The header and every row, each line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;  // [0] is the header
  std::vector<Align> align_;
};

// `text` with every control character (and DEL) replaced by '?'.
std::string Printable(const std::string& text);

// The number of UTF-8 characters in `text`.
size_t DisplayWidth(const std::string& text);

}  // namespace constellation::cli

#include "cli/table.h"

#include "gtest/gtest.h"

namespace constellation::cli {
namespace {

TEST(Table, ColumnsAreAsWideAsTheirWidestCell) {
  Table t({"JOB", "NAME", "STATE"});
  t.AddRow({"1", "fibonacci", "running"});
  t.AddRow({"12", "x", "succeeded"});
  EXPECT_EQ(t.Render(),
            "JOB  NAME       STATE\n"
            "1    fibonacci  running\n"
            "12   x          succeeded\n");
  EXPECT_EQ(t.rows(), 3u);
}

TEST(Table, RightAlignedColumns) {
  Table t({"NODE", "PROCESSES"}, {Table::Align::kLeft, Table::Align::kRight});
  t.AddRow({"10.0.0.1:9", "3"});
  t.AddRow({"h:1", "12"});
  EXPECT_EQ(t.Render(),
            "NODE        PROCESSES\n"
            "10.0.0.1:9          3\n"
            "h:1                12\n");
}

TEST(Table, NoTrailingSpacesForEmptyLastCells) {
  Table t({"A", "B"});
  t.AddRow({"long value", ""});
  EXPECT_EQ(t.Render(), "A           B\nlong value\n");
}

TEST(Table, HeaderAloneWhenThereAreNoRows) {
  Table t({"JOB", "STATE"});
  EXPECT_EQ(t.Render(), "JOB  STATE\n");
}

TEST(Table, ControlCharactersNeverReachTheTerminal) {
  Table t({"NAME", "X"});
  t.AddRow({"evil\x1b[2J\nname\x7f", "y"});
  EXPECT_EQ(t.Render(), "NAME            X\nevil?[2J?name?  y\n");
}

TEST(Table, WidthCountsCharactersNotBytes) {
  EXPECT_EQ(DisplayWidth("h\xc3\xa9llo"), 5u);  // "héllo"
  Table t({"N", "S"});
  t.AddRow({"h\xc3\xa9", "1"});
  t.AddRow({"abc", "2"});
  EXPECT_EQ(t.Render(), "N    S\nh\xc3\xa9   1\nabc  2\n");
}

TEST(TableDeathTest, RowsMustMatchTheHeader) {
  Table t({"A", "B"});
  EXPECT_DEATH(t.AddRow({"1"}), "1 cells for 2 columns");
}

}  // namespace
}  // namespace constellation::cli

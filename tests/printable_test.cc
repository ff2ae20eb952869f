#include "base/printable.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "base/logger.h"
#include "tests/test_util.h"

namespace ember {
namespace {

TEST(PrintableTest, ValidUtf8PassesAndEverythingElseIsEscaped) {
  EXPECT_EQ(Printable("/srv/vm-1/rootfs.ext4"), "/srv/vm-1/rootfs.ext4");
  EXPECT_EQ(Printable("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\xa5"),
            "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\xa5");
  EXPECT_EQ(Printable("a\nb\r\tc\x7f"), "a\\x0ab\\x0d\\x09c\\x7f");
  EXPECT_EQ(Printable(std::string("nul\0end", 7)), "nul\\x00end");
  EXPECT_EQ(Printable("/\x92\xff"), "/\\x92\\xff");                  // lone continuation, 0xff
  EXPECT_EQ(Printable("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(Printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(Printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
  EXPECT_EQ(Printable("cut \xe2\x82"), "cut \\xe2\\x82");            // truncated at the end
}

// A path with a newline and invalid UTF-8 in an error: one log line, valid
// UTF-8, and no forged second line.
TEST(PrintableTest, ALogMessageCannotForgeALine) {
  testing::TempDir dir;
  LoggerOptions options;
  options.path = dir.File("ember.log");
  ASSERT_TRUE(ConfigureLogger(options).ok());
  spdlog::error("kernel_image_path {}: No such file",
                "/x\n2026-12-06T00:00:00.000000 [anonymous-instance] info VM started \x92");
  ASSERT_TRUE(ConfigureLogger(LoggerOptions{}).ok());  // back to stderr
  const std::string log = testing::ReadFile(dir.File("ember.log"));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_NE(log.find("error kernel_image_path /x\\x0a2026-12-06T00:00:00.000000 "
                     "[anonymous-instance] info VM started \\x92: No such file\n"),
            std::string::npos)
      << log;
}

}  // namespace
}  // namespace ember

// MMDS's application layer without a network: the data store (put, merge
// patch, size limit), V2 tokens on a clock the test moves, and the guest's
// HTTP requests as bytes, answered with Firecracker's codes and texts.
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "devices/mmds/mmds_http.h"
#include "devices/mmds/mmds_store.h"
#include "devices/mmds/mmds_token.h"

namespace ember {
namespace {

using namespace std::string_literals;
using nlohmann::json;
using Clock = MmdsTokenAuthority::Clock;

constexpr MmdsTokenAuthority::Key kKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

std::string Hex(const std::array<uint8_t, 16>& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

// A clock the test moves by hand.
struct FakeClock {
  Clock::time_point now{};
  MmdsTokenAuthority::Now Source() {
    return [this] { return now; };
  }
};

struct Response {
  int code = 0;
  std::string status_line;
  std::map<std::string, std::string> headers;
  std::string body;
};

// Splits one rendered response; fails the test if it is not well formed.
Response ParseResponse(const std::string& bytes) {
  Response r;
  const size_t head_end = bytes.find("\r\n\r\n");
  EXPECT_NE(head_end, std::string::npos) << bytes;
  if (head_end == std::string::npos) return r;
  const std::string head = bytes.substr(0, head_end);
  r.body = bytes.substr(head_end + 4);
  size_t line_end = head.find("\r\n");
  r.status_line = head.substr(0, line_end);
  r.code = std::stoi(r.status_line.substr(9, 3));
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line = head.substr(start, line_end - start);
    const size_t colon = line.find(": ");
    r.headers[line.substr(0, colon)] = line.substr(colon + 2);
  }
  EXPECT_EQ(r.headers["Content-Length"], std::to_string(r.body.size()));
  return r;
}

json SampleData() {
  return json::parse(R"({
    "latest": {
      "meta-data": {
        "ami-id": "ami-12345678",
        "reservation-id": "r-fea54097",
        "dummy_obj": {"a": "b"},
        "dummy_array": ["arr_val1", "arr_val2"],
        "dummy_empty": ""
      },
      "Limits": {"CPU": 512, "Memory": 512, "Share": 12.12, "On": true}
    },
    "a~b": {"c/d": "escaped"}
  })");
}

class MmdsHttpTest : public ::testing::Test {
 protected:
  MmdsHttpTest()
      : store_(std::make_shared<MmdsStore>(MmdsTokenAuthority(kKey, clock_.Source()))),
        server_(store_) {
    EXPECT_TRUE(store_->Put(SampleData()).ok());
  }

  void SetVersion(MmdsVersion version, bool imds_compat = false) {
    MmdsSettings settings;
    settings.version = version;
    settings.imds_compat = imds_compat;
    ASSERT_TRUE(store_->Configure(settings).ok());
  }

  // One complete request: the whole buffer must be consumed.
  Response Ask(const std::string& request) {
    std::optional<MmdsHttpExchange> exchange = server_.Respond(request);
    EXPECT_TRUE(exchange.has_value()) << request;
    if (!exchange) return {};
    EXPECT_EQ(exchange->consumed, request.size());
    last_close_ = exchange->close;
    return ParseResponse(exchange->response);
  }

  std::string Token(int ttl = 60) {
    Response r = Ask("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: " +
                     std::to_string(ttl) + "\r\n\r\n");
    EXPECT_EQ(r.code, 200) << r.body;
    return r.body;
  }

  static std::string GetRequest(const std::string& path, const std::string& headers = "") {
    return "GET " + path + " HTTP/1.1\r\n" + headers + "\r\n";
  }

  FakeClock clock_;
  std::shared_ptr<MmdsStore> store_;
  MmdsHttpServer server_;
  bool last_close_ = false;
};

// --- SipHash and tokens -----------------------------------------------------

TEST(MmdsTokenTest, SipHash128MatchesTheReferenceVectors) {
  // veorq/SipHash vectors.h: key 00..0f, message 00..(n-1).
  MmdsTokenAuthority::Key key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  std::string message;
  for (int i = 0; i < 16; ++i) message += static_cast<char>(i);
  EXPECT_EQ(Hex(SipHash128(key, "")), "a3817f04ba25a8e66df67214c7550293");
  EXPECT_EQ(Hex(SipHash128(key, message.substr(0, 1))), "da87c1d86b99af44347659119b22fc45");
  EXPECT_EQ(Hex(SipHash128(key, message.substr(0, 8))), "3b62a9ba6258f5610f83e264f31497b4");
  EXPECT_EQ(Hex(SipHash128(key, message.substr(0, 9))), "264499060ad9baabc47f8b02bb6d71ed");
}

TEST(MmdsTokenTest, TtlBoundsAreFirecrackers) {
  FakeClock clock;
  MmdsTokenAuthority tokens(kKey, clock.Source());
  for (uint32_t bad : {0u, 21601u}) {
    Result<std::string> token = tokens.Generate(bad);
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.status().message(),
              "Invalid time to live value provided for token: " + std::to_string(bad) +
                  ". Please provide a value between 1 and 21600.");
  }
  EXPECT_TRUE(tokens.Generate(1).ok());
  EXPECT_TRUE(tokens.Generate(21600).ok());
}

TEST(MmdsTokenTest, TokensExpireAfterTheirTtl) {
  FakeClock clock;
  clock.now += std::chrono::hours(5);
  MmdsTokenAuthority tokens(kKey, clock.Source());
  Result<std::string> token = tokens.Generate(10);
  ASSERT_TRUE(token.ok());
  EXPECT_LE(token->size(), MmdsTokenAuthority::kMaxTokenLength);
  EXPECT_TRUE(tokens.IsValid(*token));
  clock.now += std::chrono::milliseconds(9999);
  EXPECT_TRUE(tokens.IsValid(*token));
  clock.now += std::chrono::milliseconds(1);
  EXPECT_FALSE(tokens.IsValid(*token));
}

TEST(MmdsTokenTest, ForgedAlteredAndForeignTokensAreRefused) {
  FakeClock clock;
  MmdsTokenAuthority tokens(kKey, clock.Source());
  std::string token = *tokens.Generate(60);
  std::string second = *tokens.Generate(60);
  EXPECT_NE(token, second);  // unique even in the same millisecond
  EXPECT_TRUE(tokens.IsValid(second));
  // Longer expiry, same tag: the tag no longer matches.
  std::string altered = token;
  altered[6] = altered[6] == 'f' ? '0' : 'f';
  EXPECT_FALSE(tokens.IsValid(altered));
  std::string tag_flipped = token;
  tag_flipped.back() = tag_flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(tokens.IsValid(tag_flipped));
  std::string upper = token;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  if (upper != token) {
    EXPECT_FALSE(tokens.IsValid(upper));
  }
  EXPECT_FALSE(tokens.IsValid(""));
  EXPECT_FALSE(tokens.IsValid("INVALID_TOKEN"));
  EXPECT_FALSE(tokens.IsValid(token + "00"));
  EXPECT_FALSE(tokens.IsValid(std::string(1000, 'a')));
  MmdsTokenAuthority::Key other = kKey;
  other[0] ^= 1;
  MmdsTokenAuthority foreign(other, clock.Source());
  EXPECT_FALSE(foreign.IsValid(token));
}

TEST(MmdsTokenTest, CreateDrawsARandomKey) {
  Result<MmdsTokenAuthority> a = MmdsTokenAuthority::Create();
  Result<MmdsTokenAuthority> b = MmdsTokenAuthority::Create();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  std::string token = *a->Generate(60);
  EXPECT_TRUE(a->IsValid(token));
  EXPECT_FALSE(b->IsValid(token));
}

// --- The store --------------------------------------------------------------

TEST(MmdsStoreTest, PutReplacesAndGetCopies) {
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  EXPECT_TRUE(store.Get().is_null());  // GET /mmds renders this as {}
  ASSERT_TRUE(store.Put(json{{"a", 1}, {"b", {{"c", "d"}}}}).ok());
  ASSERT_TRUE(store.Put(json{{"x", "y"}}).ok());
  EXPECT_EQ(store.Get(), (json{{"x", "y"}}));
  // Any JSON value, as in Firecracker.
  ASSERT_TRUE(store.Put(json("just a string")).ok());
  EXPECT_EQ(store.Get(), json("just a string"));
}

TEST(MmdsStoreTest, PatchIsAMergePatchAndNeedsAPutFirst) {
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  Status early = store.Patch(json{{"a", 1}});
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.message(), "MMDS error: The MMDS data store is not initialized.");
  EXPECT_FALSE(MmdsStore::IsLimitExceeded(early));

  ASSERT_TRUE(store
                  .Put(json::parse(R"({"name": {"first": "John", "second": "Doe"}, "age": "43",
                        "phones": {"home": {"RO": "+40 1234567"}, "mobile": "+44 2345678"}})"))
                  .ok());
  ASSERT_TRUE(store
                  .Patch(json::parse(R"({"name": {"second": null, "last": "Kennedy"}, "age": "44",
                          "phones": {"home": "+44 1234567", "mobile": {"RO": "+40 2345678"}}})"))
                  .ok());
  EXPECT_EQ(store.Get(), json::parse(R"({"name": {"first": "John", "last": "Kennedy"},
      "age": "44", "phones": {"home": "+44 1234567", "mobile": {"RO": "+40 2345678"}}})"));
  // A patch that is not an object replaces the document (RFC 7396).
  ASSERT_TRUE(store.Patch(json::array({1, 2})).ok());
  EXPECT_EQ(store.Get(), json::array({1, 2}));
}

TEST(MmdsStoreTest, SizeLimitRefusesPutAndPatchAndKeepsTheStore) {
  EXPECT_EQ(MmdsStore::kDefaultSizeLimit, 51200u);
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  // {"key":"X..."} serialises to 10 + n bytes.
  Status big = store.Put(json{{"key", std::string(51300, 'X')}});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.message(), "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
  EXPECT_TRUE(MmdsStore::IsLimitExceeded(big));
  EXPECT_TRUE(store.Get().is_null());

  ASSERT_TRUE(store.Put(json{{"key", std::string(51190, 'X')}}).ok());  // exactly the limit
  EXPECT_EQ(store.Get().dump().size(), 51200u);
  Status patch = store.Patch(json{{"k2", "s"}});
  EXPECT_TRUE(MmdsStore::IsLimitExceeded(patch));
  EXPECT_FALSE(store.Get().contains("k2"));
  ASSERT_TRUE(store.Patch(json{{"key", "smth"}}).ok());  // shrinking fits
  EXPECT_EQ(store.Get(), (json{{"key", "smth"}}));

  store.set_size_limit(10);
  EXPECT_TRUE(MmdsStore::IsLimitExceeded(store.Put(json{{"key", "0123456789"}})));
}

TEST(MmdsStoreTest, DeepNestingIsRefused) {
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  json deep = "leaf";
  for (size_t i = 0; i < MmdsStore::kMaxDepth; ++i) deep = json::array({deep});
  ASSERT_TRUE(store.Put(deep).ok());
  json deeper = json::array({deep});
  Status refused = store.Put(deeper);
  ASSERT_FALSE(refused.ok());
  EXPECT_FALSE(MmdsStore::IsLimitExceeded(refused));
  EXPECT_EQ(store.Get(), deep);
  EXPECT_FALSE(store.Patch(json{{"a", deeper}}).ok());
}

TEST(MmdsStoreTest, ConfigureWantsALinkLocalAddress) {
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  MmdsSettings defaults = store.settings();
  EXPECT_EQ(defaults.version, MmdsVersion::kV1);
  EXPECT_EQ(defaults.ipv4_address, (std::array<uint8_t, 4>{169, 254, 169, 254}));
  EXPECT_FALSE(defaults.imds_compat);
  MmdsSettings bad;
  bad.ipv4_address = {10, 0, 0, 1};
  Status status = store.Configure(bad);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "The MMDS IPv4 address is not link local.");
  MmdsSettings good;
  good.version = MmdsVersion::kV2;
  good.ipv4_address = {169, 254, 1, 2};
  ASSERT_TRUE(store.Configure(good).ok());
  EXPECT_EQ(store.settings().ipv4_address, good.ipv4_address);
  EXPECT_EQ(store.settings().version, MmdsVersion::kV2);
}

TEST(MmdsStoreTest, LookupRendersJsonAndImds) {
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  ASSERT_TRUE(store.Put(SampleData()).ok());
  using Outcome = MmdsLookup::Outcome;
  auto json_at = [&](std::string_view path) { return store.Lookup(path, MmdsOutputFormat::kJson); };
  auto imds_at = [&](std::string_view path) { return store.Lookup(path, MmdsOutputFormat::kImds); };

  EXPECT_EQ(imds_at("/latest/meta-data").body,
            "ami-id\ndummy_array\ndummy_empty\ndummy_obj/\nreservation-id");
  EXPECT_EQ(imds_at("/latest/meta-data/").body, imds_at("/latest/meta-data").body);
  EXPECT_EQ(imds_at("").body, "a~b/\nlatest/");
  EXPECT_EQ(json_at("/latest/meta-data/dummy_obj").body, R"({"a":"b"})");
  EXPECT_EQ(json_at("/latest/meta-data/ami-id").body, R"("ami-12345678")");
  EXPECT_EQ(imds_at("/latest/meta-data/ami-id").body, "ami-12345678");
  EXPECT_EQ(imds_at("/latest/meta-data/dummy_empty").outcome, Outcome::kFound);
  EXPECT_EQ(imds_at("/latest/meta-data/dummy_empty").body, "");
  // Arrays: by index in both formats, as a whole only in JSON.
  EXPECT_EQ(imds_at("/latest/meta-data/dummy_array/0").body, "arr_val1");
  EXPECT_EQ(json_at("/latest/meta-data/dummy_array/1/").body, R"("arr_val2")");
  EXPECT_EQ(json_at("/latest/meta-data/dummy_array").body, R"(["arr_val1","arr_val2"])");
  EXPECT_EQ(imds_at("/latest/meta-data/dummy_array").outcome, Outcome::kUnsupportedValueType);
  for (const char* bad_index :
       {"/latest/meta-data/dummy_array/2", "/latest/meta-data/dummy_array/01",
        "/latest/meta-data/dummy_array/+1", "/latest/meta-data/dummy_array/-",
        "/latest/meta-data/dummy_array/99999999999999999999999"}) {
    EXPECT_EQ(json_at(bad_index).outcome, Outcome::kNotFound) << bad_index;
  }
  // Numbers and booleans: JSON only.
  EXPECT_EQ(json_at("/latest/Limits/CPU").body, "512");
  EXPECT_EQ(json_at("/latest/Limits/Share").body, "12.12");
  EXPECT_EQ(json_at("/latest/Limits/On").body, "true");
  EXPECT_EQ(imds_at("/latest/Limits/CPU").outcome, Outcome::kUnsupportedValueType);
  EXPECT_EQ(imds_at("/latest/Limits/On").outcome, Outcome::kUnsupportedValueType);
  // RFC 6901 escapes; no key below a leaf.
  EXPECT_EQ(imds_at("/a~0b/c~1d").body, "escaped");
  EXPECT_EQ(json_at("/latest/meta-data/ami-id/x").outcome, Outcome::kNotFound);
  EXPECT_EQ(json_at("/nothing").outcome, Outcome::kNotFound);
  EXPECT_EQ(json_at("no-slash").outcome, Outcome::kNotFound);

  MmdsSettings compat;
  compat.imds_compat = true;
  ASSERT_TRUE(store.Configure(compat).ok());
  EXPECT_EQ(json_at("/latest/meta-data/ami-id").body, "ami-12345678");
  EXPECT_EQ(json_at("/latest/Limits/CPU").outcome, Outcome::kUnsupportedValueType);
}

TEST(MmdsStoreTest, InvalidUtf8InStoredStringsDoesNotThrow) {
  MmdsStore store(MmdsTokenAuthority(kKey, Clock::now));
  const std::string bad = std::string("ok\xff\xfe", 4) + std::string(1, '\0') + "x";
  ASSERT_TRUE(store.Put(json{{"k", bad}, {std::string("\xc3\x28", 2), "v"}}).ok());
  MmdsLookup as_json = store.Lookup("/k", MmdsOutputFormat::kJson);
  EXPECT_EQ(as_json.outcome, MmdsLookup::Outcome::kFound);
  EXPECT_NE(as_json.body.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_EQ(store.Lookup("/k", MmdsOutputFormat::kImds).body, bad);
  EXPECT_EQ(store.Lookup("", MmdsOutputFormat::kJson).outcome, MmdsLookup::Outcome::kFound);
}

// --- HTTP -------------------------------------------------------------------

TEST_F(MmdsHttpTest, V1GetServesImdsTextByDefault) {
  Response r = Ask("GET http://169.254.169.254/latest/meta-data/ HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.0 200 ");
  EXPECT_EQ(r.headers["Server"], "Firecracker API");
  EXPECT_EQ(r.headers["Connection"], "keep-alive");
  EXPECT_EQ(r.headers["Content-Type"], "text/plain");
  EXPECT_EQ(r.body, "ami-id\ndummy_array\ndummy_empty\ndummy_obj/\nreservation-id");
  EXPECT_FALSE(last_close_);

  EXPECT_EQ(Ask(GetRequest("/latest/meta-data/ami-id")).body, "ami-12345678");
  EXPECT_EQ(Ask(GetRequest("/latest/meta-data/ami-id", "Accept: text/plain\r\n")).body,
            "ami-12345678");
  // Firecracker strips repeated slashes.
  EXPECT_EQ(Ask(GetRequest("//latest///meta-data//ami-id")).body, "ami-12345678");
}

TEST_F(MmdsHttpTest, AcceptJsonServesTheSubtree) {
  Response r = Ask(GetRequest("/latest/meta-data/dummy_obj", "Accept: application/json\r\n"));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.body, R"({"a":"b"})");
  EXPECT_EQ(Ask(GetRequest("/latest/Limits/CPU", "accept:application/json\r\n")).body, "512");
  // Only the exact media types count; anything else is IMDS text.
  Response other = Ask(GetRequest("/latest/meta-data/ami-id", "Accept: */*\r\n"));
  EXPECT_EQ(other.headers["Content-Type"], "text/plain");
  EXPECT_EQ(other.body, "ami-12345678");
}

TEST_F(MmdsHttpTest, UnsupportedImdsValueIs501) {
  Response r = Ask(GetRequest("/latest/Limits/CPU"));
  EXPECT_EQ(r.code, 501);
  EXPECT_EQ(r.body, "Cannot retrieve value. The value has an unsupported type.");
  EXPECT_EQ(r.headers["Content-Type"], "text/plain");
}

TEST_F(MmdsHttpTest, ImdsCompatIgnoresAccept) {
  SetVersion(MmdsVersion::kV1, /*imds_compat=*/true);
  Response r = Ask(GetRequest("/latest/meta-data/ami-id", "Accept: application/json\r\n"));
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "ami-12345678");
  EXPECT_EQ(Ask(GetRequest("/latest/Limits/CPU", "Accept: application/json\r\n")).code, 501);
}

TEST_F(MmdsHttpTest, MissingResourceIs404WithTheRequestedPath) {
  Response r = Ask("GET http://169.254.169.254/invalid HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.code, 404);
  EXPECT_EQ(r.body, "Resource not found: /invalid.");
  EXPECT_EQ(r.headers["Content-Type"], "text/plain");
}

TEST_F(MmdsHttpTest, V1AcceptsAnyTokenOrNone) {
  EXPECT_EQ(Ask(GetRequest("/latest/meta-data/ami-id", "X-metadata-token: INVALID\r\n")).body,
            "ami-12345678");
  const std::string token = Token();
  EXPECT_EQ(Ask(GetRequest("/latest/meta-data/ami-id", "X-metadata-token: " + token + "\r\n")).code,
            200);
}

TEST_F(MmdsHttpTest, V2NeedsAValidToken) {
  SetVersion(MmdsVersion::kV2);
  Response none = Ask(GetRequest("/latest/meta-data/ami-id"));
  EXPECT_EQ(none.code, 401);
  EXPECT_EQ(none.body,
            "No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` header "
            "to specify the session token.");
  Response invalid = Ask(GetRequest("/latest/meta-data/ami-id", "X-metadata-token: foo\r\n"));
  EXPECT_EQ(invalid.code, 401);
  EXPECT_EQ(invalid.body, "MMDS token not valid.");

  const std::string token = Token(1);
  Response ok = Ask(GetRequest("/latest/meta-data/ami-id", "X-metadata-token: " + token + "\r\n"));
  EXPECT_EQ(ok.code, 200);
  EXPECT_EQ(ok.body, "ami-12345678");
  // EC2's header name and any case.
  EXPECT_EQ(
      Ask(GetRequest("/latest/meta-data/ami-id", "x-AWS-ec2-METADATA-token: " + token + "\r\n"))
          .code,
      200);
  clock_.now += std::chrono::seconds(1);
  Response expired =
      Ask(GetRequest("/latest/meta-data/ami-id", "X-metadata-token: " + token + "\r\n"));
  EXPECT_EQ(expired.code, 401);
  EXPECT_EQ(expired.body, "MMDS token not valid.");
}

TEST_F(MmdsHttpTest, TokenPutEchoesTheTtlHeader) {
  for (MmdsVersion version : {MmdsVersion::kV1, MmdsVersion::kV2}) {
    SetVersion(version);
    Response r =
        Ask("PUT http://169.254.169.254/latest/api/token HTTP/1.0\r\n"
            "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n");
    EXPECT_EQ(r.code, 200);
    EXPECT_EQ(r.headers["Content-Type"], "text/plain");
    EXPECT_EQ(r.headers["X-aws-ec2-metadata-token-ttl-seconds"], "21600");
    EXPECT_TRUE(store_->IsValidToken(r.body));
  }
}

TEST_F(MmdsHttpTest, TokenPutRefusals) {
  const std::string put = "PUT /latest/api/token HTTP/1.1\r\n";
  Response missing = Ask(put + "\r\n");
  EXPECT_EQ(missing.code, 400);
  EXPECT_EQ(missing.body,
            "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or "
            "`X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime.");
  Response not_number = Ask(put + "X-metadata-token-ttl-seconds: application/json\r\n\r\n");
  EXPECT_EQ(not_number.code, 400);
  EXPECT_EQ(not_number.body,
            "Invalid header. Reason: Invalid value. Key:X-metadata-token-ttl-seconds; "
            "Value:application/json");
  EXPECT_EQ(Ask(put + "X-metadata-token-ttl-seconds: 4294967296\r\n\r\n").code, 400);
  EXPECT_EQ(Ask(put + "X-metadata-token-ttl-seconds: -1\r\n\r\n").code, 400);
  for (int ttl : {0, 21601}) {
    Response r = Ask(put + "X-metadata-token-ttl-seconds: " + std::to_string(ttl) + "\r\n\r\n");
    EXPECT_EQ(r.code, 400);
    EXPECT_EQ(r.body, "Invalid time to live value provided for token: " + std::to_string(ttl) +
                          ". Please provide a value between 1 and 21600.");
  }
  for (const char* name : {"X-Forwarded-For", "x-forwarded-for", "X-fOrWaRdEd-FoR"}) {
    Response r = Ask(put + name + ": 203.0.113.195\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
    EXPECT_EQ(r.code, 400);
    EXPECT_EQ(r.body, std::string("Invalid header. Reason: Unsupported header name. Key: ") + name);
  }
  Response wrong_path =
      Ask("PUT /latest/api/toke HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n");
  EXPECT_EQ(wrong_path.code, 404);
  EXPECT_EQ(wrong_path.body, "Resource not found: /latest/api/toke.");
}

TEST_F(MmdsHttpTest, OtherMethodsAre405Or501) {
  Response patch = Ask("PATCH http://169.254.169.254/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(patch.code, 405);
  EXPECT_EQ(patch.body, "Not allowed HTTP method.");
  EXPECT_EQ(patch.headers["Allow"], "GET, PUT");
  EXPECT_EQ(Ask("DELETE /latest HTTP/1.1\r\n\r\n").code, 405);
  for (const char* method : {"POST", "HEAD", "OPTIONS", "get"}) {
    Response r = Ask(std::string(method) + " http://169.254.169.254/ HTTP/1.0\r\n\r\n");
    EXPECT_EQ(r.code, 501) << method;
    EXPECT_EQ(r.body, "Unsupported HTTP method.");
    EXPECT_TRUE(last_close_);
  }
}

TEST_F(MmdsHttpTest, MalformedRequestsAre400AndClose) {
  struct Case {
    std::string request;
    int code;
    std::string body;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\n\n", 400, "Invalid request."},
      {"GET\r\n\r\n", 400, "Invalid request."},
      {"GET /latest/meta-data\r\n\r\n", 400, "Invalid request."},
      {"GET   HTTP/1.0\r\n\r\n", 400, "Empty URI not allowed."},
      {"GET /\xff\xfe HTTP/1.1\r\n\r\n", 400, "Cannot parse URI as UTF-8."},
      {"GET / HTTP/2.0\r\n\r\n", 501, "Unsupported HTTP version."},
      {"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400,
       "Header is incorrectly formatted. Key: no colon here"},
      {"GET / HTTP/1.1\r\nContent-Length: alpha\r\n\r\n", 400,
       "Invalid value. Key:Content-Length; Value: alpha"},
      {"PUT /latest/api/token HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 400, "Invalid request."},
      {"GET / HTTP/1.1\r\nAccept-Encoding: deflate, *;q=0\r\n\r\n", 400,
       "Invalid value. Key:Accept-Encoding; Value: *;q=0"},
      {"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", 400, "Invalid request."},
  };
  for (const Case& c : cases) {
    Response r = Ask(c.request);
    EXPECT_EQ(r.code, c.code) << c.request;
    EXPECT_EQ(r.body, c.body) << c.request;
    EXPECT_EQ(r.status_line.substr(0, 9), "HTTP/1.1 ");
    EXPECT_EQ(r.headers["Connection"], "close");
    EXPECT_TRUE(last_close_) << c.request;
  }
  // A URI with no path after the host.
  Response no_path = Ask("GET http://169.254.169.254 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(no_path.code, 400);
  EXPECT_EQ(no_path.body, "Invalid URI.");
  EXPECT_EQ(Ask("GET latest HTTP/1.1\r\n\r\n").body, "Invalid URI.");
  // Unknown values of known headers are ignored, as micro_http does.
  EXPECT_EQ(Ask(GetRequest("/latest/meta-data/ami-id", "Content-Type: nope\r\n")).code, 200);
}

TEST_F(MmdsHttpTest, IncompleteRequestWaits) {
  EXPECT_FALSE(server_.Respond("").has_value());
  EXPECT_FALSE(server_.Respond("GET /latest HTTP/1.1").has_value());
  EXPECT_FALSE(server_.Respond("GET /latest HTTP/1.1\r\nAccept: application/json\r\n").has_value());
  EXPECT_FALSE(server_.Respond(std::string(100, '\0')).has_value());
}

TEST_F(MmdsHttpTest, PipelinedRequestsAreAnsweredOneAtATime) {
  const std::string first = GetRequest("/latest/meta-data/ami-id");
  const std::string second =
      GetRequest("/latest/meta-data/dummy_obj", "Accept: application/json\r\n");
  std::string buffer = first + second + "GET /partial";
  std::optional<MmdsHttpExchange> one = server_.Respond(buffer);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->consumed, first.size());
  EXPECT_EQ(ParseResponse(one->response).body, "ami-12345678");
  buffer.erase(0, one->consumed);
  std::optional<MmdsHttpExchange> two = server_.Respond(buffer);
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->consumed, second.size());
  EXPECT_EQ(ParseResponse(two->response).body, R"({"a":"b"})");
  buffer.erase(0, two->consumed);
  EXPECT_FALSE(server_.Respond(buffer).has_value());
}

TEST_F(MmdsHttpTest, ConnectionCloseIsHonoured) {
  std::optional<MmdsHttpExchange> exchange =
      server_.Respond(GetRequest("/latest/meta-data/ami-id", "Connection: close\r\n") + "GET /");
  ASSERT_TRUE(exchange.has_value());
  EXPECT_TRUE(exchange->close);
  Response r = ParseResponse(exchange->response);
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.headers["Connection"], "close");
}

TEST_F(MmdsHttpTest, OversizedRequestIsAnErrorAndCloses) {
  const std::string huge = "GET /" + std::string(MmdsHttpServer::kMaxRequestBytes, 'a');
  EXPECT_FALSE(server_.Respond(huge.substr(0, MmdsHttpServer::kMaxRequestBytes - 1)).has_value());
  std::optional<MmdsHttpExchange> exchange = server_.Respond(huge);
  ASSERT_TRUE(exchange.has_value());
  EXPECT_TRUE(exchange->close);
  EXPECT_EQ(exchange->consumed, huge.size());
  EXPECT_EQ(ParseResponse(exchange->response).code, 413);
  // A request that does end within the bound is served, whatever follows it.
  const std::string header = "X-Pad: " + std::string(2000, 'p') + "\r\n";
  const std::string fits = GetRequest("/latest/meta-data/ami-id", header);
  ASSERT_LE(fits.size(), MmdsHttpServer::kMaxRequestBytes);
  std::optional<MmdsHttpExchange> served = server_.Respond(fits + std::string(5000, 'z'));
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->consumed, fits.size());
  EXPECT_EQ(ParseResponse(served->response).body, "ami-12345678");
}

TEST_F(MmdsHttpTest, HostileBytesNeverThrow) {
  ASSERT_TRUE(store_->Put(json{{std::string("k\xff", 2), std::string("v\xfe\0", 3)}}).ok());
  const std::string inputs[] = {
      "\0\0\0\n\n"s,
      "GET /\0 HTTP/1.1\r\n\r\n"s,
      "GET / HTTP/1.1\r\nAccept: application/json\r\n\r\n",
      "GET /k\xff HTTP/1.1\r\nAccept: application/json\r\n\r\n",
      "GET /k\xc3\xbf HTTP/1.1\r\n\r\n",
      "\xff\xfe\xfd\r\n\r\n",
      "GET / HTTP/1.1\r\n:\r\n\r\n",
      "GET / HTTP/1.1\r\nAccept-Encoding:\r\n\r\n",
      "\n\r\n",
  };
  for (const std::string& input : inputs) {
    std::optional<MmdsHttpExchange> exchange;
    EXPECT_NO_THROW(exchange = server_.Respond(input));
    ASSERT_TRUE(exchange.has_value());
    EXPECT_GT(exchange->consumed, 0u);
    EXPECT_LE(exchange->consumed, input.size());
    EXPECT_GE(ParseResponse(exchange->response).code, 200);
  }
  // The whole document with a key and a value that are not UTF-8.
  Response r = Ask("GET / HTTP/1.1\r\nAccept: application/json\r\n\r\n");
  EXPECT_EQ(r.code, 200);
  EXPECT_NE(r.body.find("\xef\xbf\xbd"), std::string::npos);
}

}  // namespace
}  // namespace ember

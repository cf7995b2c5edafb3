// Node-API binding for Hyperscan block mode: compile a rule set, scan bytes, ship compiled databases to workers.
// Per-environment state lives in addon instance data, so every worker_thread gets its own scratch and constructor.

#include <napi.h>
#include <hs.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr const char* kRuleInvalid = "SLUICE_RULE_INVALID";
constexpr const char* kEngineError = "SLUICE_ENGINE_ERROR";

// Hyperscan's own codes are more useful in a log than a bare number.
const char* HsErrorName(hs_error_t err) {
  switch (err) {
    case HS_SUCCESS: return "HS_SUCCESS";
    case HS_INVALID: return "HS_INVALID";
    case HS_NOMEM: return "HS_NOMEM";
    case HS_SCAN_TERMINATED: return "HS_SCAN_TERMINATED";
    case HS_COMPILER_ERROR: return "HS_COMPILER_ERROR";
    case HS_DB_VERSION_ERROR: return "HS_DB_VERSION_ERROR";
    case HS_DB_PLATFORM_ERROR: return "HS_DB_PLATFORM_ERROR";
    case HS_DB_MODE_ERROR: return "HS_DB_MODE_ERROR";
    case HS_BAD_ALIGN: return "HS_BAD_ALIGN";
    case HS_BAD_ALLOC: return "HS_BAD_ALLOC";
    case HS_SCRATCH_IN_USE: return "HS_SCRATCH_IN_USE";
    case HS_ARCH_ERROR: return "HS_ARCH_ERROR";
    case HS_INSUFFICIENT_SPACE: return "HS_INSUFFICIENT_SPACE";
    case HS_UNKNOWN_ERROR: return "HS_UNKNOWN_ERROR";
    default: return "HS_UNKNOWN";
  }
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// A compile failure attributable to one rule: the message leads with its id and `ruleId` carries it.
Napi::Error RuleError(Napi::Env env, unsigned int id, const std::string& message) {
  Napi::Error err = CodedError(env, kRuleInvalid, "rule " + std::to_string(id) + ": " + message);
  err.Set("ruleId", Napi::Number::New(env, id));
  return err;
}

[[noreturn]] void ThrowEngine(Napi::Env env, const std::string& what, hs_error_t err) {
  Napi::Error e = CodedError(env, kEngineError, what + " failed: " + HsErrorName(err) + " (" + std::to_string(err) + ")");
  e.Set("hsError", Napi::Number::New(env, err));
  throw e;
}

// hs_serialize_database and hs_database_info allocate with the misc allocator, which is malloc unless replaced.
struct MiscFree {
  void operator()(char* p) const { std::free(p); }
};

}  // namespace

class HyperscanAddon;

// One compiled rule set. The JS object owns the hs_database_t; scratch is per environment (see HyperscanAddon).
class Database : public Napi::ObjectWrap<Database> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Database",
                       {
                           InstanceMethod<&Database::Scan>("scan"),
                           InstanceMethod<&Database::Serialize>("serialize"),
                           InstanceMethod<&Database::Close>("close"),
                           InstanceAccessor<&Database::Size>("size"),
                           InstanceAccessor<&Database::Info>("info"),
                       });
  }

  explicit Database(const Napi::CallbackInfo& info);
  ~Database() override { Free(); }

 private:
  Napi::Value Scan(const Napi::CallbackInfo& info);
  Napi::Value Serialize(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  hs_database_t* Live(Napi::Env env) const {
    if (db_ == nullptr) throw CodedError(env, kEngineError, "database is closed");
    return db_;
  }
  void Free() {
    if (db_ != nullptr) hs_free_database(db_);
    db_ = nullptr;
  }

  hs_database_t* db_ = nullptr;
  uint64_t fitted_ = 0;  // scratch generation this database was fitted in; 0 = never
};

class HyperscanAddon : public Napi::Addon<HyperscanAddon> {
 public:
  HyperscanAddon(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Database::Define(env);
    database_ = Napi::Persistent(ctor);

    Napi::Object flags = Napi::Object::New(env);
    flags.Set("CASELESS", Napi::Number::New(env, HS_FLAG_CASELESS));
    flags.Set("DOTALL", Napi::Number::New(env, HS_FLAG_DOTALL));
    flags.Set("MULTILINE", Napi::Number::New(env, HS_FLAG_MULTILINE));
    flags.Set("SINGLEMATCH", Napi::Number::New(env, HS_FLAG_SINGLEMATCH));
    flags.Set("ALLOWEMPTY", Napi::Number::New(env, HS_FLAG_ALLOWEMPTY));
    flags.Set("UTF8", Napi::Number::New(env, HS_FLAG_UTF8));
    flags.Set("UCP", Napi::Number::New(env, HS_FLAG_UCP));
    flags.Set("PREFILTER", Napi::Number::New(env, HS_FLAG_PREFILTER));
    flags.Set("SOM_LEFTMOST", Napi::Number::New(env, HS_FLAG_SOM_LEFTMOST));
    flags.Freeze();

    DefineAddon(exports, {
                             InstanceMethod<&HyperscanAddon::Compile>("compile"),
                             InstanceMethod<&HyperscanAddon::Deserialize>("deserialize"),
                             InstanceMethod<&HyperscanAddon::Version>("info"),
                             InstanceMethod<&HyperscanAddon::ExpressionInfo>("expressionInfo"),
                             InstanceValue("flags", flags, napi_enumerable),
                             InstanceValue("Database", ctor, napi_enumerable),
                             // Hyperscan needs SSSE3; loading succeeds without it but every call would fail.
                             InstanceValue("platformSupported", Napi::Boolean::New(env, hs_valid_platform() == HS_SUCCESS),
                                           napi_enumerable),
                         });
  }

  // Runs at environment teardown (main exit or worker termination); databases never touch scratch when freed.
  ~HyperscanAddon() {
    if (scratch_ != nullptr) hs_free_scratch(scratch_);
  }

  // One scratch per environment (= per thread), grown to fit every database this thread created. Hyperscan allows
  // one scratch to serve many databases and growing it keeps it valid for all of them, so a database fitted once
  // stays fitted. Scans here are synchronous and never re-enter, so the scratch is never in use twice.
  // `fitted` is the database's record of the generation it was fitted in; the generation only moves when a failed
  // hs_alloc_scratch has freed the scratch (it does that), after which every database must refit.
  // Refitting is skipped on the hot path: hs_alloc_scratch costs ~20 us even when nothing needs to grow.
  void FitScratch(Napi::Env env, const hs_database_t* db, uint64_t& fitted) {
    if (scratch_ != nullptr && fitted == generation_) return;
    hs_error_t err = hs_alloc_scratch(db, &scratch_);
    if (err != HS_SUCCESS) {
      generation_++;
      ThrowEngine(env, "hs_alloc_scratch", err);
    }
    fitted = generation_;
  }
  hs_scratch_t* Scratch() const { return scratch_; }

  Napi::Object Wrap(Napi::Env env, hs_database_t* db) {
    // Ownership moves to the Database the moment its constructor runs; if construction throws it has freed db.
    return database_.New({Napi::External<hs_database_t>::New(env, db)});
  }

 private:
  Napi::Value Compile(const Napi::CallbackInfo& info);
  Napi::Value Deserialize(const Napi::CallbackInfo& info);
  Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), hs_version()); }

  // expressionInfo(pattern, flags) -> { minWidth, maxWidth } in bytes; maxWidth is -1 when unbounded. The engine
  // uses maxWidth to confirm end-only reports with a bounded RE2 search instead of paying for start-of-match.
  Napi::Value ExpressionInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
      throw Napi::TypeError::New(env, "expressionInfo expects (pattern: string, flags: number)");
    }
    std::string expr = info[0].As<Napi::String>().Utf8Value();
    if (expr.find('\0') != std::string::npos) throw CodedError(env, kRuleInvalid, "pattern contains a NUL character");
    hs_expr_info_t* xi = nullptr;
    hs_compile_error_t* cerr = nullptr;
    if (hs_expression_info(expr.c_str(), info[1].As<Napi::Number>().Uint32Value(), &xi, &cerr) != HS_SUCCESS) {
      std::string msg = cerr != nullptr && cerr->message != nullptr ? cerr->message : "unknown error";
      hs_free_compile_error(cerr);
      throw CodedError(env, kRuleInvalid, msg);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("minWidth", Napi::Number::New(env, xi->min_width));
    out.Set("maxWidth", Napi::Number::New(env, xi->max_width == UINT_MAX ? -1.0 : static_cast<double>(xi->max_width)));
    free(xi);  // allocated with the misc allocator (malloc unless replaced)
    return out;
  }

  Napi::FunctionReference database_;
  hs_scratch_t* scratch_ = nullptr;
  uint64_t generation_ = 1;
};

Database::Database(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Database>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "Database is created by compile() or deserialize(), not by new");
  }
  db_ = info[0].As<Napi::External<hs_database_t>>().Data();
  // Sized now so a scan never allocates. A throwing constructor never runs the destructor, so free db_ here.
  try {
    env.GetInstanceData<HyperscanAddon>()->FitScratch(env, db_, fitted_);
  } catch (...) {
    Free();
    throw;
  }
}

namespace {

struct ScanState {
  std::vector<uint32_t> out;
  size_t limit;  // matches to collect before stopping; 0 = no limit
};

int OnMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int /*flags*/, void* ctx) {
  auto* state = static_cast<ScanState*>(ctx);
  // Input is capped below 4 GiB, so offsets fit in 32 bits.
  state->out.push_back(id);
  state->out.push_back(static_cast<uint32_t>(from));
  state->out.push_back(static_cast<uint32_t>(to));
  return (state->limit != 0 && state->out.size() / 3 >= state->limit) ? 1 : 0;
}

}  // namespace

// scan(buf: Uint8Array, limit?: number) -> Uint32Array of [id, from, to] triples in Hyperscan's report order.
Napi::Value Database::Scan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  hs_database_t* db = Live(env);
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "scan expects a Buffer or Uint8Array");
  }
  Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
  if (input.ByteLength() > UINT_MAX) throw Napi::RangeError::New(env, "scan input must be smaller than 4 GiB");

  ScanState state{{}, 0};
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "scan limit must be a number");
    double limit = info[1].As<Napi::Number>().DoubleValue();
    if (!(limit >= 0) || limit > UINT32_MAX) throw Napi::RangeError::New(env, "scan limit must be 0..2^32-1");
    state.limit = static_cast<size_t>(limit);
  }

  HyperscanAddon* addon = env.GetInstanceData<HyperscanAddon>();
  // Normally a no-op: fitted at construction, and growth for later databases keeps it valid for this one.
  addon->FitScratch(env, db, fitted_);
  // An empty Uint8Array may have a null data pointer; Hyperscan accepts any non-null pointer with length 0.
  static const char kEmpty[1] = {0};
  const char* data = input.ByteLength() == 0 ? kEmpty : reinterpret_cast<const char*>(input.Data());
  hs_error_t err = hs_scan(db, data, static_cast<unsigned int>(input.ByteLength()), 0, addon->Scratch(), OnMatch, &state);
  // Terminated is expected only when our own callback stopped at the limit.
  bool stoppedAtLimit = err == HS_SCAN_TERMINATED && state.limit != 0 && state.out.size() / 3 >= state.limit;
  if (err != HS_SUCCESS && !stoppedAtLimit) ThrowEngine(env, "hs_scan", err);

  Napi::Uint32Array result = Napi::Uint32Array::New(env, state.out.size());
  if (!state.out.empty()) std::copy(state.out.begin(), state.out.end(), result.Data());
  return result;
}

Napi::Value Database::Serialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char* raw = nullptr;
  size_t length = 0;
  hs_error_t err = hs_serialize_database(Live(env), &raw, &length);
  if (err != HS_SUCCESS) ThrowEngine(env, "hs_serialize_database", err);
  std::unique_ptr<char, MiscFree> bytes(raw);
  return Napi::Buffer<char>::Copy(env, bytes.get(), length);
}

Napi::Value Database::Close(const Napi::CallbackInfo& info) {
  // Frees native memory now rather than whenever GC finalizes the wrapper; later calls throw "database is closed".
  Free();
  return info.Env().Undefined();
}

Napi::Value Database::Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = 0;
  hs_error_t err = hs_database_size(Live(env), &size);
  if (err != HS_SUCCESS) ThrowEngine(env, "hs_database_size", err);
  return Napi::Number::New(env, static_cast<double>(size));
}

Napi::Value Database::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char* raw = nullptr;
  hs_error_t err = hs_database_info(Live(env), &raw);
  if (err != HS_SUCCESS) ThrowEngine(env, "hs_database_info", err);
  std::unique_ptr<char, MiscFree> text(raw);
  return Napi::String::New(env, text.get());
}

// compile(patterns: Array<{id, pattern, flags}>) -> Database (HS_MODE_BLOCK).
Napi::Value HyperscanAddon::Compile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "compile expects an array of patterns");
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t n = list.Length();
  if (n == 0) throw CodedError(env, kRuleInvalid, "compile needs at least one pattern");

  std::vector<std::string> expressions(n);
  std::vector<unsigned int> flags(n);
  std::vector<unsigned int> ids(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsObject()) throw Napi::TypeError::New(env, "pattern " + std::to_string(i) + " is not an object");
    Napi::Object o = item.As<Napi::Object>();
    Napi::Value id = o.Get("id"), pattern = o.Get("pattern"), fl = o.Get("flags");
    if (!id.IsNumber()) throw Napi::TypeError::New(env, "pattern " + std::to_string(i) + ": id must be a number");
    double idv = id.As<Napi::Number>().DoubleValue();
    if (!(idv >= 0) || idv > UINT32_MAX || idv != static_cast<double>(static_cast<uint32_t>(idv))) {
      throw Napi::TypeError::New(env, "pattern " + std::to_string(i) + ": id must be an integer 0..2^32-1");
    }
    ids[i] = static_cast<unsigned int>(idv);
    if (!pattern.IsString()) {
      throw RuleError(env, ids[i], "pattern must be a string");
    }
    expressions[i] = pattern.As<Napi::String>().Utf8Value();
    // Hyperscan reads NUL-terminated strings; an embedded NUL would silently cut the pattern short.
    if (expressions[i].find('\0') != std::string::npos) {
      throw RuleError(env, ids[i], "pattern contains a NUL character (write \\x00 instead)");
    }
    if (fl.IsUndefined()) {
      flags[i] = 0;
    } else if (fl.IsNumber()) {
      flags[i] = fl.As<Napi::Number>().Uint32Value();
    } else {
      throw RuleError(env, ids[i], "flags must be a number");
    }
  }

  std::vector<const char*> exprPtrs(n);
  for (uint32_t i = 0; i < n; i++) exprPtrs[i] = expressions[i].c_str();

  hs_database_t* db = nullptr;
  hs_compile_error_t* compileErr = nullptr;
  hs_error_t err = hs_compile_multi(exprPtrs.data(), flags.data(), ids.data(), n, HS_MODE_BLOCK, nullptr, &db, &compileErr);
  if (err != HS_SUCCESS) {
    std::string hsMessage = compileErr != nullptr && compileErr->message != nullptr ? compileErr->message : HsErrorName(err);
    int index = compileErr != nullptr ? compileErr->expression : -1;
    if (compileErr != nullptr) hs_free_compile_error(compileErr);
    // expression is the index into our arrays; -1 means the set as a whole failed (e.g. too large), not one rule.
    if (index >= 0 && static_cast<uint32_t>(index) < n) {
      Napi::Error e = RuleError(env, ids[index], hsMessage);
      e.Set("patternIndex", Napi::Number::New(env, index));
      throw e;
    }
    throw CodedError(env, kRuleInvalid, "rule set: " + hsMessage);
  }
  return Wrap(env, db);
}

// deserialize(buf: Uint8Array) -> Database. The bytes must come from serialize() on a compatible Hyperscan/CPU.
Napi::Value HyperscanAddon::Deserialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "deserialize expects a Buffer or Uint8Array");
  }
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  hs_database_t* db = nullptr;
  hs_error_t err = hs_deserialize_database(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength(), &db);
  if (err != HS_SUCCESS) ThrowEngine(env, "hs_deserialize_database", err);
  return Wrap(env, db);
}

NODE_API_ADDON(HyperscanAddon)

// L4 relay: moves the bytes of established TCP sessions (client <-> member) in the kernel with
// splice(2) through a pipe per direction, on one epoll thread per worker process, instead of through
// JavaScript. The JavaScript session keeps owning the sockets (admission, member choice, PROXY header,
// statistics, close); it hands over duplicates of the two descriptors once the member connection is up
// and gets one callback when the relay is over (both directions ended, an error, an idle timeout, or
// its own close request). HAProxy does the same with `option splice-auto`.
//
// Exports: createRelay(onEnd) -> relay; add(relay, id, clientFd, memberFd, clientIdleMs, memberIdleMs)
// -> boolean; bytes(relay, id) -> [clientRead, clientWritten, memberRead, memberWritten] | undefined;
// close(relay, id); stop(relay). onEnd(id, clientRead, clientWritten, memberRead, memberWritten, reason)
// runs on the JavaScript thread; reason is "end", "error" or "timeout" (none for a close request).
#include <node_api.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace {

constexpr size_t kChunk = 64 * 1024;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Session;

// One direction of a session: bytes read from `src` wait in the pipe until `dst` takes them.
struct Flow {
  int src = -1;
  int dst = -1;
  int pipe[2] = {-1, -1};
  size_t pending = 0;  // bytes in the pipe
  bool eof = false;    // src said end of stream
  bool shut = false;   // dst got shutdown(SHUT_WR)
  std::atomic<uint64_t> read{0};
  std::atomic<uint64_t> written{0};
};

// The epoll user data of one descriptor of a session.
struct Endpoint {
  Session* session;
  int fd;
  uint32_t mask = 0;
  int64_t lastActive = 0;
  int64_t idleMs = 0;
};

struct Session {
  double id;
  bool ended = false;  // finished; freed after the current batch of events (later events may name it)
  Endpoint client;
  Endpoint member;
  Flow up;    // client -> member
  Flow down;  // member -> client
  Session(double id_, int cfd, int mfd, int64_t clientIdle, int64_t memberIdle)
      : id(id_), client{this, cfd, 0, NowMs(), clientIdle}, member{this, mfd, 0, NowMs(), memberIdle} {
    up.src = cfd;
    up.dst = mfd;
    down.src = mfd;
    down.dst = cfd;
  }
};

struct Ended {
  double id;
  uint64_t counts[4];
  const char* reason;
};

struct Command {
  enum Kind { kAdd, kClose, kStop } kind;
  Session* session;  // kAdd
  double id;         // kClose
};

class Relay {
 public:
  napi_threadsafe_function onEnd = nullptr;

  bool Start() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_ < 0 || wake_ < 0) return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0) return false;
    thread_ = std::thread([this] { Loop(); });
    return true;
  }

  void Post(Command c) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      commands_.push_back(c);
    }
    uint64_t one = 1;
    ssize_t ignored = write(wake_, &one, sizeof one);
    (void)ignored;
  }

  // Live counts of a session, read from the JavaScript thread.
  bool Counts(double id, uint64_t out[4]) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(id);
    if (it == live_.end()) return false;
    Session* s = it->second;
    out[0] = s->up.read;
    out[1] = s->down.written;
    out[2] = s->down.read;
    out[3] = s->up.written;
    return true;
  }

  void Stop() {
    if (!thread_.joinable()) return;
    Post({Command::kStop, nullptr, 0});
    thread_.join();
    close(epoll_);
    close(wake_);
  }

 private:
  int epoll_ = -1;
  int wake_ = -1;
  std::thread thread_;
  std::mutex mutex_;  // guards commands_ and live_ (the map; sessions are touched by the loop only)
  std::deque<Command> commands_;
  std::unordered_map<double, Session*> live_;
  std::deque<Session*> ended_;  // finished in this batch, freed after it (loop thread only)
  size_t timed_ = 0;            // live sessions with an idle timeout (loop thread only)

  void Loop() {
    epoll_event events[256];
    int64_t lastScan = NowMs();
    for (;;) {
      int n = epoll_wait(epoll_, events, 256, timed_ > 0 ? 50 : -1);
      if (n < 0 && errno != EINTR) break;
      bool stop = false;
      for (int i = 0; i < n && !stop; i++) {
        if (events[i].data.ptr == nullptr) {
          stop = !TakeCommands();
          continue;
        }
        Session* s = static_cast<Endpoint*>(events[i].data.ptr)->session;
        if (!s->ended) Pump(s);
      }
      int64_t now = NowMs();
      if (!stop && timed_ > 0 && now - lastScan >= 50) {
        lastScan = now;
        ScanTimeouts(now);
      }
      for (Session* s : ended_) delete s;
      ended_.clear();
      if (stop) return;
    }
  }

  // Returns false when asked to stop.
  bool TakeCommands() {
    uint64_t count;
    ssize_t ignored = read(wake_, &count, sizeof count);
    (void)ignored;
    std::deque<Command> queued;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queued.swap(commands_);
    }
    for (const Command& c : queued) {
      if (c.kind == Command::kStop) {
        std::deque<Session*> all;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          for (auto& [id, s] : live_) all.push_back(s);
        }
        for (Session* s : all) Finish(s, "closed");
        return false;
      }
      if (c.kind == Command::kAdd) {
        Begin(c.session);
      } else {
        Session* s = nullptr;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          auto it = live_.find(c.id);
          if (it != live_.end()) s = it->second;
        }
        if (s != nullptr) Finish(s, nullptr);
      }
    }
    return true;
  }

  void Begin(Session* s) {
    bool ok = pipe2(s->up.pipe, O_NONBLOCK | O_CLOEXEC) == 0 && pipe2(s->down.pipe, O_NONBLOCK | O_CLOEXEC) == 0;
    epoll_event ev{};
    ev.events = 0;
    ev.data.ptr = &s->client;
    ok = ok && epoll_ctl(epoll_, EPOLL_CTL_ADD, s->client.fd, &ev) == 0;
    ev.data.ptr = &s->member;
    ok = ok && epoll_ctl(epoll_, EPOLL_CTL_ADD, s->member.fd, &ev) == 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_[s->id] = s;
    }
    if (s->client.idleMs > 0 || s->member.idleMs > 0) timed_++;
    if (!ok) return Finish(s, "error");
    Pump(s);
  }

  // Moves what can be moved in both directions, then sets what each descriptor waits for.
  void Pump(Session* s) {
    const char* failure = nullptr;
    if (!Move(s->up, s->client, s->member) || !Move(s->down, s->member, s->client)) failure = "error";
    if (failure != nullptr) return Finish(s, failure);
    if (s->up.eof && s->down.eof && s->up.pending == 0 && s->down.pending == 0) return Finish(s, "end");
    Watch(s->client, (Wants(s->up) ? EPOLLIN : 0u) | (s->down.pending > 0 ? EPOLLOUT : 0u));
    Watch(s->member, (Wants(s->down) ? EPOLLIN : 0u) | (s->up.pending > 0 ? EPOLLOUT : 0u));
  }

  static bool Wants(const Flow& f) { return !f.eof && f.pending == 0; }

  void Watch(Endpoint& ep, uint32_t mask) {
    if (ep.mask == mask) return;
    ep.mask = mask;
    epoll_event ev{};
    ev.events = mask;
    ev.data.ptr = &ep;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, ep.fd, &ev);
  }

  // One direction: drain the pipe into dst, refill it from src, until either would block.
  static bool Move(Flow& f, Endpoint& from, Endpoint& to) {
    for (;;) {
      if (f.pending > 0) {
        ssize_t n = splice(f.pipe[0], nullptr, f.dst, nullptr, f.pending, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n > 0) {
          f.pending -= static_cast<size_t>(n);
          f.written += static_cast<uint64_t>(n);
          to.lastActive = NowMs();
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        return false;
      }
      if (f.eof) {
        if (!f.shut) {
          f.shut = true;
          shutdown(f.dst, SHUT_WR);
        }
        return true;
      }
      ssize_t n = splice(f.src, nullptr, f.pipe[1], nullptr, kChunk, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        f.pending += static_cast<size_t>(n);
        f.read += static_cast<uint64_t>(n);
        from.lastActive = NowMs();
        continue;
      }
      if (n == 0) {
        f.eof = true;
        continue;
      }
      if (errno == EAGAIN || errno == EINTR) return true;
      return false;
    }
  }

  void ScanTimeouts(int64_t now) {
    // Only this thread changes live_, so it may read it without the lock.
    std::deque<Session*> expired;
    for (auto& [id, s] : live_) {
      bool clientIdle = s->client.idleMs > 0 && now - s->client.lastActive >= s->client.idleMs;
      bool memberIdle = s->member.idleMs > 0 && now - s->member.lastActive >= s->member.idleMs;
      if (clientIdle || memberIdle) expired.push_back(s);
    }
    for (Session* s : expired) Finish(s, "timeout");
  }

  // Ends a session: its descriptors leave the epoll set (explicitly: the JavaScript side still holds the
  // originals, so closing the duplicates would not remove them) and are closed; JavaScript hears of it
  // unless it asked for the close itself (reason null).
  void Finish(Session* s, const char* reason) {
    if (s->ended) return;
    s->ended = true;
    if (s->client.idleMs > 0 || s->member.idleMs > 0) timed_--;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.erase(s->id);
    }
    for (Endpoint* ep : {&s->client, &s->member}) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, ep->fd, nullptr);
      close(ep->fd);
    }
    for (Flow* f : {&s->up, &s->down}) {
      if (f->pipe[0] >= 0) close(f->pipe[0]);
      if (f->pipe[1] >= 0) close(f->pipe[1]);
    }
    if (reason != nullptr) {
      auto* ended = new Ended{s->id, {s->up.read, s->down.written, s->down.read, s->up.written}, reason};
      if (napi_call_threadsafe_function(onEnd, ended, napi_tsfn_blocking) != napi_ok) delete ended;
    }
    ended_.push_back(s);
  }
};

void CallOnEnd(napi_env env, napi_value callback, void*, void* data) {
  auto* ended = static_cast<Ended*>(data);
  if (env != nullptr) {
    napi_value args[6];
    napi_create_double(env, ended->id, &args[0]);
    for (int i = 0; i < 4; i++) napi_create_double(env, static_cast<double>(ended->counts[i]), &args[1 + i]);
    napi_create_string_utf8(env, ended->reason, NAPI_AUTO_LENGTH, &args[5]);
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 6, args, nullptr);
  }
  delete ended;
}

void FinalizeRelay(napi_env, void* data, void*) {
  auto* relay = static_cast<Relay*>(data);
  relay->Stop();
  delete relay;
}

napi_value Throw(napi_env env, const char* message) {
  napi_throw_error(env, nullptr, message);
  return nullptr;
}

Relay* RelayArg(napi_env env, napi_value value) {
  void* data = nullptr;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == nullptr) return nullptr;
  return static_cast<Relay*>(data);
}

napi_value CreateRelay(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) return Throw(env, "createRelay(onEnd) needs a callback");
  auto* relay = new Relay();
  napi_value name;
  napi_create_string_utf8(env, "argonaut-relay", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], nullptr, name, 0, 1, nullptr, nullptr, nullptr, CallOnEnd, &relay->onEnd) != napi_ok) {
    delete relay;
    return Throw(env, "createRelay: cannot create the callback");
  }
  // The relay thread must not keep the process alive: the sessions it serves do (their sockets).
  napi_unref_threadsafe_function(env, relay->onEnd);
  if (!relay->Start()) {
    delete relay;
    return Throw(env, "createRelay: epoll or eventfd failed");
  }
  napi_value external;
  napi_create_external(env, relay, FinalizeRelay, nullptr, &external);
  return external;
}

napi_value Add(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Relay* relay = argc == 6 ? RelayArg(env, argv[0]) : nullptr;
  if (relay == nullptr) return Throw(env, "add(relay, id, clientFd, memberFd, clientIdleMs, memberIdleMs)");
  double id;
  int32_t cfd, mfd;
  int64_t clientIdle, memberIdle;
  napi_get_value_double(env, argv[1], &id);
  napi_get_value_int32(env, argv[2], &cfd);
  napi_get_value_int32(env, argv[3], &mfd);
  napi_get_value_int64(env, argv[4], &clientIdle);
  napi_get_value_int64(env, argv[5], &memberIdle);
  napi_value result;
  int c = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
  int m = c < 0 ? -1 : fcntl(mfd, F_DUPFD_CLOEXEC, 0);
  if (c < 0 || m < 0) {
    if (c >= 0) close(c);
    napi_get_boolean(env, false, &result);
    return result;
  }
  relay->Post({Command::kAdd, new Session(id, c, m, clientIdle, memberIdle), 0});
  napi_get_boolean(env, true, &result);
  return result;
}

napi_value Bytes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Relay* relay = argc == 2 ? RelayArg(env, argv[0]) : nullptr;
  if (relay == nullptr) return Throw(env, "bytes(relay, id)");
  double id;
  napi_get_value_double(env, argv[1], &id);
  uint64_t counts[4];
  napi_value result;
  if (!relay->Counts(id, counts)) {
    napi_get_undefined(env, &result);
    return result;
  }
  napi_create_array_with_length(env, 4, &result);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    napi_create_double(env, static_cast<double>(counts[i]), &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Relay* relay = argc == 2 ? RelayArg(env, argv[0]) : nullptr;
  if (relay == nullptr) return Throw(env, "close(relay, id)");
  double id;
  napi_get_value_double(env, argv[1], &id);
  relay->Post({Command::kClose, nullptr, id});
  return nullptr;
}

napi_value Stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Relay* relay = argc == 1 ? RelayArg(env, argv[0]) : nullptr;
  if (relay == nullptr) return Throw(env, "stop(relay)");
  relay->Stop();
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"createRelay", nullptr, CreateRelay, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"add", nullptr, Add, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bytes", nullptr, Bytes, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stop", nullptr, Stop, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

#include "devices/virtio/vhost_user_device.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/hex.h"

namespace ember {

Result<uint64_t> VhostUserDevice::OfferedFeatures(const VhostUserFrontend& frontend,
                                                  uint64_t forwarded) {
  uint64_t features = frontend.backend_features() & forwarded;
  if (!(features & kVirtioFeatureVersion1)) {
    return Status::Error(frontend.owner() +
                         ": the backend does not offer VIRTIO_F_VERSION_1 (modern virtio)");
  }
  return features;
}

void VhostUserDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < config_space_.size() ? config_space_[offset + i] : 0;
  }
}

std::vector<VringSetup> VhostUserDevice::Rings(const Started& started, bool from_used_index) const {
  std::vector<VringSetup> rings;
  for (size_t i = 0; i < started.queues.size(); ++i) {
    const VirtQueueState& queue = started.queues[i];
    if (!queue.ready) continue;  // the driver may leave queues unused
    uint16_t base = 0;
    if (from_used_index) {
      // used ring: le16 flags, le16 idx, ...; the transport checked it is in memory.
      std::memcpy(&base, started.memory->HostAddress(queue.used_address + 2, 2), 2);
    }
    rings.push_back(VringSetup{static_cast<uint32_t>(i), queue.size, queue.descriptor_address,
                               queue.available_address, queue.used_address, base,
                               started.kick_fds[i], started.interrupt_fd});
  }
  return rings;
}

Status VhostUserDevice::Activate(const Activation& activation) {
  Want(Started{activation.acked_features,
               &activation.memory,
               {activation.queues.begin(), activation.queues.end()},
               {activation.kick_fds.begin(), activation.kick_fds.end()},
               activation.interrupt_fd});
  return Status::Ok();
}

void VhostUserDevice::Reset() {
  const uint64_t post = Want(std::nullopt);
  // A stalled backend is bounded by its reply timeout (once per message of
  // the stop); the wait gives it that and a little more, then the vCPU
  // goes on and the log says the rings may still be in use.
  constexpr auto kLimit = VhostUserConnection::kReplyTimeout * 2;
  std::unique_lock lock(wanted_mutex_);
  if (!post_finished_.wait_for(lock, kLimit, [&] { return finished_posts_ >= post; })) {
    EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN,
                      "{}: reset: the backend did not stop its rings within {} s", name_,
                      std::chrono::duration_cast<std::chrono::seconds>(kLimit).count());
  }
}

void VhostUserDevice::PostFinished(uint64_t post) {
  {
    std::lock_guard lock(wanted_mutex_);
    finished_posts_ = std::max(finished_posts_, post);
  }
  post_finished_.notify_all();
}

void VhostUserDevice::RunOnControl(std::function<void()> job) {
  if (control_ == nullptr) {
    job();
  } else {
    control_->Post(std::move(job));
  }
}

uint64_t VhostUserDevice::Want(std::optional<Started> wanted) {
  uint64_t post;
  {
    std::lock_guard lock(wanted_mutex_);
    wanted_ = std::move(wanted);
    ++wanted_generation_;
    // One Apply reads the latest wish: a driver that loops resets queues
    // nothing more while it is pending.
    if (apply_posted_) return posts_;
    apply_posted_ = true;
    post = ++posts_;
  }
  // Whether the job runs or a stopping control thread drops it, destroying
  // it wakes a Reset waiting for it.
  // (A constructor, not an aggregate: a moved-from temporary would report
  // the post finished early, and clang 14 has no parenthesized aggregates.)
  struct Finished {
    Finished(VhostUserDevice* d, uint64_t p) : device(d), post(p) {}
    Finished(const Finished&) = delete;
    Finished& operator=(const Finished&) = delete;
    ~Finished() { device->PostFinished(post); }
    VhostUserDevice* device;
    uint64_t post;
  };
  RunOnControl([this, finished = std::make_shared<Finished>(this, post)] { Apply(); });
  return post;
}

void VhostUserDevice::Apply() {
  std::optional<Started> wanted;
  uint64_t generation;
  {
    std::lock_guard lock(wanted_mutex_);
    wanted = wanted_;
    generation = wanted_generation_;
    apply_posted_ = false;
  }
  std::lock_guard lock(mutex_);
  if (generation == applied_generation_) return;
  applied_generation_ = generation;
  if (started_ && connected_) {
    if (Status stopped = frontend_->Stop(); !stopped.ok()) {
      EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN, "{}: reset: {}", name_, stopped.message());
    }
  }
  started_ = std::move(wanted);
  if (!started_) return;
  // The driver's side is done either way: a backend that is away, slow or
  // failing must not leave the device dead for the rest of the VM's life.
  // The rings are handed over when the reconnector has a working backend
  // again, exactly as after a backend restart.
  if (!connected_) {
    EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN,
                      "{}: started while the vhost-user backend is away; its rings are set up "
                      "when it is back",
                      name_);
    return;
  }
  std::vector<VringSetup> rings = Rings(*started_, /*from_used_index=*/false);
  if (Status status = frontend_->Start(started_->acked_features, *started_->memory, rings);
      !status.ok()) {
    EMBER_LOG_LIMITED(log_limit_, SPDLOG_WARN,
                      "{}: the vhost-user backend did not take the rings ({}); dropping the "
                      "connection to start again on a new one",
                      name_, status.message());
    // The reconnector sees the hang-up on the VMM thread and takes over.
    shutdown(frontend_->socket_fd(), SHUT_RDWR);
    return;
  }
  SPDLOG_INFO("{}: started with {} queue(s)", name_, rings.size());
}

void VhostUserDevice::Reconnect(VhostUserConnection connection, std::function<void(Status)> done) {
  // std::function copies its callable; the connection moves once.
  auto moved = std::make_shared<VhostUserConnection>(std::move(connection));
  RunOnControl([this, moved, done = std::move(done)] { done(ReconnectNow(std::move(*moved))); });
}

Status VhostUserDevice::ReconnectNow(VhostUserConnection connection) {
  std::lock_guard lock(mutex_);
  // While the new backend negotiates, a machine that shuts down must find
  // this connection (the old one is already gone); on failure the name goes
  // back to the old socket, which stays open until it is replaced.
  socket_fd_ = connection.fd();
  Result<std::unique_ptr<VhostUserFrontend>> resumed = NegotiateAndResume(std::move(connection));
  if (!resumed.ok()) {
    socket_fd_ = frontend_->socket_fd();
    return resumed.status();
  }
  frontend_ = std::move(*resumed);
  connected_ = true;
  return Status::Ok();
}

Result<std::unique_ptr<VhostUserFrontend>> VhostUserDevice::NegotiateAndResume(
    VhostUserConnection connection) {
  EMBER_ASSIGN_OR_RETURN(
      std::unique_ptr<VhostUserFrontend> frontend,
      VhostUserFrontend::Negotiate(std::move(connection), frontend_->extra_protocol_features()));
  if (!started_) return frontend;
  // What the driver acked from the old backend, the new one must offer.
  const uint64_t needed = started_->acked_features & frontend_->backend_features();
  const uint64_t missing = needed & ~frontend->backend_features();
  if (missing != 0) {
    return Status::Error(name_ + ": the restarted backend lacks features the driver acked (" +
                         Hex(missing) + "); the device stays broken");
  }
  std::vector<VringSetup> rings = Rings(*started_, /*from_used_index=*/true);
  EMBER_RETURN_IF_ERROR(frontend->Start(started_->acked_features, *started_->memory, rings));
  // Requests the guest queued while nobody served them.
  for (const VringSetup& ring : rings) {
    uint64_t one = 1;
    (void)!write(ring.kick_fd, &one, sizeof(one));
  }
  return frontend;
}

}  // namespace ember

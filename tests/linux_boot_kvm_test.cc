// Boots Debian's cloud kernel with the initramfs from scripts/linux-guest.sh
// through the ember binary, with 1 and 2 vCPUs: init is reached, every vCPU
// and the memory are seen, and the guest's reboot ends ember cleanly.
//
// Where KVM is hardware-backed (kvm_intel, kvm_amd) ember runs directly.
// Elsewhere (PVM cannot boot Linux, or no /dev/kvm) both boots run in one
// outer VM of scripts/nested-kvm.sh, whose kvm_amd is hardware-style. The
// test is never skipped for lack of hardware KVM.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <string>

#include "tests/test_util.h"

namespace ember {
namespace {

constexpr uint32_t kMemMib = 512;
constexpr int kDirectTimeoutMs = 120000;
// The harness's own limit for the command, and ours for the whole harness
// (its outer boot included), both under ctest's 600 s per test.
constexpr int kNestedCommandTimeoutS = 450;
constexpr int kNestedTimeoutMs = 540000;

bool HardwareKvm() {
  return access("/dev/kvm", R_OK | W_OK) == 0 &&
         (access("/sys/module/kvm_intel", F_OK) == 0 || access("/sys/module/kvm_amd", F_OK) == 0);
}

struct BootOutcome {
  int exit_code = -1;
  std::string console;
  std::string log;
};

void WriteConfig(const std::string& path, uint32_t vcpus) {
  const std::string linux_dir = testing::LinuxGuestDir();
  testing::WriteFile(
      path, R"({"boot-source": {"kernel_image_path": ")" + linux_dir +
                R"(/vmlinuz", "initrd_path": ")" + linux_dir +
                R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off"},
                          "machine-config": {"vcpu_count": )" +
                std::to_string(vcpus) + R"(, "mem_size_mib": )" + std::to_string(kMemMib) + "}}");
}

// Runs `script` (sh) where a hardware-style /dev/kvm exists: directly on
// hardware KVM, else inside the nested harness. $S names `scratch`, which
// both sides see at the same path.
testing::ProcessResult RunWithKvm(const testing::TempDir& scratch, const std::string& script) {
  testing::WriteFile(scratch.File("run.sh"), "S=" + scratch.path() + "\n" + script);
  if (HardwareKvm())
    return testing::RunProcess({"/bin/sh", scratch.File("run.sh")}, kDirectTimeoutMs);
  testing::ProcessResult nested =
      testing::RunProcess({std::string(EMBER_SOURCE_DIR) + "/scripts/nested-kvm.sh", "--timeout",
                           std::to_string(kNestedCommandTimeoutS), "--scratch", scratch.path(),
                           "--", "sh", scratch.File("run.sh")},
                          kNestedTimeoutMs);
  // The harness prints how long each stage took; keep it in the test log.
  std::printf("nested harness (exit %d): %s%s\n", nested.exit_code, nested.err.c_str(),
              nested.out.c_str());
  // 90-96 are the harness's own failures (scripts/nested-kvm.sh), which the
  // scripts here never return themselves: say so, rather than let them read
  // as ember's.
  if (nested.exit_code >= 90 && nested.exit_code <= 96) {
    ADD_FAILURE() << "the nested harness failed (exit " << nested.exit_code
                  << "), not ember: " << nested.err;
  }
  // Its --timeout ends the command first (94): a harness still running at
  // our limit has hung itself.
  if (nested.timed_out) {
    ADD_FAILURE() << "the nested harness did not end within " << kNestedTimeoutMs / 1000
                  << " s (its command limit is " << kNestedCommandTimeoutS
                  << " s) and was killed: the harness's failure, not ember's: " << nested.err;
  }
  return nested;
}

// Boots with each vCPU count, all in one run of RunWithKvm.
std::map<uint32_t, BootOutcome> BootLinux(const std::vector<uint32_t>& vcpu_counts) {
  std::map<uint32_t, BootOutcome> outcomes;
  testing::TempDir scratch;
  for (uint32_t vcpus : vcpu_counts) {
    WriteConfig(scratch.File("vm-" + std::to_string(vcpus) + ".json"), vcpus);
  }
  // One outer boot for all cases: each ember run leaves its console, log
  // and exit status in the shared scratch directory.
  std::string script;
  for (uint32_t vcpus : vcpu_counts) {
    std::string n = std::to_string(vcpus);
    script += std::string(EMBER_BINARY) + " --no-api --config-file $S/vm-" + n + ".json > $S/out-" +
              n + " 2> $S/err-" + n + "; echo $? > $S/rc-" + n + "\n";
  }
  RunWithKvm(scratch, script);
  for (uint32_t vcpus : vcpu_counts) {
    std::string n = std::to_string(vcpus);
    std::string rc = testing::ReadFile(scratch.File("rc-" + n));
    outcomes[vcpus] = {rc.empty() ? -1 : std::stoi(rc), testing::ReadFile(scratch.File("out-" + n)),
                       testing::ReadFile(scratch.File("err-" + n))};
  }
  return outcomes;
}

// Not `quiet`: with 2 vCPUs and no kernel messages after init, one run in
// the nested harness stalled at init's console output (the tty waiting for
// a transmit-empty interrupt that never came, it seems); the kernel's
// console writes re-arm it. Suspected lost THRE interrupt, to be found.
TEST(LinuxBootKvmTest, DebianKernelReachesInitWithOneAndTwoVcpus) {
  struct stat info {};
  ASSERT_EQ(stat((testing::LinuxGuestDir() + "/vmlinuz").c_str(), &info), 0)
      << "run scripts/linux-guest.sh first";
  std::map<uint32_t, BootOutcome> outcomes = BootLinux({1, 2});
  for (const auto& [vcpus, outcome] : outcomes) {
    SCOPED_TRACE(std::to_string(vcpus) + " vCPU(s)");
    EXPECT_EQ(outcome.exit_code, 0) << outcome.log;
    EXPECT_NE(outcome.console.find("EMBER-LINUX: init reached"), std::string::npos)
        << outcome.console;
    EXPECT_TRUE(std::regex_search(
        outcome.console, std::regex("EMBER-LINUX: nproc=" + std::to_string(vcpus) + "\\r?\\n")))
        << outcome.console;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(outcome.console, match, std::regex("memtotal_kib=([0-9]+)")))
        << outcome.console;
    uint64_t memtotal_kib = std::stoull(match[1]);
    EXPECT_LE(memtotal_kib, kMemMib * 1024u);
    EXPECT_GE(memtotal_kib, kMemMib * 1024u * 8 / 10) << "the kernel keeps under 20% for itself";
    EXPECT_NE(outcome.console.find("EMBER-LINUX: rebooting"), std::string::npos) << outcome.console;
    EXPECT_NE(outcome.log.find("VM stopped: guest reset"), std::string::npos) << outcome.log;
  }
}

// virtio-fs and virtio-net with the Linux drivers: the Debian kernel finds
// both devices through ACPI; it mounts the tag, checksums a 64 MiB file from
// the host, writes a copy back, lists a directory; it brings up eth0 with
// ember's MAC (the net backend here only negotiates: testpmd would
// busy-poll the harness's only vCPU); and it powers off through ACPI.
TEST(LinuxBootKvmTest, DebianKernelFindsFsAndNetThroughAcpiAndPowersOff) {
  testing::TempDir scratch;
  std::filesystem::create_directories(scratch.File("share/many"));
  std::string big(64 << 20, '\0');
  uint64_t x = 88172645463325252ull;  // xorshift: incompressible, reproducible
  for (size_t i = 0; i < big.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(&big[i], &x, 8);
  }
  testing::WriteFile(scratch.File("share/in.bin"), big);
  for (int i = 0; i < 50; ++i)
    testing::WriteFile(scratch.File("share/many/f" + std::to_string(i)), std::string("x"));
  const std::string linux_dir = testing::LinuxGuestDir();
  testing::WriteFile(
      scratch.File("vm.json"),
      R"({"boot-source": {"kernel_image_path": ")" + linux_dir + R"(/vmlinuz", "initrd_path": ")" +
          linux_dir +
          R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off ember.fs=hostshare ember.poweroff"},
                          "machine-config": {"vcpu_count": 2, "mem_size_mib": 512},
                          "fs": [{"fs_id": "share", "tag": "hostshare", "socket": "/run/ember-linux-vfs.sock"}],
                          "network-interfaces": [{"iface_id": "eth0", "guest_mac": "52:54:00:12:34:56",
                                                  "socket": "/run/ember-linux-net.sock"}]})");
  // The backends run beside ember (inside the harness when nested).
  RunWithKvm(scratch,
             "/usr/lib/qemu/virtiofsd --socket-path=/run/ember-linux-vfs.sock -o source=$S/share "
             "-o cache=auto -o sandbox=chroot > $S/virtiofsd.log 2>&1 &\n" EMBER_FAKE_NET_BACKEND
             " /run/ember-linux-net.sock > $S/net.log 2>&1 &\n"
             "for i in $(seq 100); do [ -S /run/ember-linux-vfs.sock ] && [ -S "
             "/run/ember-linux-net.sock ] "
             "&& break; sleep 0.05; done\n" +
                 std::string(EMBER_BINARY) +
                 " --no-api --config-file $S/vm.json > $S/out 2> $S/err; echo $? > $S/rc\n"
                 "md5sum $S/share/in.bin | cut -d' ' -f1 > $S/md5\n");
  const std::string console = testing::ReadFile(scratch.File("out"));
  const std::string log = testing::ReadFile(scratch.File("err"));
  const std::string md5 = testing::ReadFile(scratch.File("md5"));
  EXPECT_EQ(testing::ReadFile(scratch.File("rc")), "0\n") << log;
  EXPECT_NE(console.find("EMBER-LINUX: nproc=2"), std::string::npos) << console;
  EXPECT_NE(console.find("EMBER-LINUX: virtio_devices=2"), std::string::npos) << console;
  EXPECT_NE(console.find("EMBER-LINUX: net=eth0"), std::string::npos) << console;
  EXPECT_NE(console.find("EMBER-LINUX: eth0 mac=52:54:00:12:34:56"), std::string::npos) << console;
  EXPECT_NE(console.find("EMBER-LINUX: fs mounted hostshare"), std::string::npos) << console;
  ASSERT_EQ(md5.size(), 33u) << "md5sum of in.bin on the host side";
  EXPECT_NE(console.find("EMBER-LINUX: fs in.bin md5=" + md5.substr(0, 32)), std::string::npos)
      << console;
  EXPECT_NE(console.find("EMBER-LINUX: fs wrote out.bin size=67108864"), std::string::npos)
      << console;
  EXPECT_NE(console.find("EMBER-LINUX: fs many=50"), std::string::npos) << console;
  EXPECT_TRUE(testing::ReadFile(scratch.File("share/out.bin")) == big)
      << "out.bin differs from in.bin";
  EXPECT_NE(console.find("EMBER-LINUX: powering off"), std::string::npos) << console;
  EXPECT_NE(log.find("VM stopped: guest powered off through ACPI"), std::string::npos) << log;
}

// Debian's kernel with its root on a drive, as Firecracker users boot it:
// the initramfs loads virtio_blk and switch_roots to /dev/vda (ember put
// root=/dev/vda rw on the command line); init on the drive writes and syncs
// a file, finds a second drive read-only, and reboots. The host then reads
// the file out of the image with debugfs and checks the image with e2fsck.
// Both boots in one outer VM: the root on ember's own virtio-blk, then on
// vhost-user-blk served by qemu-storage-daemon.
TEST(LinuxBootKvmTest, DebianKernelBootsFromAnExt4DriveAndWritesToIt) {
  testing::TempDir scratch;
  const std::string linux_dir = testing::LinuxGuestDir();
  for (const char* copy : {"root.ext4", "root-vu.ext4"}) {
    ASSERT_TRUE(std::filesystem::copy_file(linux_dir + "/rootfs.ext4", scratch.File(copy)))
        << "run scripts/linux-guest.sh first";
  }
  std::filesystem::create_directories(scratch.File("ro-tree"));
  testing::WriteFile(scratch.File("ro-tree/hello.txt"), std::string("hello from the host\n"));
  ASSERT_EQ(testing::RunProcess({"/usr/sbin/mke2fs", "-q", "-t", "ext4", "-d",
                                 scratch.File("ro-tree"), "-F", scratch.File("ro.ext4"), "8M"},
                                30000)
                .exit_code,
            0);
  const std::string ro_before = testing::ReadFile(scratch.File("ro.ext4"));
  const std::string ro_drive = R"({"drive_id": "data", "path_on_host": ")" +
                               scratch.File("ro.ext4") +
                               R"(", "is_root_device": false, "is_read_only": true})";
  const std::string boot =
      R"({"boot-source": {"kernel_image_path": ")" + linux_dir + R"(/vmlinuz", "initrd_path": ")" +
      linux_dir +
      R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 quiet reboot=k panic=-1 pci=off ember.blk"},
          "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}, "drives": [)" +
      ro_drive + ", ";
  testing::WriteFile(scratch.File("vm.json"),
                     boot + R"({"drive_id": "rootfs", "path_on_host": ")" +
                         scratch.File("root.ext4") +
                         R"(", "is_root_device": true, "cache_type": "Writeback"}]})");
  testing::WriteFile(scratch.File("vm-vu.json"),
                     boot + R"({"drive_id": "rootfs", "socket": "/run/ember-linux-blk.sock",
                                "is_root_device": true, "cache_type": "Writeback"}]})");
  RunWithKvm(scratch,
             std::string(EMBER_BINARY) +
                 " --no-api --config-file $S/vm.json > $S/out 2> $S/err; echo $? > $S/rc\n"
                 "qemu-storage-daemon --blockdev driver=file,node-name=f,filename=$S/root-vu.ext4 "
                 "--blockdev driver=raw,node-name=disk0,file=f --export "
                 "type=vhost-user-blk,id=e0,node-name=disk0,addr.type=unix,"
                 "addr.path=/run/ember-linux-blk.sock,writable=on > $S/qsd.log 2>&1 &\n"
                 "qsd=$!\n"
                 "for i in $(seq 100); do [ -S /run/ember-linux-blk.sock ] && break; sleep 0.05; "
                 "done\n" +
                 EMBER_BINARY +
                 " --no-api --config-file $S/vm-vu.json > $S/out-vu 2> $S/err-vu; echo $? > "
                 "$S/rc-vu\n"
                 "kill $qsd; wait $qsd\n");
  for (const std::string suffix : {"", "-vu"}) {
    SCOPED_TRACE(suffix.empty() ? "ember's virtio-blk" : "vhost-user-blk");
    const std::string console = testing::ReadFile(scratch.File("out" + suffix));
    const std::string log = testing::ReadFile(scratch.File("err" + suffix));
    EXPECT_EQ(testing::ReadFile(scratch.File("rc" + suffix)), "0\n") << log;
    EXPECT_NE(console.find("EMBER-LINUX: root /dev/vda ext4 rw"), std::string::npos) << console;
    EXPECT_NE(console.find("EMBER-LINUX: blk wrote /from-guest.txt"), std::string::npos) << console;
    EXPECT_NE(console.find("EMBER-LINUX: blk ro hello=hello from the host"), std::string::npos)
        << console;
    EXPECT_NE(console.find("EMBER-LINUX: blk ro write: touch: /mnt/ro/new: Read-only file system"),
              std::string::npos)
        << console;
    EXPECT_NE(console.find("EMBER-LINUX: blk ro=1 size=16384"), std::string::npos) << console;
    EXPECT_NE(console.find("EMBER-LINUX: blk root remounted ro"), std::string::npos) << console;
    EXPECT_NE(log.find("VM stopped: guest reset"), std::string::npos) << log;
    const std::string image = scratch.File(suffix.empty() ? "root.ext4" : "root-vu.ext4");
    testing::ProcessResult file =
        testing::RunProcess({"/usr/sbin/debugfs", "-R", "cat /from-guest.txt", image}, 30000);
    EXPECT_EQ(file.out, "written by the guest on its root drive\n") << file.err;
    testing::ProcessResult fsck = testing::RunProcess({"/usr/sbin/e2fsck", "-fn", image}, 30000);
    EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
  }
  EXPECT_TRUE(testing::ReadFile(scratch.File("ro.ext4")) == ro_before)
      << "the read-only drive changed";
}

// Debian's kernel on a TAP (Firecracker's host_dev_name) in the outer
// machine: eth0 with ember's virtio-net, a ping to the TAP's address, and
// a 16 MiB TCP stream to a listener on the host side of the TAP, with the
// TSO the driver negotiated (the guest prints its virtio feature bits).
// The same boot reaches MMDS V2 over that interface (busybox wget and raw
// requests: no token, a token, a wrong and an expired one, malformed and
// oversized requests) and reads /dev/hwrng from ember's virtio-rng.
TEST(LinuxBootKvmTest, DebianKernelPingsStreamsAndReachesMmdsThroughATapAndReadsHwrng) {
  testing::TempDir scratch;
  const std::string linux_dir = testing::LinuxGuestDir();
  // The host side: receive everything, report size and md5, then tell the
  // guest (which waits for it before powering off).
  testing::WriteFile(scratch.File("sink.py"), std::string(R"(import hashlib, socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("10.78.0.1", 5000))
server.listen(1)
server.settimeout(400)
conn, _ = server.accept()
digest, size = hashlib.md5(), 0
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    digest.update(data)
    size += len(data)
open(sys.argv[1], "w").write("%d %s\n" % (size, digest.hexdigest()))
for _ in range(30):
    try:
        socket.create_connection(("10.78.0.2", 5001), timeout=2).sendall(b"received\n")
        break
    except OSError:
        time.sleep(1)
)"));
  testing::WriteFile(
      scratch.File("vm.json"),
      R"({"boot-source": {"kernel_image_path": ")" + linux_dir + R"(/vmlinuz", "initrd_path": ")" +
          linux_dir +
          R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 quiet reboot=k panic=-1 pci=off ember.ip=10.78.0.2/24 ember.ping=10.78.0.1 ember.tcp=10.78.0.1 ember.tcpmb=16 ember.mmds ember.rng ember.poweroff"},
          "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
          "network-interfaces": [{"iface_id": "eth0", "guest_mac": "06:00:0a:4e:00:02", "host_dev_name": "tap0"}],
          "mmds-config": {"version": "V2", "network_interfaces": ["eth0"]},
          "entropy": {}})");
  testing::WriteFile(
      scratch.File("metadata.json"),
      R"({"latest": {"meta-data": {"ami-id": "ami-ember-nested", "instance-id": "i-0e1"}}})");
  RunWithKvm(
      scratch,
      "ip tuntap add tap0 mode tap && ip addr add 10.78.0.1/24 dev tap0 && "
      "ip link set tap0 up || echo tap-setup-failed > $S/rc\n"
      "python3 $S/sink.py $S/received > $S/sink.log 2>&1 &\n"
      "sink=$!\n"
      "sleep 0.5\n" +
          std::string(EMBER_BINARY) +
          " --no-api --config-file $S/vm.json --metadata $S/metadata.json > $S/out 2> $S/err; "
          "echo $? >> $S/rc\n"
          "wait $sink\n"
          "ip -s link show tap0 > $S/tap-stats\n"
          "ip tuntap del tap0 mode tap\n");
  const std::string console = testing::ReadFile(scratch.File("out"));
  const std::string log = testing::ReadFile(scratch.File("err"));
  EXPECT_EQ(testing::ReadFile(scratch.File("rc")), "0\n") << log;
  EXPECT_NE(console.find("EMBER-LINUX: eth0 10.78.0.2/24"), std::string::npos) << console;
  EXPECT_NE(console.find("EMBER-LINUX: ping 10.78.0.1 ok"), std::string::npos) << console;
  std::smatch features, sent;
  ASSERT_TRUE(std::regex_search(console, features, std::regex("eth0 virtio features=([01]+)")))
      << console;
  const std::string bits = features[1];
  std::printf("virtio-net features the guest negotiated: %s\n", bits.c_str());
  ASSERT_GT(bits.size(), 11u);
  EXPECT_EQ(bits[0], '1') << "CSUM";
  EXPECT_EQ(bits[11], '1') << "HOST_TSO4: the guest sends TSO segments";
  ASSERT_TRUE(
      std::regex_search(console, sent, std::regex("tcp sent 16777216 bytes md5=([0-9a-f]{32})")))
      << console;
  EXPECT_EQ(testing::ReadFile(scratch.File("received")), "16777216 " + sent[1].str() + "\n")
      << testing::ReadFile(scratch.File("sink.log"));
  EXPECT_NE(console.find("EMBER-LINUX: tcp peer says received"), std::string::npos) << console;

  // MMDS V2: every answer the guest saw, as the lines it printed.
  auto line = [&](const std::string& key) {
    std::smatch found;
    if (!std::regex_search(console, found, std::regex("EMBER-LINUX: " + key + "([^\r\n]*)")))
      return std::string("<no line '" + key + "'>");
    return found[1].str();
  };
  EXPECT_NE(line("mmds no-token: ").find("HTTP/1.1 401"), std::string::npos) << console;
  EXPECT_EQ(line("mmds token length="), "64") << console;
  EXPECT_EQ(line("mmds ami-id="), "ami-ember-nested") << console;
  EXPECT_EQ(line("mmds listing="), "ami-id,instance-id") << console;
  EXPECT_NE(line("mmds wrong-token: ").find("HTTP/1.1 401"), std::string::npos) << console;
  EXPECT_NE(line("mmds expired-token: ").find("HTTP/1.1 401"), std::string::npos) << console;
  EXPECT_EQ(line("mmds malformed: ").substr(0, 12), "HTTP/1.1 400") << console;
  EXPECT_EQ(line("mmds oversized: ").substr(0, 12), "HTTP/1.1 413") << console;
  // virtio-rng: the guest's hwrng core picked it, and two reads differ.
  EXPECT_EQ(line("hwrng current="), "virtio_rng.0") << console;
  std::smatch reads;
  ASSERT_TRUE(
      std::regex_search(console, reads, std::regex("hwrng read ([0-9a-f]{32}) ([0-9a-f]{32})")))
      << console;
  EXPECT_NE(reads[1].str(), reads[2].str());
  std::printf("tap0 after the run:\n%s\n", testing::ReadFile(scratch.File("tap-stats")).c_str());
}

// Debian's kernel with its own virtio-vsock driver and socat, through
// ember's hybrid vsock: the host side speaks Kata's handshake (CONNECT
// 1024, retried until the guest's listener is up, as Kata's agent client
// does), moves 1 MiB each way with md5s checked on both sides, and answers
// a guest-initiated stream on uds_path_5000.
TEST(LinuxBootKvmTest, DebianKernelTalksThroughHybridVsock) {
  testing::TempDir scratch;
  const std::string linux_dir = testing::LinuxGuestDir();
  testing::WriteFile(scratch.File("host.py"),
                     std::string(R"(import hashlib, os, socket, sys, threading, time
uds, out = sys.argv[1], sys.argv[2]
hello = socket.socket(socket.AF_UNIX)
hello.bind(uds + "_5000")
hello.listen(1)
def answer():
    conn, _ = hello.accept()
    line = conn.makefile().readline()
    conn.sendall(b"hello linux\n")
    conn.close()
    open(out + ".hello", "w").write(line)
threading.Thread(target=answer, daemon=True).start()
deadline = time.time() + 400
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(20)
        s.connect(uds)
        s.sendall(b"CONNECT 1024\n")
        reply = b""
        while not reply.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            reply += b
        if reply.startswith(b"OK "):
            break
        s.close()
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("no OK from the guest")
    time.sleep(0.5)
data = os.urandom(1 << 20)
s.sendall(data)
got = b""
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    got += chunk
open(out, "w").write("%s %s %d %s\n" % (reply.decode().strip(), hashlib.md5(data).hexdigest(), len(got), hashlib.md5(got).hexdigest()))
)"));
  testing::WriteFile(
      scratch.File("vm.json"),
      R"({"boot-source": {"kernel_image_path": ")" + linux_dir + R"(/vmlinuz", "initrd_path": ")" +
          linux_dir +
          R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 quiet reboot=k panic=-1 pci=off ember.vsock ember.poweroff"},
          "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
          "vsock": {"guest_cid": 3, "uds_path": ")" +
          scratch.File("v.sock") + R"("}})");
  RunWithKvm(scratch,
             "python3 $S/host.py $S/v.sock $S/host-result > $S/host.log 2>&1 &\n"
             "host=$!\n"
             "sleep 0.5\n" +
                 std::string(EMBER_BINARY) +
                 " --no-api --config-file $S/vm.json > $S/out 2> $S/err; echo $? > $S/rc\n"
                 "wait $host\n");
  const std::string console = testing::ReadFile(scratch.File("out"));
  EXPECT_EQ(testing::ReadFile(scratch.File("rc")), "0\n") << testing::ReadFile(scratch.File("err"));
  EXPECT_NE(console.find("EMBER-LINUX: vsock reply hello linux"), std::string::npos) << console;
  EXPECT_EQ(testing::ReadFile(scratch.File("host-result.hello")), "hello from linux\n");
  std::smatch guest, host;
  ASSERT_TRUE(std::regex_search(
      console, guest,
      std::regex("vsock received 1048576 bytes md5=([0-9a-f]{32}) sent md5=([0-9a-f]{32})")))
      << console;
  const std::string result = testing::ReadFile(scratch.File("host-result"));
  ASSERT_TRUE(std::regex_search(result, host,
                                std::regex("^OK (\\d+) ([0-9a-f]{32}) 1048576 ([0-9a-f]{32})\n$")))
      << result << testing::ReadFile(scratch.File("host.log"));
  EXPECT_GE(std::stoull(host[1]), 1ull << 30);
  EXPECT_EQ(host[2], guest[1]) << "what the host sent is what the guest received";
  EXPECT_EQ(host[3], guest[2]) << "what the guest sent is what the host received";
}

// Two Linux guests joined by DPDK testpmd (io mode) ping each other and
// move a 1 MiB TCP stream, through ember's vhost-user-net devices.
// The guests boot with `quiet`: every console byte is a guest exit, about
// 1 ms each in the nested harness. (Only here, with one vCPU per guest: a
// 2-vCPU guest booted quiet once stalled at init's console output, see
// the boot test above.)
TEST(LinuxBootKvmTest, TwoLinuxGuestsPingAndStreamThroughTestpmd) {
  testing::TempDir scratch;
  const std::string linux_dir = testing::LinuxGuestDir();
  struct Guest {
    std::string name, ip, args, mac;
  };
  const Guest guests[] = {
      {"a", "10.0.0.1/24", "ember.ping=10.0.0.2 ember.tcp=listen", "52:54:00:00:00:0a"},
      {"b", "10.0.0.2/24", "ember.ping=10.0.0.1 ember.tcp=10.0.0.1", "52:54:00:00:00:0b"}};
  std::string script =
      "dpdk-testpmd --no-huge -m 256 --no-pci --lcores '(0,1)@0' --file-prefix=ember-linux-ping "
      "--vdev 'net_vhost0,iface=/run/ember-a.sock,queues=1' "
      "--vdev 'net_vhost1,iface=/run/ember-b.sock,queues=1' -- --forward-mode=io --auto-start "
      "--stats-period 60 --total-num-mbufs=8192 > $S/testpmd.log 2>&1 &\n"
      "testpmd=$!\n"
      "for i in $(seq 300); do [ -S /run/ember-a.sock ] && [ -S /run/ember-b.sock ] && break; "
      "sleep 0.1; done\n"
      // The forwarding lcore busy-polls. With one CPU for everything (the
      // harness's outer vCPU) it would take a third of it from the booting
      // guests and from testpmd's own vhost-user thread, whose replies then
      // come seconds late. SCHED_IDLE lets it run whenever nothing else wants
      // the CPU, which is when the guests wait for the network.
      "for t in /proc/$testpmd/task/*; do "
      "[ \"$(cat $t/comm)\" = rte-worker-1 ] && chrt --idle -p 0 ${t##*/}; done\n";
  for (const Guest& guest : guests) {
    testing::WriteFile(
        scratch.File(guest.name + ".json"),
        R"({"boot-source": {"kernel_image_path": ")" + linux_dir +
            R"(/vmlinuz", "initrd_path": ")" + linux_dir +
            R"(/initramfs.cpio.gz", "boot_args": "console=ttyS0 quiet reboot=k panic=-1 pci=off ember.ip=)" +
            guest.ip + " " + guest.args + R"( ember.poweroff"},
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
            "network-interfaces": [{"iface_id": "eth0", "guest_mac": ")" +
            guest.mac + R"(", "socket": "/run/ember-)" + guest.name + R"(.sock"}]})");
    script += std::string(EMBER_BINARY) + " --no-api --config-file $S/" + guest.name +
              ".json > $S/" + guest.name + ".out 2> $S/" + guest.name + ".err & pid_" + guest.name +
              "=$!\n";
  }
  script +=
      "wait $pid_a; echo $? > $S/a.rc; wait $pid_b; echo $? > $S/b.rc\n"
      "kill -INT $testpmd; wait $testpmd; rm -rf /var/run/dpdk/ember-linux-ping\n";
  RunWithKvm(scratch, script);
  const std::string a = testing::ReadFile(scratch.File("a.out"));
  const std::string b = testing::ReadFile(scratch.File("b.out"));
  EXPECT_EQ(testing::ReadFile(scratch.File("a.rc")), "0\n")
      << testing::ReadFile(scratch.File("a.err"));
  EXPECT_EQ(testing::ReadFile(scratch.File("b.rc")), "0\n")
      << testing::ReadFile(scratch.File("b.err"));
  EXPECT_NE(a.find("EMBER-LINUX: ping 10.0.0.2 ok"), std::string::npos) << a;
  EXPECT_NE(b.find("EMBER-LINUX: ping 10.0.0.1 ok"), std::string::npos) << b;
  std::smatch sent, received;
  ASSERT_TRUE(std::regex_search(b, sent, std::regex("tcp sent 1048576 bytes md5=([0-9a-f]{32})")))
      << b;
  ASSERT_TRUE(
      std::regex_search(a, received, std::regex("tcp received 1048576 bytes md5=([0-9a-f]{32})")))
      << a;
  EXPECT_EQ(sent[1], received[1]) << "the stream arrived changed";
  EXPECT_NE(b.find("EMBER-LINUX: tcp peer says received"), std::string::npos) << b;
  EXPECT_NE(testing::ReadFile(scratch.File("a.err")).find("guest powered off through ACPI"),
            std::string::npos);
}

}  // namespace
}  // namespace ember

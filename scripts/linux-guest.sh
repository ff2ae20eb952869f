#!/usr/bin/env bash
# Build a small Linux guest (bzImage + initramfs) for ember from Debian 12
# packages only.
#
#   scripts/linux-guest.sh [--out DIR] [--refresh] [--quiet]
#
# Result (stable names, in ${EMBER_CACHE:-$HOME/.cache/ember}/linux/ unless
# --out is given):
#   vmlinuz             the Debian cloud kernel (bzImage)
#   initramfs.cpio.gz   busybox + socat + /init + the virtio and vsock modules of
#                       that kernel
#   rootfs.ext4         the same tree as a 48 MiB ext4 image (mke2fs -d), for
#                       booting with the root on a drive (copy it: the guest
#                       writes to it)
#   version             the kernel release, e.g. 6.12.117+deb12-cloud-amd64
#   modules             symlink to the full modules tree of that kernel
#
# Everything is cached. A second run with nothing changed does not touch apt
# at all and returns immediately. --refresh asks apt again for the newest
# kernel and rebuilds if anything changed.
#
# Environment:
#   EMBER_CACHE          cache root (default $HOME/.cache/ember)
#   EMBER_LINUX_KERNEL   pin a kernel release instead of taking the newest,
#                        e.g. EMBER_LINUX_KERNEL=6.1.0-56-cloud-amd64
#
# The guest's /init mounts proc, sys and devtmpfs, prints
#   EMBER-LINUX: init reached
# loads the virtio modules, prints
#   EMBER-LINUX: nproc=<n>
#   EMBER-LINUX: memtotal_kib=<MemTotal>
# When the command line has root=/dev/vdX (ember adds root=/dev/vda ro|rw
# for a root drive, as Firecracker does), that init mounts the drive and
# switch_roots to the same /init on it, which prints
#   EMBER-LINUX: root /dev/vda ext4 rw,...
# and `ember.blk` there writes /from-guest.txt on the root drive and tries
# to write to the ext4 drive /dev/vdb mounted read-only.
# Then it runs `reboot -f` (with `reboot=k` on the kernel command line the
# kernel resets through the i8042) unless the command line has `ember.shell`,
# in which case it starts a shell on the console first.
#
# Only `apt-get download` is used to fetch anything (from the configured
# Debian archive); nothing is installed on the host.

set -euo pipefail

prog=${0##*/}
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
log() { [[ $quiet == 1 ]] || printf '%s: %s\n' "$prog" "$*" >&2; }

# Modules the guest wants (names as in modules.dep, '-' and '_' are equal).
# Built-in ones are skipped; dependencies are added per modules.dep.
WANTED_MODULES=(virtio virtio_ring virtio_mmio virtio_net virtio_blk fuse virtiofs vsock
                vmw_vsock_virtio_transport virtio_rng)
BUSYBOX_PKG="busybox-static"

out=""
refresh=0
quiet=0
while (($#)); do
  case $1 in
    -o|--out) (($# >= 2)) || die "$1 needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --refresh) refresh=1; shift ;;
    -q|--quiet) quiet=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n $out ]] || out="${EMBER_CACHE:-${HOME:?HOME is not set}/.cache/ember}/linux"

for tool in apt-cache apt-get dpkg dpkg-deb gzip sha256sum find sort mke2fs socat ldd; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' not found (this script expects a Debian 12 host)"
done

mkdir -p "$out" || die "cannot create output directory $out"
out=$(cd "$out" && pwd)
cache="$out/cache"
debs="$cache/debs"

script_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
stamp_want="script=$script_hash pin=${EMBER_LINUX_KERNEL:-}"

finish() {
  log "kernel $(cat "$out/version")"
  printf '%s\n' "$out/vmlinuz" "$out/initramfs.cpio.gz" "$out/rootfs.ext4"
}

# ---- fast path: everything is already there ---------------------------------
if [[ $refresh == 0 && -s $out/vmlinuz && -s $out/initramfs.cpio.gz && -s $out/rootfs.ext4 &&
      -s $out/version &&
      -f $out/.stamp && "$(head -n1 "$out/.stamp")" == "$stamp_want" ]]; then
  finish
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ember-linux.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

apt_opts=()
# apt drops to the _apt user for downloads when run as root, which cannot
# write into a root-owned cache dir; download as root instead.
[[ $EUID == 0 ]] && apt_opts+=(-o APT::Sandbox::User=root)

# candidate_version PKG -> version apt would download, or nothing
candidate_version() {
  apt-cache policy "$1" 2>/dev/null | awk '/^ +Candidate:/ {print $2; exit}' | grep -v '^(none)$' || true
}

# ---- pick the kernel ---------------------------------------------------------
if [[ -n ${EMBER_LINUX_KERNEL:-} ]]; then
  kpkg="linux-image-${EMBER_LINUX_KERNEL}-unsigned"
  kver_pkg=$(candidate_version "$kpkg")
  [[ -n $kver_pkg ]] || die "EMBER_LINUX_KERNEL=$EMBER_LINUX_KERNEL: apt knows no package $kpkg (try 'apt-cache search cloud-amd64-unsigned'; maybe run 'apt-get update')"
else
  mapfile -t cands < <(apt-cache pkgnames linux-image- | grep -E '^linux-image-[0-9].*-cloud-amd64-unsigned$' | sort -u)
  ((${#cands[@]})) || die "apt knows no linux-image-*-cloud-amd64-unsigned package; run 'apt-get update' (as root) first"
  kpkg="" kver_pkg=""
  # one apt-cache call for all candidates: "pkg:" lines then "  Candidate: v"
  while read -r p v; do
    if [[ -z $kver_pkg ]] || dpkg --compare-versions "$v" gt "$kver_pkg"; then
      kpkg=$p kver_pkg=$v
    fi
  done < <(apt-cache policy "${cands[@]}" 2>/dev/null |
             awk '/^[^ ].*:$/ {p = substr($0, 1, length($0) - 1)}
                  /^ +Candidate:/ && $2 != "(none)" {print p, $2}')
  [[ -n $kpkg ]] || die "none of the linux-image-*-cloud-amd64-unsigned packages has a download candidate; run 'apt-get update'"
fi
krel=${kpkg#linux-image-}
krel=${krel%-unsigned}

bb_ver=$(candidate_version "$BUSYBOX_PKG")
[[ -n $bb_ver ]] || die "apt has no candidate for $BUSYBOX_PKG; run 'apt-get update' (as root) first"

log "kernel package $kpkg $kver_pkg, $BUSYBOX_PKG $bb_ver"

# ---- download (cached) -------------------------------------------------------
# fetch_deb PKG VERSION -> prints path of the cached .deb
fetch_deb() {
  local pkg=$1 ver=$2 file dl
  file="$debs/${pkg}_${ver//:/%3a}_amd64.deb"
  if [[ ! -s $file ]]; then
    mkdir -p "$debs"
    dl=$(mktemp -d "$debs/.dl.XXXXXX")
    log "apt-get download $pkg=$ver"
    if ! (cd "$dl" && apt-get "${apt_opts[@]}" -q download "$pkg=$ver") >"$tmp/apt.log" 2>&1; then
      cat "$tmp/apt.log" >&2
      rm -rf "$dl"
      die "apt-get download $pkg=$ver failed"
    fi
    local got=("$dl"/*.deb)
    [[ ${#got[@]} == 1 && -s ${got[0]} ]] || { rm -rf "$dl"; die "apt-get download $pkg produced no .deb"; }
    mv "${got[0]}" "$file"
    rm -rf "$dl"
  fi
  [[ "$(dpkg-deb -f "$file" Package)" == "$pkg" ]] || die "$file is not a $pkg package (delete it and retry)"
  printf '%s\n' "$file"
}

kdeb=$(fetch_deb "$kpkg" "$kver_pkg")
bbdeb=$(fetch_deb "$BUSYBOX_PKG" "$bb_ver")

# ---- extract (cached) --------------------------------------------------------
# extract_deb DEB DIR: dpkg-deb -x into DIR once (marker file records the deb)
extract_deb() {
  local deb=$1 dir=$2
  if [[ -f $dir/.extracted && "$(cat "$dir/.extracted")" == "${deb##*/}" ]]; then
    return 0
  fi
  rm -rf "$dir" "$dir.part"
  mkdir -p "$dir.part"
  log "extracting ${deb##*/}"
  dpkg-deb -x "$deb" "$dir.part" || die "dpkg-deb -x $deb failed"
  rm -rf "$dir.part/usr/share/doc" "$dir.part/usr/share/man" "$dir.part/usr/lib/linux"
  printf '%s\n' "${deb##*/}" >"$dir.part/.extracted"
  mv "$dir.part" "$dir"
}

kdir="$cache/kernel-$krel"
bbdir="$cache/busybox-${bb_ver//:/_}"
extract_deb "$kdeb" "$kdir"
extract_deb "$bbdeb" "$bbdir"

vmlinuz="$kdir/boot/vmlinuz-$krel"
moddir="$kdir/lib/modules/$krel"
busybox="$bbdir/bin/busybox"
[[ -s $vmlinuz ]] || die "$kdeb has no boot/vmlinuz-$krel"
[[ -d $moddir/kernel ]] || die "$kdeb has no lib/modules/$krel"
[[ -x $busybox ]] || die "$bbdeb has no executable bin/busybox"
"$busybox" true 2>/dev/null || die "cannot run $busybox on this host"

# The package does not ship modules.dep (Debian runs depmod in postinst).
if [[ ! -s $moddir/modules.dep ]]; then
  log "generating modules.dep (busybox depmod)"
  "$busybox" depmod -b "$kdir" "$krel" || die "depmod failed for $krel"
  [[ -s $moddir/modules.dep ]] || die "depmod produced no modules.dep"
fi

# ---- resolve modules ---------------------------------------------------------
declare -A dep_of=() path_of=() seen=()
# modules.dep lines: "kernel/x/foo.ko.xz: kernel/y/bar.ko.xz ..."
modname() { local b=${1##*/}; b=${b%%.ko*}; printf '%s' "${b//-/_}"; }
while IFS= read -r line; do
  m=${line%%:*}
  n=$(modname "$m")
  path_of[$n]=$m
  dep_of[$n]=${line#*:}
done <"$moddir/modules.dep"
declare -A builtin=()
if [[ -f $moddir/modules.builtin ]]; then
  while IFS= read -r m; do builtin[$(modname "$m")]=1; done <"$moddir/modules.builtin"
fi

load_order=()
add_module() {  # depth-first: dependencies before the module itself
  local n=$1 d
  [[ -n ${seen[$n]:-} ]] && return 0
  seen[$n]=1
  for d in ${dep_of[$n]:-}; do add_module "$(modname "$d")"; done
  load_order+=("${path_of[$n]}")
}
builtin_list=()
for w in "${WANTED_MODULES[@]}"; do
  n=${w//-/_}
  if [[ -n ${path_of[$n]:-} ]]; then
    add_module "$n"
  elif [[ -n ${builtin[$n]:-} ]]; then
    builtin_list+=("$n")
  else
    die "module $w is neither in modules.dep nor built into $krel"
  fi
done
log "modules to load: ${load_order[*]:-(none)}; built in: ${builtin_list[*]:-(none)}"

# ---- assemble the initramfs --------------------------------------------------
root="$tmp/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt,lib/modules/"$krel"}
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
  case $applet in
    bin/busybox|linuxrc|"") continue ;;
    bin/*|sbin/*|usr/bin/*|usr/sbin/*) ;;
    *) continue ;;
  esac
  [[ -e $root/$applet || -L $root/$applet ]] && continue
  # relative link to /bin/busybox
  case $applet in
    bin/*) target=busybox ;;
    sbin/*) target=../bin/busybox ;;
    *) target=../../bin/busybox ;;
  esac
  ln -s "$target" "$root/$applet"
done < <("$busybox" --list-full)
[[ -L $root/bin/sh && -L $root/sbin/insmod && -L $root/sbin/reboot ]] || die "busybox applet links are missing sh/insmod/reboot"

# socat, for the vsock tests (busybox has no AF_VSOCK), with the libraries
# it links: the host's own (scripts/install-deps.sh installs socat).
socat_bin=$(command -v socat)
install -m 0755 "$socat_bin" "$root/usr/bin/socat"
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd "$socat_bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')

# Copy the modules, decompressed: busybox insmod hands the raw file to
# init_module(2), which does not take compressed modules.
: >"$root/etc/ember-modules"
: >"$root/lib/modules/$krel/modules.dep"
for m in "${load_order[@]}"; do
  src="$moddir/$m"
  case $m in
    *.ko.xz)  dst=${m%.xz};  cmd=("$busybox" xzcat) ;;
    *.ko.gz)  dst=${m%.gz};  cmd=(gzip -dc) ;;
    *.ko.zst) dst=${m%.zst}; cmd=(zstd -qdc)
              command -v zstd >/dev/null || die "$m is zstd-compressed; install zstd" ;;
    *.ko)     dst=$m;        cmd=(cat) ;;
    *) die "unexpected module file name $m" ;;
  esac
  mkdir -p "$root/lib/modules/$krel/$(dirname "$dst")"
  "${cmd[@]}" "$src" >"$root/lib/modules/$krel/$dst" || die "cannot decompress $src"
  printf '%s\n' "$dst" >>"$root/etc/ember-modules"
  # a matching modules.dep so that modprobe works from the shell as well
  deps=""
  for d in ${dep_of[$(modname "$m")]:-}; do deps+=" ${d%.ko*}.ko"; done
  printf '%s:%s\n' "$dst" "$deps" >>"$root/lib/modules/$krel/modules.dep"
done

cat >"$root/init" <<'EOF'
#!/bin/sh
# ember Linux test guest init (generated by scripts/linux-guest.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Stage 1 runs from the initramfs; stage 2 is this same script on the root
# drive, after switch_root (the modules are loaded by then).
if [ "${1:-}" != ember-stage2 ]; then
  echo "EMBER-LINUX: init reached"
  kver=$(uname -r)
  failed=0
  while read -r m; do
    [ -n "$m" ] || continue
    if ! insmod "/lib/modules/$kver/$m"; then
      echo "EMBER-LINUX: insmod $m failed"
      failed=$((failed + 1))
    fi
  done </etc/ember-modules
  echo "EMBER-LINUX: modules loaded, failures=$failed"
  root_dev="" root_mode=ro
  for arg in $(cat /proc/cmdline); do
    case $arg in
      root=/dev/*) root_dev=${arg#root=} ;;
      rw) root_mode=rw ;;
      ro) root_mode=ro ;;
    esac
  done
  if [ -n "$root_dev" ]; then
    i=0
    while [ ! -b "$root_dev" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
    mkdir -p /newroot
    if mount -t ext4 -o "$root_mode" "$root_dev" /newroot; then
      umount /proc /sys /dev 2>/dev/null
      exec switch_root /newroot /init ember-stage2
    fi
    echo "EMBER-LINUX: mounting $root_dev failed"
  fi
fi
root_line=$(awk '$2 == "/" && $1 != "rootfs" {print $1, $3, $4}' /proc/mounts)
[ -n "$root_line" ] && echo "EMBER-LINUX: root $root_line"

echo "EMBER-LINUX: nproc=$(nproc)"
echo "EMBER-LINUX: memtotal_kib=$(awk '$1 == "MemTotal:" {print $2}' /proc/meminfo)"
ndev=0
for d in /sys/bus/virtio/devices/*; do [ -e "$d" ] && ndev=$((ndev + 1)); done
echo "EMBER-LINUX: virtio_devices=$ndev"
echo "EMBER-LINUX: net=$(ls /sys/class/net | grep -v '^lo$' | tr '\n' ' ')"
for dev in /sys/class/net/eth*; do
  [ -e "$dev" ] && echo "EMBER-LINUX: ${dev##*/} mac=$(cat "$dev/address")"
done

shell=0
fs_tag=""
poweroff=0
for arg in $(cat /proc/cmdline); do
  case $arg in
    ember.shell|ember.shell=*) shell=1 ;;
    ember.fs=*) fs_tag=${arg#ember.fs=} ;;
    ember.poweroff) poweroff=1 ;;
    ember.blk) blk=1 ;;
    ember.ip=*) net_ip=${arg#ember.ip=} ;;
    ember.ping=*) net_peer=${arg#ember.ping=} ;;
    ember.tcp=*) net_tcp=${arg#ember.tcp=} ;;
    ember.tcpmb=*) net_tcp_mib=${arg#ember.tcpmb=} ;;
    ember.vsock) vsock=1 ;;
    ember.mmds) mmds=1 ;;
    ember.rng) rng=1 ;;
  esac
done
# ember.vsock: a vsock listener on port 1024 (socat) that takes 1 MiB and
# answers with 1 MiB of its own, and a guest-initiated stream to the host
# (CID 2) port 5000 that says hello and prints the reply.
if [ "${vsock:-}" = 1 ]; then
  dd if=/dev/urandom of=/tmp/vsock-out bs=65536 count=16 2>/dev/null
  printf '#!/bin/sh\nhead -c 1048576 > /tmp/vsock-in\ncat /tmp/vsock-out\n' > /tmp/vsock-serve.sh
  chmod +x /tmp/vsock-serve.sh
  socat -t 30 VSOCK-LISTEN:1024 EXEC:/tmp/vsock-serve.sh &
  vsock_listener=$!
  echo "EMBER-LINUX: vsock listening on 1024"
  reply=$(echo "hello from linux" | socat -t 30 - VSOCK-CONNECT:2:5000)
  echo "EMBER-LINUX: vsock reply $reply"
  wait $vsock_listener
  echo "EMBER-LINUX: vsock received $(wc -c < /tmp/vsock-in) bytes md5=$(md5sum /tmp/vsock-in | cut -d' ' -f1) sent md5=$(md5sum /tmp/vsock-out | cut -d' ' -f1)"
fi
# ember.ip=ADDR/LEN [ember.ping=PEER] [ember.tcp=listen|PEER]: configure
# eth0, ping the peer until it answers, then receive (listen) or send a
# 1 MiB (ember.tcpmb=N: N MiB) TCP stream on port 5000 and print its md5 (the receiver confirms on
# port 5001, and the sender waits for that before going on).
if [ -n "${net_ip:-}" ]; then
  ip link set eth0 up && ip addr add "$net_ip" dev eth0 && echo "EMBER-LINUX: eth0 $net_ip"
  # The virtio features the driver negotiated (bit 11: HOST_TSO4).
  for d in /sys/bus/virtio/devices/*; do
    [ -e "$d/net" ] && echo "EMBER-LINUX: eth0 virtio features=$(cat "$d/features")"
  done
  # busybox nc loses data when a side closes at end of input; with -e the
  # stream goes through cat, which ends the connection cleanly.
  if [ "${net_tcp:-}" = listen ]; then
    printf '#!/bin/sh\nexec cat > /tmp/stream\n' > /tmp/receive.sh && chmod +x /tmp/receive.sh
    nc -l -p 5000 -e /tmp/receive.sh &
    listener=$!
  fi
  if [ -n "${net_peer:-}" ]; then
    i=0
    until ping -c 1 -W 2 "$net_peer" >/dev/null 2>&1; do
      i=$((i + 1)); [ $i -ge 60 ] && break
    done
    ping -c 3 -W 2 "$net_peer" | grep -q ' 0% packet loss' && echo "EMBER-LINUX: ping $net_peer ok"
  fi
  # The sender stays up until the receiver says on port 5001 that it has
  # the whole stream: powering off with data still queued would lose it.
  if [ "${net_tcp:-}" = listen ]; then
    wait $listener
    echo "EMBER-LINUX: tcp received $(wc -c < /tmp/stream) bytes md5=$(md5sum /tmp/stream | cut -d' ' -f1)"
    i=0
    until echo received | nc -w 2 "${net_peer:-}" 5001; do i=$((i + 1)); [ $i -ge 30 ] && break; sleep 1; done
  elif [ -n "${net_tcp:-}" ]; then
    dd if=/dev/urandom of=/tmp/stream bs=65536 count=$((16 * ${net_tcp_mib:-1})) 2>/dev/null
    printf '#!/bin/sh\nexec cat /tmp/stream\n' > /tmp/send.sh && chmod +x /tmp/send.sh
    nc -l -p 5001 > /tmp/ack &
    ack=$!
    i=0
    until nc -w 2 "$net_tcp" 5000 -e /tmp/send.sh; do i=$((i + 1)); [ $i -ge 30 ] && break; sleep 1; done
    echo "EMBER-LINUX: tcp sent $(wc -c < /tmp/stream) bytes md5=$(md5sum /tmp/stream | cut -d' ' -f1)"
    i=0
    while kill -0 $ack 2>/dev/null && [ $i -lt 300 ]; do i=$((i + 1)); sleep 1; done
    echo "EMBER-LINUX: tcp peer says $(cat /tmp/ack)"
  fi
fi
# ember.mmds (with ember.ip): Firecracker's MMDS V2 at 169.254.169.254,
# through busybox wget and raw requests (socat): a GET without a token, a
# token from PUT /latest/api/token, GETs with it, a wrong and an expired
# token, a malformed and an oversized request. Prints each answer's status
# line (or wget's error) and the values read.
if [ "${mmds:-}" = 1 ] && [ -n "${net_ip:-}" ]; then
  ip route add 169.254.169.254/32 dev eth0
  mmds_raw() { printf '%b' "$1" | socat -t 5 - TCP:169.254.169.254:80,connect-timeout=5 | tr -d '\r'; }
  mmds_token() {
    mmds_raw "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-metadata-token-ttl-seconds: $1\r\n\r\n" |
      sed '1,/^$/d'
  }
  url=http://169.254.169.254/latest/meta-data
  echo "EMBER-LINUX: mmds no-token: $(wget -q -O- "$url/ami-id" 2>&1 | head -n1)"
  token=$(mmds_token 60)
  echo "EMBER-LINUX: mmds token length=${#token}"
  echo "EMBER-LINUX: mmds ami-id=$(wget -q -O- --header "X-metadata-token: $token" "$url/ami-id" 2>&1)"
  echo "EMBER-LINUX: mmds listing=$(wget -q -O- --header "X-metadata-token: $token" "$url/" 2>&1 | tr '\n' ',')"
  echo "EMBER-LINUX: mmds wrong-token: $(wget -q -O- --header "X-metadata-token: x$token" "$url/ami-id" 2>&1 | head -n1)"
  short=$(mmds_token 1)
  sleep 2
  echo "EMBER-LINUX: mmds expired-token: $(wget -q -O- --header "X-metadata-token: $short" "$url/ami-id" 2>&1 | head -n1)"
  echo "EMBER-LINUX: mmds malformed: $(mmds_raw 'GARBAGE\r\n\r\n' | head -n1)"
  pad=$(head -c 3000 /dev/zero | tr '\0' 'a')
  echo "EMBER-LINUX: mmds oversized: $(mmds_raw "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-pad: $pad\r\n\r\n" | head -n1)"
fi
# ember.rng: read the virtio-rng device through /dev/hwrng.
if [ "${rng:-}" = 1 ]; then
  echo "EMBER-LINUX: hwrng current=$(cat /sys/class/misc/hw_random/rng_current)"
  first=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  second=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  echo "EMBER-LINUX: hwrng read $first $second"
fi
# ember.fs=TAG: mount the virtio-fs share, checksum in.bin, copy it to
# out.bin, count the entries of many/.
if [ -n "$fs_tag" ]; then
  mkdir -p /mnt
  if mount -t virtiofs "$fs_tag" /mnt; then
    echo "EMBER-LINUX: fs mounted $fs_tag"
    echo "EMBER-LINUX: fs in.bin md5=$(md5sum /mnt/in.bin | cut -d' ' -f1)"
    cp /mnt/in.bin /mnt/out.bin && sync
    echo "EMBER-LINUX: fs wrote out.bin size=$(stat -c %s /mnt/out.bin)"
    echo "EMBER-LINUX: fs many=$(ls /mnt/many | wc -l)"
    umount /mnt
  else
    echo "EMBER-LINUX: fs mount $fs_tag failed"
  fi
fi
# ember.blk (with the root on a drive): write a file on the root drive and
# sync it, read /hello.txt from the read-only ext4 drive /dev/vdb, and try
# to write there.
if [ "${blk:-0}" = 1 ]; then
  echo "written by the guest on its root drive" > /from-guest.txt && sync &&
    echo "EMBER-LINUX: blk wrote /from-guest.txt md5=$(md5sum /from-guest.txt | cut -d' ' -f1)"
  mkdir -p /mnt/ro
  if mount -t ext4 -o ro /dev/vdb /mnt/ro; then
    echo "EMBER-LINUX: blk ro hello=$(cat /mnt/ro/hello.txt)"
    touch /mnt/ro/new 2>/tmp/err || echo "EMBER-LINUX: blk ro write: $(cat /tmp/err)"
    umount /mnt/ro
  else
    echo "EMBER-LINUX: blk mounting /dev/vdb failed"
  fi
  echo "EMBER-LINUX: blk ro=$(cat /sys/block/vdb/ro) size=$(cat /sys/block/vdb/size)"
  mount -o remount,ro / && echo "EMBER-LINUX: blk root remounted ro"
fi
if [ "$shell" = 1 ]; then
  echo "EMBER-LINUX: starting shell (exit it to reboot)"
  setsid cttyhack sh -l
fi
if [ "$poweroff" = 1 ]; then
  echo "EMBER-LINUX: powering off"
  poweroff -f
fi
echo "EMBER-LINUX: rebooting"
reboot -f
sleep 5
echo "EMBER-LINUX: reboot -f returned"
EOF
chmod 0755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '%s\n' "$krel" >"$root/etc/ember-kernel"

# Deterministic archive: fixed mtimes, sorted names, owner root, gzip -n.
epoch=${SOURCE_DATE_EPOCH:-0}
find "$root" -exec touch -h -d "@$epoch" {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\./||' |
  "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -n -9 >"$tmp/initramfs.cpio.gz" ||
  die "creating the initramfs failed"
[[ -s $tmp/initramfs.cpio.gz ]] || die "empty initramfs"
# List first, then search: grep -q would stop reading early and, with
# pipefail, fail the pipeline through cpio's SIGPIPE.
listing=$(gzip -dc "$tmp/initramfs.cpio.gz" | "$busybox" cpio -t 2>/dev/null)
grep -qx init <<<"$listing" || die "the initramfs has no /init"

# The same tree as an ext4 image, for a root drive. Fixed UUID, hash seed
# and times: the same inputs give the same image. (mke2fs says "Creating
# regular file" on stdout even with -q; stdout is only for the paths.)
E2FSPROGS_FAKE_TIME=$epoch mke2fs -q -t ext4 -d "$root" -L ember-root \
  -U 3e6d3b1c-5f0a-4c55-9a52-6d1e0c0f2a11 -E hash_seed=8f1d7c2e-4b6a-4e0f-9c3d-2a5b6e7f8091,root_owner=0:0 \
  -F "$tmp/rootfs.ext4" 48M >&2 || die "mke2fs -d failed"

# ---- install into the output dir (atomically per file) ------------------------
cp "$vmlinuz" "$out/.vmlinuz.new" && mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$tmp/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
mv -f "$tmp/rootfs.ext4" "$out/rootfs.ext4"
printf '%s\n' "$krel" >"$out/version"
ln -sfn "cache/kernel-$krel/lib/modules/$krel" "$out/modules"
{
  printf '%s\n' "$stamp_want"
  printf 'kernel_package=%s %s\nbusybox_package=%s %s\nmodules=%s\nbuiltin=%s\n' \
    "$kpkg" "$kver_pkg" "$BUSYBOX_PKG" "$bb_ver" "${load_order[*]}" "${builtin_list[*]}"
} >"$out/.stamp"
log "initramfs: $(stat -c %s "$out/initramfs.cpio.gz") bytes, vmlinuz: $(stat -c %s "$out/vmlinuz") bytes"
finish

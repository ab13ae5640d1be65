#!/bin/bash
# Copied from shared/tools/systemd-sandbox.sh so the suite runs from the project alone.
# systemd-sandbox.sh — run a throw-away systemd (PID 1) "container" over an overlay of
# the host root, without nspawn/docker.  Usage:
#   systemd-sandbox.sh up            boot it, wait until systemctl is-system-running says running
#   sysd-ct.sh exec CMD...   run CMD inside (systemctl, journalctl, ...)
#   sysd-ct.sh root          print a host path of the container's / (write files through it)
#   sysd-ct.sh down          poweroff, wait, force-kill if needed, remove cgroup
set -euo pipefail
NAME=${SYSD_CT_NAME:-sysd-ct}
STATE=${SYSD_CT_STATE:-/tmp/systemd-sandbox/$NAME}
TARGET=${SYSD_CT_TARGET:-ct.target}      # boot target; ct.target = basic.target and nothing else
NET=${SYSD_CT_NET:-private}              # private: own netns with only lo; host: share host network
CG=/sys/fs/cgroup/unified/$NAME          # hybrid host: cgroup2 lives here
[ -d /sys/fs/cgroup/unified ] || CG=/sys/fs/cgroup/$NAME   # pure cgroup2 host

inner() {   # runs as PID 1 of the new namespaces
  R=$STATE/root
  mount -n -t tmpfs -o mode=755 $NAME-run /run  # first: keeps libmount (/run/mount/utab) etc. off the host /run; -n = no utab write for this one
  mkdir -p $STATE/ovl $R
  mount -t tmpfs -o mode=755 $NAME-ovl $STATE/ovl
  mkdir -p $STATE/ovl/upper $STATE/ovl/work
  mount -t overlay $NAME-root -o lowerdir=/,upperdir=$STATE/ovl/upper,workdir=$STATE/ovl/work $R
  mount -t proc -o nosuid,nodev,noexec proc $R/proc
  mount --bind $R/proc/sys $R/proc/sys;  mount -o remount,bind,ro $R/proc/sys
  if [ -e $R/proc/sysrq-trigger ]; then
    mount --bind $R/proc/sysrq-trigger $R/proc/sysrq-trigger
    mount -o remount,bind,ro $R/proc/sysrq-trigger
  fi
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs $R/sys
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 $R/sys/fs/cgroup
  mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs $R/dev
  for d in null zero full random urandom tty; do touch $R/dev/$d; mount --bind /dev/$d $R/dev/$d; done
  touch $R/dev/console; mount --bind /dev/null $R/dev/console
  mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts $R/dev/pts
  ln -s pts/ptmx $R/dev/ptmx
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/dev/shm
  ln -s /proc/self/fd $R/dev/fd
  for i in 0:stdin 1:stdout 2:stderr; do ln -s /proc/self/fd/${i%%:*} $R/dev/${i##*:}; done
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/tmp
  # container-local config: lands in the overlay's tmpfs upper layer only
  : > $R/etc/fstab
  echo $NAME > $R/etc/hostname; hostname $NAME
  mkdir -p $R/etc/systemd/system $R/etc/systemd/journald.conf.d
  printf '[Journal]\nStorage=volatile\n' > $R/etc/systemd/journald.conf.d/ct.conf
  for u in systemd-timesyncd.service systemd-pstore.service systemd-modules-load.service \
           systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
           systemd-random-seed.service systemd-update-utmp.service systemd-firstboot.service \
           systemd-repart.service systemd-machine-id-commit.service console-getty.service; do
    ln -sf /dev/null $R/etc/systemd/system/$u
  done
  # keep periodic jobs (apt-daily, man-db, e2scrub, tmpfiles-clean, ...) from firing
  for f in $R/lib/systemd/system/timers.target.wants/* $R/etc/systemd/system/timers.target.wants/*; do
    if [ -e "$f" ]; then ln -sf /dev/null $R/etc/systemd/system/${f##*/}; fi
  done
  printf '[Unit]\nDescription=test container target\nRequires=basic.target\nAfter=basic.target\nAllowIsolate=yes\n' \
    > $R/etc/systemd/system/ct.target
  cd $R; mkdir -p .oldroot; pivot_root . .oldroot; cd /
  umount -l /.oldroot; rmdir /.oldroot
  exec env -i container=$NAME PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    setpriv --bounding-set -sys_module,-sys_time,-sys_rawio \
    /lib/systemd/systemd --unit=$TARGET --show-status=no
}

spid() { cat $STATE/systemd.pid; }

case ${1:-} in
  __inner) inner ;;
  up)
    [ -e $STATE/systemd.pid ] && kill -0 "$(spid)" 2>/dev/null && { echo "already up" >&2; exit 1; }
    mkdir -p $STATE $CG
    SELF=$(readlink -f "$0"); NETFLAG=; [ $NET = private ] && NETFLAG=--net
    ( echo $BASHPID > $CG/cgroup.procs
      exec unshare --pid --fork --mount --uts --ipc --cgroup $NETFLAG \
           --propagation private --mount-proc \
           env SYSD_CT_NAME=$NAME SYSD_CT_STATE=$STATE $SELF __inner
    ) > $STATE/console.log 2>&1 < /dev/null &
    UPID=$!; echo $UPID > $STATE/unshare.pid
    SPID=
    for i in $(seq 200); do     # the child of the *unshare* process is the container's PID 1
      if [ "$(cat /proc/$UPID/comm 2>/dev/null)" = unshare ]; then
        SPID=$(awk '{print $1}' /proc/$UPID/task/$UPID/children 2>/dev/null || true)
        [ -n "$SPID" ] && break
      fi
      sleep 0.05
    done
    [ -n "$SPID" ] || { echo "container did not start:" >&2; cat $STATE/console.log >&2; exit 1; }
    echo $SPID > $STATE/systemd.pid
    # the unshare parent sits outside the container's pid ns but inside its cgroup
    # root; move it back out, or "systemctl status" complains about pid 0
    echo $UPID > "$(dirname $CG)$(sed -n 's/^0:://p' /proc/$$/cgroup)/cgroup.procs"
    # wait for boot (exec of systemd + socket up), then for the boot job to finish
    for i in $(seq 200); do
      [ "$(cat /proc/$SPID/comm 2>/dev/null)" = systemd ] &&
        [ -S /proc/$SPID/root/run/systemd/private ] && break
      kill -0 $SPID 2>/dev/null || { echo "container died:" >&2; cat $STATE/console.log >&2; exit 1; }
      sleep 0.05
    done
    st=$(timeout 60 nsenter -t $SPID -a -r -w systemctl is-system-running --wait 2>&1) || true
    echo "container $NAME: systemd pid $SPID (host), state: $st"
    [ "$st" = running ] || { nsenter -t $SPID -a -r -w systemctl --no-pager --failed >&2; exit 1; } ;;
  exec) shift; exec nsenter -t "$(spid)" -a -r -w "$@" ;;
  root) echo /proc/$(spid)/root ;;
  down)
    SPID=$(spid 2>/dev/null || true); UPID=$(cat $STATE/unshare.pid 2>/dev/null || true)
    if [ -n "$SPID" ] && kill -0 $SPID 2>/dev/null; then
      kill -s RTMIN+4 $SPID            # = systemctl poweroff, without the connection-reset noise
      for i in $(seq 300); do kill -0 $SPID 2>/dev/null || break; sleep 0.1; done
      kill -0 $SPID 2>/dev/null && { echo "poweroff timed out, SIGKILL" >&2; kill -9 $SPID; sleep 0.5; }
    fi
    if [ -n "$UPID" ]; then
      for i in $(seq 50); do kill -0 $UPID 2>/dev/null || break; sleep 0.1; done
      kill $UPID 2>/dev/null || true
    fi
    [ -d $CG ] && find $CG -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rm -f $STATE/systemd.pid $STATE/unshare.pid
    [ -d $CG ] && { echo "cgroup $CG still busy" >&2; exit 1; } || true ;;
  *) echo "usage: $0 up|exec CMD...|root|down" >&2; exit 2 ;;
esac

# Kernel-tier scenarios, run by /init inside the qemu guest (busybox sh). `suture` drives every livepatch
# operation; this script only sets up target modules, reads sysfs/procfs to assert, and prints
# "SUTURE-TIER: ..." lines. The last line is "SUTURE-TIER-RESULT: PASS" or "SUTURE-TIER-RESULT: FAIL ...".
S=/suture
SUTURE="$S/bin/suture"
LP=/sys/kernel/livepatch
FAILED=""
CUR=""
export SUTURE_KERNEL_POLL=0.1

say() { echo "SUTURE-TIER: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
fail() { say "[$CUR] FAIL: $*"; FAILED="${FAILED:+$FAILED; }$CUR: $*"; }
ok() { say "[$CUR] ok: $*"; }
check() { # check "description" command...
	d=$1; shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}
# wait_for <seconds> <shell condition>: polls every 0.1 s
wait_for() {
	_n=$(( $1 * 10 )); shift
	while [ $_n -gt 0 ]; do
		eval "$@" && return 0
		usleep 100000
		_n=$((_n - 1))
	done
	return 1
}
# run <name> suture args...: runs suture, keeps output in /tmp/<name>.out and the exit code in RC
run() {
	_name=$1; shift
	"$SUTURE" "$@" >/tmp/$_name.out 2>&1
	RC=$?
	sed "s/^/SUTURE-TIER: [$CUR]   | /" /tmp/$_name.out
	say "[$CUR] suture $* -> exit $RC"
}
attr() { cat "$1" 2>/dev/null | tr -d '\n'; }
# release_when <file> <pattern> <seconds>: in the background, once <pattern> shows up in <file> (the output
# of a suture command running meanwhile), write hold=N to let the held transition finish. Conditions, not
# sleeps: under TCG on a loaded host suture can take seconds just to start.
release_when() {
	( _n=$(( $3 * 10 ))
	  while [ $_n -gt 0 ] && ! grep -q "$2" "$1" 2>/dev/null; do usleep 100000; _n=$((_n - 1)); done
	  echo N > /sys/module/sutlp_target/parameters/hold
	  echo "SUTURE-TIER: [$CUR] released the holder at $(now)s" ) &
	RELEASER=$!
}
has_taint_k() { attr /sys/module/$1/taint | grep -q K; }
begin() { CUR=$1; say "[$CUR] --- $2 (t=$(now)s)"; }

ORIG_CMDLINE=$(cat /proc/cmdline)
ORIG_LOADAVG_FIELDS=$(awk '{print NF}' /proc/loadavg)
say "ftrace_enabled=$(attr /proc/sys/kernel/ftrace_enabled) lockdown=$(attr /sys/kernel/security/lockdown) tainted=$(attr /proc/sys/kernel/tainted)"

. $S/scenarios.d/driver.sh
. $S/scenarios.d/declarative.sh

if [ -z "$FAILED" ]; then
	echo "SUTURE-TIER-RESULT: PASS"
else
	echo "SUTURE-TIER-RESULT: FAIL $FAILED"
fi

# Declarative scenarios (issue 5): `suture plan` / `apply` / `status` / `history` / `rollback` on manifests
# in /suture/manifests/<step>/ whose bundles are in /suture/bundles. Sourced by scenarios.sh after the
# driver scenarios (which leave no livepatch loaded).
MF=$S/manifests
M=$S/modules
status_line() { "$SUTURE" status "$MF/$1" 2>&1 | grep -i "$2" | head -3; }
gen_last() { "$SUTURE" history 2>/dev/null | grep -E '^[0-9]+ ' | tail -1 | cut -d' ' -f1; }

# S1: plan shows the activation; apply loads and enables; status ACTIVATED, transition 0; taint K; effect;
# a second apply changes nothing.
begin S1 "plan/apply/status: activate a vmlinux patch"
run s1plan plan $MF/cmdline-activated
check "plan exits 0" [ "$RC" = 0 ]
check "plan shows the activation of sutlp-cmdline" grep -qi "activate.*sutlp-cmdline" /tmp/s1plan.out
check "plan changed nothing" [ ! -d /sys/module/sutlp_cmdline ]
run s1apply apply $MF/cmdline-activated
check "apply exits 0" [ "$RC" = 0 ]
check "enabled=1 transition=0" [ "$(attr $LP/sutlp_cmdline/enabled)$(attr $LP/sutlp_cmdline/transition)" = 10 ]
check "module taint has K" has_taint_k sutlp_cmdline
check "kernel tainted with K (bit 15)" [ $(( $(attr /proc/sys/kernel/tainted) & 32768 )) = 32768 ]
check "/proc/cmdline shows the marker" [ "$(cat /proc/cmdline)" = SUTLP-CMDLINE-PATCHED ]
run s1status status $MF/cmdline-activated
check "status exits 0" [ "$RC" = 0 ]
check "status: sutlp-cmdline ACTIVATED" grep -q "sutlp-cmdline.*[^E]ACTIVATED" /tmp/s1status.out
check "status: enabled=1 transition=0" grep -q "sutlp_cmdline: enabled=1 transition=0" /tmp/s1status.out
run s1again apply $MF/cmdline-activated
check "second apply exits 0" [ "$RC" = 0 ]
check "second apply: no changes" grep -qi "no changes" /tmp/s1again.out
check "second apply did not reload (no finit_module)" sh -c "! grep -q finit_module /tmp/s1again.out"

# S2: deactivated: disable, transition, directory gone, refcnt 0, unloaded, effect gone; activated again.
begin S2 "apply deactivated, then activated again"
run s2plan plan $MF/cmdline-deactivated
check "plan shows the deactivation" grep -qi "deactivate.*sutlp-cmdline" /tmp/s2plan.out
run s2apply apply $MF/cmdline-deactivated
check "apply exits 0" [ "$RC" = 0 ]
check "livepatch directory gone" [ ! -d $LP/sutlp_cmdline ]
check "module unloaded (refcnt reached 0)" [ ! -d /sys/module/sutlp_cmdline ]
check "/proc/cmdline original" [ "$(cat /proc/cmdline)" = "$ORIG_CMDLINE" ]
run s2status status $MF/cmdline-deactivated
check "status: DEACTIVATED" grep -q "DEACTIVATED" /tmp/s2status.out
run s2react apply $MF/cmdline-activated
check "activated again: loaded" eval '[ "$RC" = 0 ] && [ "$(attr $LP/sutlp_cmdline/enabled)" = 1 ]'
check "marker back" [ "$(cat /proc/cmdline)" = SUTLP-CMDLINE-PATCHED ]
run s2off apply $MF/cmdline-deactivated
check "deactivated for the next scenarios" eval '[ "$RC" = 0 ] && [ ! -d /sys/module/sutlp_cmdline ]'

# S3: held transition, 3 s hard deadline. onStall revert: blocker reported, reversed, stalled exit code,
# status truthful. onStall wait: releasing the holder converges.
begin S3 "held transition: onStall revert, then wait"
insmod $M/sutlp_target.ko || fail "insmod sutlp_target"
HOLDER=$(for p in /proc/[0-9]*; do [ "$(attr $p/comm)" = sutlp_holder ] && echo ${p#/proc/}; done)
say "[$CUR] holder kthread pid $HOLDER, hold=$(attr /sys/module/sutlp_target/parameters/hold)"
# A short hard deadline for this scenario (the defaults are 15 s / 60 s).
export SUTURE_KERNEL_SOFT_DEADLINE=1 SUTURE_KERNEL_HARD_DEADLINE=3
run s3revert apply $MF/busy-revert
check "apply exits with the stalled/rolled-back code (6 or 4)" [ "$RC" = 6 -o "$RC" = 4 ]
check "blocking task reported (pid, comm)" grep -q "pid $HOLDER (sutlp_holder)" /tmp/s3revert.out
check "transition reversed: directory gone" [ ! -d $LP/sutlp_busy ]
check "module unloaded" [ ! -d /sys/module/sutlp_busy ]
check "function not patched (last=0)" [ "$(attr /sys/module/sutlp_target/parameters/last)" != 1 ]
run s3status status $MF/busy-revert
check "status does not claim ACTIVATED" sh -c "! grep -q 'sutlp-busy.*[^E]ACTIVATED' /tmp/s3status.out"
"$SUTURE" apply $MF/busy-wait >/tmp/s3wait.out 2>&1 &
APPLY=$!
unset SUTURE_KERNEL_SOFT_DEADLINE SUTURE_KERNEL_HARD_DEADLINE
if wait_for 120 '[ "$(attr $LP/sutlp_busy/transition)" = 1 ]'; then
	"$SUTURE" status $MF/busy-wait >/tmp/s3mid.out 2>&1
	sed "s/^/SUTURE-TIER: [$CUR]   mid| /" /tmp/s3mid.out
	check "status during the held transition: transition=1" grep -q "sutlp_busy: enabled=1 transition=1" /tmp/s3mid.out
	check "status during the held transition: Transitioning/Stalled" grep -qE "Transitioning|Stalled" /tmp/s3mid.out
	check "status during the held transition: not ACTIVATED" sh -c "! grep -q 'sutlp-busy.*[^E]ACTIVATED' /tmp/s3mid.out"
else
	fail "onStall wait: transition not seen"
fi
# Release the holder once apply has passed the hard deadline and keeps waiting (onStall: wait).
wait_for 240 'grep -q "hardDeadline sutlp_busy" /tmp/s3wait.out' || fail "onStall wait: no hard deadline reported"
echo N > /sys/module/sutlp_target/parameters/hold
say "[$CUR] released the holder at $(now)s"
wait $APPLY; RC=$?
sed "s/^/SUTURE-TIER: [$CUR]   | /" /tmp/s3wait.out
say "[$CUR] suture apply busy-wait -> exit $RC"
check "onStall wait: apply exits 0 once released" [ "$RC" = 0 ]
check "converged: enabled=1 transition=0" [ "$(attr $LP/sutlp_busy/enabled)$(attr $LP/sutlp_busy/transition)" = 10 ]
check "patched function runs (last=1)" wait_for 10 '[ "$(attr /sys/module/sutlp_target/parameters/last)" = 1 ]'
run s3status2 status $MF/busy-wait
check "status ACTIVATED" grep -q "sutlp-busy.*[^E]ACTIVATED" /tmp/s3status2.out

# S4: while another transition is held, an activation gets EBUSY, retries and reports.
begin S4 "EBUSY while another transition is held"
run s4off apply $MF/busy-deactivated
check "busy patch deactivated" eval '[ "$RC" = 0 ] && [ ! -d /sys/module/sutlp_busy ]'
echo Y > /sys/module/sutlp_target/parameters/hold
wait_for 10 '[ "$(attr /sys/module/sutlp_target/parameters/last)" = 0 ]' || true
# The holder of the transition is "another tool": the driver used directly, outside suture's run lock.
"$SUTURE" kernel-driver activate $M/sutlp_busy.ko --target sutlp_target --on-stall wait --hard-deadline 60 --wait-limit 120 >/tmp/s4hold.out 2>&1 &
HOLDAPPLY=$!
wait_for 20 '[ "$(attr $LP/sutlp_busy/transition)" = 1 ]' && ok "sutlp_busy transition held" || fail "sutlp_busy transition not held"
release_when /tmp/s4apply.out "EBUSY" 240
run s4apply apply $MF/cmdline-activated
wait
check "EBUSY retried and reported" grep -q "EBUSY: sutlp_busy is in transition" /tmp/s4apply.out
check "apply converged after the retries" eval '[ "$RC" = 0 ] && [ "$(attr $LP/sutlp_cmdline/enabled)" = 1 ]'
run s4clean1 apply $MF/cmdline-deactivated
run s4clean2 apply $MF/busy-deactivated
check "cleanup: nothing loaded" eval '[ ! -d /sys/module/sutlp_cmdline ] && [ ! -d /sys/module/sutlp_busy ]'
rmmod sutlp_target || fail "rmmod sutlp_target"

# S5: atomic replace: v2 replaces v1, v1's module is removed; rollback to v1's generation loads v1 again.
begin S5 "atomic replace and rollback"
run s5v1 apply $MF/cumulative-v1
check "v1 live" eval '[ "$RC" = 0 ] && grep -q SUTLP-CUMULATIVE-V1 /proc/loadavg'
GEN_V1=$(gen_last)
say "[$CUR] generation after v1: $GEN_V1"
run s5v2 apply $MF/cumulative-v2
check "v2 live" eval '[ "$RC" = 0 ] && grep -q SUTLP-CUMULATIVE-V2 /proc/loadavg'
check "v1 livepatch directory gone" [ ! -d $LP/sutlp_cumulative_v1 ]
check "v1 module removed" [ ! -d /sys/module/sutlp_cumulative_v1 ]
run s5hist history
run s5rb rollback $GEN_V1
check "rollback exits 0" [ "$RC" = 0 ]
check "rollback: v1 live again" grep -q SUTLP-CUMULATIVE-V1 /proc/loadavg
check "rollback: v1 enabled, transition 0" [ "$(attr $LP/sutlp_cumulative_v1/enabled)$(attr $LP/sutlp_cumulative_v1/transition)" = 10 ]
check "rollback: v2 module removed" [ ! -d /sys/module/sutlp_cumulative_v2 ]
run s5status status $MF/cumulative-v1
check "status: v1 ACTIVATED" grep -q "sutlp-cumulative-v1.*[^E]ACTIVATED" /tmp/s5status.out

# S6: a module built for another kernel is refused at plan time with a clear error.
begin S6 "wrong vermagic refused at plan time"
run s6plan plan $MF/wrong-vermagic
check "plan exits 1" [ "$RC" = 1 ]
check "error names the module's kernel" grep -q "9\.1\.0-" /tmp/s6plan.out
run s6apply apply $MF/wrong-vermagic
check "apply refuses too (exit 1), nothing loaded" eval '[ "$RC" = 1 ] && [ ! -d $LP/sutlp_cmdline ]'

# Driver-level scenarios: `suture kernel-driver` (the SysfsKernelPatchDriver without manifests, store or
# executor) against the real 6.1 livepatch ABI. Sourced by scenarios.sh.
M=$S/modules

# D1: activate: load, enable, transition 0, taint K, effect visible; second activate is a no-op.
begin D1 "driver activate vmlinux patch"
run d1a kernel-driver activate $M/sutlp_cmdline.ko
check "activate exits 0" [ "$RC" = 0 ]
check "enabled=1" [ "$(attr $LP/sutlp_cmdline/enabled)" = 1 ]
check "transition=0" [ "$(attr $LP/sutlp_cmdline/transition)" = 0 ]
check "vmlinux/patched=1" [ "$(attr $LP/sutlp_cmdline/vmlinux/patched)" = 1 ]
check "module taint has K" has_taint_k sutlp_cmdline
check "/proc/cmdline shows the marker" [ "$(cat /proc/cmdline)" = SUTLP-CMDLINE-PATCHED ]
run d1b kernel-driver activate $M/sutlp_cmdline.ko
check "second activate exits 0" [ "$RC" = 0 ]
check "second activate does nothing" grep -q "nothing to do" /tmp/d1b.out
check "second activate did not load" sh -c "! grep -q finit_module /tmp/d1b.out"

# D2: deactivate: disable, transition, dir gone, refcnt 0, unloaded, effect gone; activate loads again.
begin D2 "driver deactivate and re-activate"
run d2a kernel-driver deactivate sutlp_cmdline
check "deactivate exits 0" [ "$RC" = 0 ]
check "livepatch dir gone" [ ! -d $LP/sutlp_cmdline ]
check "module unloaded" [ ! -d /sys/module/sutlp_cmdline ]
check "/proc/cmdline original" [ "$(cat /proc/cmdline)" = "$ORIG_CMDLINE" ]
run d2b kernel-driver activate $M/sutlp_cmdline.ko
check "re-activate loads again" eval '[ "$RC" = 0 ] && [ "$(attr $LP/sutlp_cmdline/enabled)" = 1 ]'
check "/proc/cmdline marker again" [ "$(cat /proc/cmdline)" = SUTLP-CMDLINE-PATCHED ]
run d2c kernel-driver deactivate sutlp_cmdline
check "deactivated again" eval '[ "$RC" = 0 ] && [ ! -d /sys/module/sutlp_cmdline ]'

# D3: held transition: revert at a 3 s hard deadline reports the blocker; wait converges on release.
begin D3 "driver held transition"
insmod $M/sutlp_target.ko || fail "insmod sutlp_target"
HOLDER=$(for p in /proc/[0-9]*; do [ "$(attr $p/comm)" = sutlp_holder ] && echo ${p#/proc/}; done)
say "[$CUR] holder kthread pid $HOLDER, hold=$(attr /sys/module/sutlp_target/parameters/hold)"
run d3a kernel-driver activate $M/sutlp_busy.ko --target sutlp_target --on-stall revert --soft-deadline 1 --hard-deadline 3
check "revert exits 4 (stalled, reverted)" [ "$RC" = 4 ]
check "blocker reported with pid and comm" grep -q "blocker pid $HOLDER tid $HOLDER comm sutlp_holder" /tmp/d3a.out
check "stack shows the patched function" grep -q "sutlp_target_work" /tmp/d3a.out
check "reverted: dir gone" [ ! -d $LP/sutlp_busy ]
check "reverted: module unloaded" [ ! -d /sys/module/sutlp_busy ]
check "no force written" sh -c "! grep -q \"^kernel-driver: forced\" /tmp/d3a.out"
# Release the holder only once suture reported the hard deadline and kept waiting.
release_when /tmp/d3b.out "hardDeadline sutlp_busy" 180
run d3b kernel-driver activate $M/sutlp_busy.ko --target sutlp_target --on-stall wait --soft-deadline 1 --hard-deadline 2 --wait-limit 60
wait
check "wait exits 0 after release" [ "$RC" = 0 ]
check "hard deadline reported while waiting" grep -q "hardDeadline sutlp_busy: .*onStall: wait; blocked by pid $HOLDER (sutlp_holder)" /tmp/d3b.out
check "enabled=1 transition=0" [ "$(attr $LP/sutlp_busy/enabled)$(attr $LP/sutlp_busy/transition)" = 10 ]
check "patched function effect visible (last=1)" wait_for 10 '[ "$(attr /sys/module/sutlp_target/parameters/last)" = 1 ]'

# D4: EBUSY: another patch's activation while a transition is held is retried and reported.
begin D4 "driver EBUSY"
run d4a kernel-driver deactivate sutlp_busy
check "busy patch deactivated" [ "$RC" = 0 ]
echo Y > /sys/module/sutlp_target/parameters/hold
wait_for 10 '[ "$(attr /sys/module/sutlp_target/parameters/last)" = 0 ]' || true
"$SUTURE" kernel-driver activate $M/sutlp_busy.ko --target sutlp_target --on-stall wait --hard-deadline 30 --wait-limit 60 >/tmp/d4hold.out 2>&1 &
HOLDPID=$!
wait_for 20 '[ "$(attr $LP/sutlp_busy/transition)" = 1 ]' && ok "sutlp_busy transition held" || fail "sutlp_busy transition not held"
release_when /tmp/d4b.out "busyRetry sutlp_cmdline" 180
run d4b kernel-driver activate $M/sutlp_cmdline.ko
wait
check "EBUSY retried and reported" grep -q "busyRetry sutlp_cmdline: EBUSY: sutlp_busy is in transition" /tmp/d4b.out
check "activation succeeded after the retries" eval '[ "$RC" = 0 ] && [ "$(attr $LP/sutlp_cmdline/enabled)" = 1 ]'
check "held activation converged" [ "$(attr $LP/sutlp_busy/transition)" = 0 ]
run d4c kernel-driver deactivate sutlp_cmdline
run d4d kernel-driver deactivate sutlp_busy
check "cleanup" eval '[ ! -d /sys/module/sutlp_cmdline ] && [ ! -d /sys/module/sutlp_busy ]'
rmmod sutlp_target || fail "rmmod sutlp_target"

# D5: atomic replace: v2 replaces v1 and v1's module is removed; loading v1 again rolls back.
begin D5 "driver atomic replace"
run d5a kernel-driver activate $M/sutlp_cumulative_v1.ko --replace
check "v1 live" eval '[ "$RC" = 0 ] && grep -q SUTLP-CUMULATIVE-V1 /proc/loadavg'
run d5b kernel-driver activate $M/sutlp_cumulative_v2.ko --replace
check "v2 live" eval '[ "$RC" = 0 ] && grep -q SUTLP-CUMULATIVE-V2 /proc/loadavg'
check "v1 livepatch dir gone" [ ! -d $LP/sutlp_cumulative_v1 ]
check "v1 module removed" [ ! -d /sys/module/sutlp_cumulative_v1 ]
check "replace reported" grep -q "replacedRemoved sutlp_cumulative_v1" /tmp/d5b.out
run d5c kernel-driver activate $M/sutlp_cumulative_v1.ko --replace
check "rollback: v1 live again, v2 removed" eval '[ "$RC" = 0 ] && grep -q SUTLP-CUMULATIVE-V1 /proc/loadavg && [ ! -d /sys/module/sutlp_cumulative_v2 ]'
run d5d kernel-driver deactivate sutlp_cumulative_v1
check "cumulative deactivated, /proc/loadavg original" eval '[ "$RC" = 0 ] && [ "$(awk "{print NF}" /proc/loadavg)" = "$ORIG_LOADAVG_FIELDS" ]'

# D6: a module built for another kernel is refused before anything is touched.
begin D6 "driver wrong vermagic"
run d6a kernel-driver activate $M/wrong-vermagic/sutlp_cmdline.ko
check "refused with exit 1" [ "$RC" = 1 ]
check "clear error names both kernels" grep -q "module built for kernel 9" /tmp/d6a.out
check "nothing loaded" [ ! -d /sys/module/sutlp_cmdline ]

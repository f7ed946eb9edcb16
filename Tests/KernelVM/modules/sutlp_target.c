// SPDX-License-Identifier: GPL-2.0
/*
 * sutlp_target - Suture kernel-tier test target module (not a livepatch).
 *
 * Runs a kthread "sutlp_holder" that calls sutlp_target_work() in a loop. While the module parameter
 * `hold` is true, sutlp_target_work() does not return, so the kthread always has it on its stack and a
 * livepatch of that function (sutlp_busy) cannot finish its transition. Writing N to
 * /sys/module/sutlp_target/parameters/hold lets the function return and the transition complete.
 * sutlp_target_work() returns 0 here and 1 in the patched version; the result is exported through the
 * read-only parameter `last` so the guest can see the patch's effect.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/delay.h>

static bool hold = true;
module_param(hold, bool, 0644);
MODULE_PARM_DESC(hold, "keep the kthread inside sutlp_target_work()");

static int last = -1;
module_param(last, int, 0444);
MODULE_PARM_DESC(last, "last value returned by sutlp_target_work()");

static struct task_struct *holder;

/* Global, noinline, noclone: klp finds it by name and ftrace can hook its entry. */
noinline __attribute__((__noclone__)) int sutlp_target_work(void)
{
	while (READ_ONCE(hold) && !kthread_should_stop())
		msleep(20);
	return 0;
}
EXPORT_SYMBOL_GPL(sutlp_target_work);

static int sutlp_holder_fn(void *data)
{
	while (!kthread_should_stop()) {
		WRITE_ONCE(last, sutlp_target_work());
		msleep(50);
	}
	return 0;
}

static int __init sutlp_target_init(void)
{
	holder = kthread_run(sutlp_holder_fn, NULL, "sutlp_holder");
	return PTR_ERR_OR_ZERO(holder);
}

static void __exit sutlp_target_exit(void)
{
	kthread_stop(holder);
}

module_init(sutlp_target_init);
module_exit(sutlp_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Suture test target: a kthread kept inside a patchable function");
